"""``manage.py seed_demo``: the demo organisation people log in to, and running it again."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from accounts.management.commands import seed_demo
from accounts.models import ProductLine, Role, Team, Territory, User
from goals.models import Award, Goal
from leads.models import Activity, Contact, Customer, Deal, Estimate, Lead, WinModel
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the organisation: a token pipeline keeps them fast
    (tests/leads/test_seed_pipeline.py tries the pipeline itself)."""
    monkeypatch.setattr(seed_demo, "PIPELINE_LEADS_PER_REP", (2, 3))
    monkeypatch.setattr(seed_demo, "LARGE_PIPELINE_LEADS", 200)


def delete_pipeline() -> None:
    """Goals, awards, estimates, deals and activities protect their owners: they go first
    (rep goals split from a team goal protect it: the splits go before the rest)."""
    Goal.objects.filter(parent__isnull=False).delete()
    for model in (Goal, Award, Activity, Deal, Estimate, Lead, Contact, Customer, WinModel):
        model.objects.all().delete()


DEMO_PASSWORD = "salesperf-demo"

# (email, role, team) as documented for demos; None: no team.
DEMO_LOGINS = [
    ("admin@example.com", Role.ADMIN, None),
    ("manager@example.com", Role.MANAGER, "North"),
    ("rep@example.com", Role.REP, "North"),
    ("rep2@example.com", Role.REP, "North"),
    ("rep.south@example.com", Role.REP, "South"),
    ("manager.south@example.com", Role.MANAGER, "South"),
    ("marketing@example.com", Role.MARKETING, None),
]
LARGE_TEAMS = [f"Team {number:02d}" for number in range(4, 11)]


def seed(**options: Any) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def log_in(email: str, password: str = DEMO_PASSWORD) -> User | None:
    # django-axes' backend comes first and needs the request.
    return authenticate(RequestFactory().post("/login/"), username=email, password=password)


def organisation_snapshot(*, with_keys: bool = True) -> dict[str, list[Any]]:
    """Everything the command writes; without keys it compares across fresh databases."""
    user_fields = ["email", "display_name", "role", "team__name", "language", "time_zone"]
    user_fields += ["is_staff", "is_superuser", "is_active"]
    if with_keys:
        user_fields += ["pk", "password", "date_joined"]
    keys = ["pk"] if with_keys else []
    return {
        "users": list(User.objects.order_by("email").values_list(*user_fields)),
        "user territories": sorted(
            User.territories.through.objects.values_list("user__email", "territory__code")
        ),
        "team managers": sorted(
            Team.managers.through.objects.values_list("team__name", "user__email")
        ),
        "teams": list(Team.objects.order_by("name").values_list(*keys, "name")),
        "territories": list(
            Territory.objects.order_by("code").values_list(*keys, "code", "name", "description")
        ),
        "product lines": list(
            ProductLine.objects.order_by("name").values_list(*keys, "name", "description")
        ),
    }


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "teams": Team.objects.count(),
        "territories": Territory.objects.count(),
        "product lines": ProductLine.objects.count(),
        "team managers": Team.managers.through.objects.count(),
        "user territories": User.territories.through.objects.count(),
    }


@pytest.mark.parametrize(("email", "role", "team"), DEMO_LOGINS)
def test_each_demo_login_works_with_the_demo_password(
    email: str, role: str, team: str | None
) -> None:
    seed()

    user = log_in(email)

    assert user is not None, f"{email} cannot log in with {DEMO_PASSWORD}"
    assert user.role == role
    assert (user.team.name if user.team else None) == team
    assert log_in(email, "wrong-password") is None


def test_demo_managers_manage_the_teams_of_the_demo_reps() -> None:
    seed()

    north, south, west = (Team.objects.get(name=name) for name in ["North", "South", "West"])
    assert list(north.managers.values_list("email", flat=True)) == ["manager@example.com"]
    assert list(south.managers.values_list("email", flat=True)) == ["manager.south@example.com"]
    assert west.managers.filter(role=Role.MANAGER).count() == 1
    assert User.objects.get(email="rep.south@example.com").team == south
    admin = User.objects.get(email="admin@example.com")
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.filter(is_staff=True).exclude(role=Role.ADMIN).exists()


def test_demo_organisation_is_believable() -> None:
    seed()

    for team in Team.objects.all():
        assert 3 <= team.members.filter(role=Role.REP).count() <= 5, team.name
    for rep in User.objects.filter(role=Role.REP):
        assert 1 <= rep.territories.count() <= 3, rep.email
    assert set(User.objects.values_list("language", flat=True)) == {"en", "pt-br", "sv", "it", "ru"}
    assert {"Stockholm", "Malmö", "São Paulo", "Milan", "Moscow", "Online"} <= set(
        Territory.objects.values_list("name", flat=True)
    )
    assert set(ProductLine.objects.values_list("name", flat=True)) == {
        "Software licences",
        "Hardware",
        "Implementation services",
        "Support contracts",
        "Training",
    }
    brazilian = User.objects.get(email="rep.south@example.com")
    assert (brazilian.language, brazilian.time_zone) == ("pt-br", "America/Sao_Paulo")


def test_output_lists_the_demo_logins_and_what_was_created() -> None:
    first = seed()
    second = seed()

    assert f"password: {DEMO_PASSWORD}" in first
    for email, _, _ in DEMO_LOGINS:
        assert email in first
    assert "7 created" in first  # the demo logins
    assert " 0 created,    7 already there" in second
    assert "Sales pipeline (a year of history):" in first
    assert "already seeded (leads exist): skipped, nothing changed." in second


def test_running_twice_creates_and_changes_nothing() -> None:
    seed()
    before_counts, before = counts(), organisation_snapshot()

    seed()

    assert counts() == before_counts
    assert organisation_snapshot() == before


def test_the_demo_opens_on_filled_dashboards_and_reminders() -> None:
    from goals.models import DailyRepFact
    from reminders.models import Reminder

    output = seed()
    facts, reminders = DailyRepFact.objects.count(), Reminder.objects.count()
    assert "Nightly jobs, run now:" in output
    assert facts > 0 and reminders > 0
    rep = User.objects.get(email="rep@example.com")
    assert DailyRepFact.objects.filter(rep=rep, revenue_won__gt=0).exists()
    # A second run recomputes the same facts and finds no new reminder.
    seed()
    assert (DailyRepFact.objects.count(), Reminder.objects.count()) == (facts, reminders)


def test_the_demo_is_the_same_on_every_fresh_database() -> None:
    seed()
    first = organisation_snapshot(with_keys=False)
    delete_pipeline()
    User.objects.all().delete()
    Team.objects.all().delete()
    Territory.objects.all().delete()
    ProductLine.objects.all().delete()

    seed()

    assert organisation_snapshot(with_keys=False) == first


def test_existing_demo_person_is_kept_as_is() -> None:
    existing = UserFactory(
        email="Manager@Example.com", display_name="Maria Manager", role=Role.MANAGER
    )

    seed()

    assert User.objects.filter(email__iexact="manager@example.com").count() == 1
    existing.refresh_from_db()
    assert existing.display_name == "Maria Manager"
    assert log_in("manager@example.com") is None  # her own password still applies
    assert Team.objects.get(name="North").managers.get() == existing


def test_demo_manager_who_is_no_longer_a_manager_stops_the_run_and_creates_nothing() -> None:
    UserFactory(email="manager@example.com", role=Role.REP)

    with pytest.raises(CommandError, match="Only sales managers"):
        seed()

    assert User.objects.count() == 1
    assert not Team.objects.exists()


# Not marked slow: it belongs to the normal suite. Passwords are hashed once
# and people are bulk-created, so it takes about a second.
def test_large_scale_makes_100_reps_in_10_managed_teams_once() -> None:
    seed()
    normal_reps = User.objects.filter(role=Role.REP).count()

    seed(scale="large")

    large_teams = Team.objects.filter(name__in=LARGE_TEAMS)
    assert large_teams.count() == 7
    assert Team.objects.count() == 10
    assert User.objects.filter(role=Role.REP).count() == 100
    assert User.objects.filter(role=Role.REP, team__in=large_teams).count() == 100 - normal_reps
    for team in Team.objects.all():
        assert 10 <= team.members.filter(role=Role.REP).count() <= 13 or team.name in {
            "North",
            "South",
            "West",
        }, team.name
        manager = team.managers.get()
        assert manager.role == Role.MANAGER
        assert manager.team == team
    for rep in User.objects.filter(team__in=large_teams, role=Role.REP):
        assert 1 <= rep.territories.count() <= 3, rep.email
    rep = User.objects.filter(team__name="Team 07", role=Role.REP).first()
    assert rep is not None and log_in(rep.email) == rep

    before_counts, before = counts(), organisation_snapshot()
    seed(scale="large")
    assert counts() == before_counts
    assert organisation_snapshot() == before


def test_large_scale_on_an_empty_database_also_creates_the_demo_logins() -> None:
    seed(scale="large")

    assert log_in("rep@example.com") is not None
    assert User.objects.filter(role=Role.REP).count() == 100


def test_if_empty_loads_an_empty_database_and_leaves_a_used_one_alone() -> None:
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert User.objects.filter(email="rep@example.com").exists()

    delete_pipeline()
    User.objects.exclude(email="admin@example.com").delete()
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert "already has users" in out.getvalue()
    assert User.objects.count() == 1
