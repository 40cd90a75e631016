"""The access rules of accounts/access.py, for each role of the cast."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.http import Http404

from accounts.access import (
    scope_owned,
    team_get_for_user,
    teams_for_user,
    user_get_for_user,
    users_for_user,
)
from tests.conftest import Cast
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def emails(queryset) -> set[str]:
    return set(queryset.values_list("email", flat=True))


def test_users_visible_to_each_role(cast: Cast) -> None:
    assert emails(users_for_user(user=cast.rep)) == {cast.rep.email}
    assert emails(users_for_user(user=cast.manager)) == {
        cast.manager.email,
        cast.rep.email,
        cast.teammate.email,
    }
    assert emails(users_for_user(user=cast.other_rep)) == {cast.other_rep.email}
    assert emails(users_for_user(user=cast.marketing)) == {cast.marketing.email}
    assert users_for_user(user=cast.admin).count() == 7


def test_manager_of_two_teams_sees_both_without_duplicates(cast: Cast) -> None:
    cast.manager.managed_teams.add(cast.other_team)
    visible = users_for_user(user=cast.manager)
    assert emails(visible) == {
        cast.manager.email,
        cast.rep.email,
        cast.teammate.email,
        cast.other_rep.email,
    }
    assert visible.count() == 4


def test_teams_visible_to_each_role(cast: Cast) -> None:
    TeamFactory(name="West")
    names = lambda user: set(teams_for_user(user=user).values_list("name", flat=True))  # noqa: E731
    assert names(cast.rep) == {"North"}
    assert names(cast.manager) == {"North"}
    assert names(cast.other_rep) == {"South"}
    assert names(cast.marketing) == set()
    assert names(cast.admin) == {"North", "South", "West"}


def test_inactive_and_anonymous_users_see_nothing(cast: Cast) -> None:
    cast.manager.is_active = False
    assert not users_for_user(user=cast.manager).exists()
    assert not teams_for_user(user=cast.manager).exists()
    assert not users_for_user(user=AnonymousUser()).exists()
    assert not teams_for_user(user=AnonymousUser()).exists()


def _log_for(user) -> LogEntry:
    return LogEntry.objects.create(user=user, action_flag=ADDITION, object_repr=user.email)


def test_scope_owned_by_role(cast: Cast) -> None:
    """Owned objects (here admin log entries, owned by ``user``) under each role."""
    for person in (cast.rep, cast.teammate, cast.manager, cast.other_rep, cast.marketing):
        _log_for(person)
    everything = LogEntry.objects.all()

    def seen(user, **kwargs) -> set[str]:
        scoped = scope_owned(everything, user=user, owner_field="user", **kwargs)
        return set(scoped.values_list("object_repr", flat=True))

    assert seen(cast.rep) == {cast.rep.email}
    assert seen(cast.manager) == {cast.rep.email, cast.teammate.email, cast.manager.email}
    assert seen(cast.other_rep) == {cast.other_rep.email}
    assert seen(cast.other_manager) == {cast.other_rep.email}
    assert seen(cast.marketing) == set()
    assert seen(cast.marketing, marketing=Q(user__isnull=True) | Q(user=cast.marketing)) == {
        cast.marketing.email
    }
    assert len(seen(cast.admin)) == 5


def test_someone_elses_user_or_team_is_404(cast: Cast) -> None:
    assert user_get_for_user(user=cast.manager, pk=cast.rep.pk) == cast.rep
    with pytest.raises(Http404):
        user_get_for_user(user=cast.other_rep, pk=cast.rep.pk)
    with pytest.raises(Http404):
        user_get_for_user(user=cast.rep, pk="not-a-number")
    with pytest.raises(Http404):
        team_get_for_user(user=cast.rep, pk=cast.other_team.pk)
    assert team_get_for_user(user=cast.admin, pk=cast.other_team.pk) == cast.other_team


def test_rep_moved_to_another_team_leaves_the_old_managers_view(cast: Cast) -> None:
    cast.rep.team = cast.other_team
    cast.rep.save(update_fields=["team"])
    assert cast.rep.email not in emails(users_for_user(user=cast.manager))
    assert cast.rep.email in emails(users_for_user(user=cast.other_manager))
    UserFactory(team=cast.team)  # a newcomer joins North and is visible at once
    assert users_for_user(user=cast.manager).count() == 3
