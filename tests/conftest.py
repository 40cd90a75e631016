"""Fixtures shared by the suite: the fixed cast of people every access test uses.

Like healthchecks' alice/bob/charlie: ``rep`` owns things; ``manager`` manages
rep's team; ``other_rep`` is in another team with another manager;
``marketing`` and ``admin`` are who they say.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from accounts.models import Role, Team, User
from tests.factories import AdminFactory, TeamFactory, UserFactory


@dataclass
class Cast:
    team: Team
    other_team: Team
    rep: User
    teammate: User
    manager: User
    other_rep: User
    other_manager: User
    marketing: User
    admin: User

    def roles(self) -> dict[str, User]:
        """The five roles each protected page is tried with."""
        return {
            "owner_rep": self.rep,
            "manager": self.manager,
            "other_rep": self.other_rep,
            "marketing": self.marketing,
            "admin": self.admin,
        }


@pytest.fixture
def cast(db: None) -> Cast:
    team = TeamFactory(name="North")
    other_team = TeamFactory(name="South")
    manager = UserFactory(
        email="manager@example.com", display_name="Maria Manager", role=Role.MANAGER, manages=[team]
    )
    other_manager = UserFactory(
        email="manager.south@example.com",
        display_name="Sven South",
        role=Role.MANAGER,
        manages=[other_team],
    )
    return Cast(
        team=team,
        other_team=other_team,
        rep=UserFactory(email="alice@example.com", display_name="Alice Rep", team=team),
        teammate=UserFactory(email="bob@example.com", display_name="Bob Rep", team=team),
        manager=manager,
        other_rep=UserFactory(
            email="charlie@example.com", display_name="Charlie Rep", team=other_team
        ),
        other_manager=other_manager,
        marketing=UserFactory(
            email="marketing@example.com", display_name="Mona Marketing", role=Role.MARKETING
        ),
        admin=AdminFactory(email="admin@example.com", display_name="Ada Admin"),
    )


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
