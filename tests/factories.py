"""factory_boy factories for the whole suite."""

from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from accounts.models import ProductLine, Role, Team, Territory, User

PASSWORD = "correct-horse-battery"


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class TerritoryFactory(DjangoModelFactory):
    class Meta:
        model = Territory

    name = factory.Sequence(lambda n: f"Territory {n}")
    code = factory.Sequence(lambda n: f"t{n}")


class ProductLineFactory(DjangoModelFactory):
    class Meta:
        model = ProductLine

    name = factory.Sequence(lambda n: f"Product line {n}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    display_name = factory.Sequence(lambda n: f"User {n}")
    role = Role.REP
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def manages(self, create: bool, teams: Any, **kwargs: Any) -> None:
        if create and teams:
            self.managed_teams.set(teams)


class AdminFactory(UserFactory):
    role = Role.ADMIN
    is_staff = True
    is_superuser = True
