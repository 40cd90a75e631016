"""``manage.py seed_demo [--scale normal|large]``: a believable demo organisation.

The organisation is the same on every machine: all choices come from
``random.Random`` instances with fixed seeds, and nothing depends on the
current time except ``date_joined``. Every record is looked up by its natural
key (email in lower case, team name, territory code, product line name) before
it is created, so running the command again creates nothing and changes
nothing that is already there, including passwords someone has since changed.
Everything runs in one transaction: a failure leaves no half-made organisation.

Each part of the demo has its own function and its own random generator, so a
part added later (leads, goals…) does not shift the choices of the others.

The sales pipeline (leads, customers, estimates, deals, activities: a year of
history up to today) is made by ``leads.demo`` for the demo reps, once: when
any lead exists it is left alone. ``--scale large`` adds the benchmark data
(a million leads over the 100 reps) in its own transaction, once as well.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import ProductLine, Role, Team, Territory, User
from accounts.services import team_set_managers, user_create
from feedback import demo as feedback_demo
from goals import demo as goals_demo
from goals.kpis import compute_facts_range
from leads import demo as pipeline_demo
from reminders.rules import run_rules

# Published in the README and printed by the command: a demo login, not a secret.
DEMO_PASSWORD = "salesperf-demo"  # noqa: S105

# Changing a seed changes the demo organisation for everyone; keep them fixed.
ORGANISATION_SEED = "salesperf-demo:organisation"
LARGE_ORGANISATION_SEED = "salesperf-demo:large-organisation"

# --scale large: the organisation as a whole has this many teams and reps (the
# benchmark size in DESIGN.md); the large part adds what the demo lacks.
LARGE_TOTAL_TEAMS = 10
LARGE_TOTAL_REPS = 100
BULK_BATCH_SIZE = 500
# Leads made per demo rep (a few marketing leads stay unassigned); tests make fewer.
PIPELINE_LEADS_PER_REP = (160, 310)
# seed_demo runs the nightly KPI job over this many days: the year of history,
# and the year before it that "change vs the previous period" compares with.
KPI_HISTORY_DAYS = 400
LARGE_PIPELINE_LEADS = 1_000_000


@dataclass(frozen=True)
class PersonSpec:
    """One person of the demo. A manager manages the team they belong to."""

    email: str
    display_name: str
    role: str
    team: str | None
    language: str
    time_zone: str
    territories: tuple[str, ...] = ()  # territory codes


@dataclass
class SeedReport:
    """What a run created and what it found already there, per kind of record."""

    created: Counter[str] = field(default_factory=Counter)
    existing: Counter[str] = field(default_factory=Counter)
    kinds: list[str] = field(default_factory=list)

    def record(self, kind: str, *, created: bool, count: int = 1) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)
        (self.created if created else self.existing)[kind] += count


# --- Catalogue: territories and product lines ---------------------------------

TERRITORIES: tuple[tuple[str, str, str], ...] = (
    ("stockholm", "Stockholm", "Stockholm county and the Mälaren valley."),
    ("gothenburg", "Gothenburg", "Gothenburg and the west coast of Sweden."),
    ("malmo", "Malmö", "Malmö, Lund and the rest of Skåne."),
    ("sao-paulo", "São Paulo", "The state of São Paulo."),
    ("rio-de-janeiro", "Rio de Janeiro", "The state of Rio de Janeiro."),
    ("milan", "Milan", "Milan and Lombardy."),
    ("rome", "Rome", "Rome and Lazio."),
    ("moscow", "Moscow", "Moscow and the Moscow oblast."),
    ("saint-petersburg", "Saint Petersburg", "Saint Petersburg and the Leningrad oblast."),
    ("online", "Online", "Customers who buy through the web shop, wherever they are."),
)

PRODUCT_LINES: tuple[tuple[str, str], ...] = (
    ("Software licences", "Perpetual and subscription licences of the salesperf suite."),
    ("Hardware", "Servers, terminals and scanners sold with the software."),
    ("Implementation services", "Installation, data migration and configuration projects."),
    ("Support contracts", "Yearly support and maintenance agreements."),
    ("Training", "Courses for customers' users and administrators."),
)


@dataclass(frozen=True)
class Locale:
    """Where a person works: their language, time zone, territories and names."""

    language: str
    time_zone: str
    territories: tuple[str, ...]
    female_names: tuple[str, ...]
    male_names: tuple[str, ...]
    # (masculine, feminine): Russian family names agree with the first name.
    family_names: tuple[tuple[str, str], ...]


def _same(names: str) -> tuple[tuple[str, str], ...]:
    """Family names (space-separated) that are the same for women and men."""
    return tuple((name, name) for name in names.split())


LOCALES: dict[str, Locale] = {
    "sweden": Locale(
        language="sv",
        time_zone="Europe/Stockholm",
        territories=("stockholm", "gothenburg", "malmo", "online"),
        female_names=("Anna", "Maja", "Elin", "Sofia", "Karin", "Ingrid", "Linnea", "Frida"),
        male_names=("Erik", "Johan", "Oskar", "Nils", "Gustav", "Anders", "Henrik", "Axel"),
        family_names=_same(
            "Andersson Johansson Karlsson Nilsson Eriksson Larsson Lindberg Holm Sandberg Nyström"
        ),
    ),
    "brazil": Locale(
        language="pt-br",
        time_zone="America/Sao_Paulo",
        territories=("sao-paulo", "rio-de-janeiro", "online"),
        female_names=("Ana", "Mariana", "Juliana", "Camila", "Larissa", "Beatriz", "Fernanda"),
        male_names=("João", "Pedro", "Gabriel", "Rafael", "Thiago", "Lucas", "Mateus"),
        family_names=_same(
            "Silva Santos Oliveira Souza Lima Pereira Ferreira Almeida Costa Rodrigues"
        ),
    ),
    "italy": Locale(
        language="it",
        time_zone="Europe/Rome",
        territories=("milan", "rome", "online"),
        female_names=("Giulia", "Chiara", "Sara", "Francesca", "Elena", "Martina", "Alessia"),
        male_names=("Marco", "Alessandro", "Matteo", "Lorenzo", "Davide", "Luca", "Giorgio"),
        family_names=_same(
            "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco"
        ),
    ),
    "russia": Locale(
        language="ru",
        time_zone="Europe/Moscow",
        territories=("moscow", "saint-petersburg", "online"),
        female_names=("Anastasia", "Ekaterina", "Olga", "Natalia", "Irina", "Tatiana"),
        male_names=("Dmitri", "Ivan", "Sergei", "Alexei", "Mikhail", "Andrei"),
        family_names=(
            ("Ivanov", "Ivanova"),
            ("Smirnov", "Smirnova"),
            ("Kuznetsov", "Kuznetsova"),
            ("Popov", "Popova"),
            ("Volkov", "Volkova"),
            ("Sokolov", "Sokolova"),
            ("Lebedev", "Lebedeva"),
            ("Morozov", "Morozova"),
        ),
    ),
    "online": Locale(
        language="en",
        time_zone="Europe/London",
        territories=("online",),
        female_names=("Emma", "Olivia", "Charlotte", "Grace"),
        male_names=("James", "Thomas", "William", "Daniel"),
        family_names=_same("Clarke Taylor Brown Wilson Evans Walker"),
    ),
}


# --- The fixed demo logins: the one place that defines them -------------------

# Documented logins that demos, screenshots and manual tests rely on. Change
# them only together with the README. All use DEMO_PASSWORD.
DEMO_LOGINS: tuple[PersonSpec, ...] = (
    PersonSpec(
        email="admin@example.com",
        display_name="Astrid Lindqvist",
        role=Role.ADMIN,
        team=None,
        language="en",
        time_zone="Europe/Stockholm",
    ),
    PersonSpec(
        email="manager@example.com",
        display_name="Henrik Sandberg",
        role=Role.MANAGER,
        team="North",
        language="en",
        time_zone="Europe/Stockholm",
    ),
    PersonSpec(
        email="rep@example.com",
        display_name="Sara Nilsson",
        role=Role.REP,
        team="North",
        language="en",
        time_zone="Europe/Stockholm",
        territories=("stockholm", "gothenburg"),
    ),
    PersonSpec(
        email="rep2@example.com",
        display_name="Johan Berg",
        role=Role.REP,
        team="North",
        language="sv",
        time_zone="Europe/Stockholm",
        territories=("malmo",),
    ),
    PersonSpec(
        email="manager.south@example.com",
        display_name="Rafael Oliveira",
        role=Role.MANAGER,
        team="South",
        language="en",
        time_zone="America/Sao_Paulo",
    ),
    PersonSpec(
        email="rep.south@example.com",
        display_name="Ana Souza",
        role=Role.REP,
        team="South",
        language="pt-br",
        time_zone="America/Sao_Paulo",
        territories=("sao-paulo", "online"),
    ),
    PersonSpec(
        email="marketing@example.com",
        display_name="Giulia Romano",
        role=Role.MARKETING,
        team=None,
        language="en",
        time_zone="Europe/Rome",
    ),
)


# --- The rest of the demo organisation ---------------------------------------

TEAMS: tuple[str, ...] = ("North", "South", "West")

# (display name, role, team, locale key); territories are drawn from the locale.
OTHER_PEOPLE: tuple[tuple[str, str, str, str], ...] = (
    ("Ekaterina Volkova", Role.REP, "North", "russia"),
    ("Oskar Nyström", Role.REP, "North", "sweden"),
    ("Thiago Almeida", Role.REP, "South", "brazil"),
    ("Larissa Ferreira", Role.REP, "South", "brazil"),
    ("Pedro Costa", Role.REP, "South", "brazil"),
    ("Marco Bianchi", Role.MANAGER, "West", "italy"),
    ("Chiara Esposito", Role.REP, "West", "italy"),
    ("Lorenzo Greco", Role.REP, "West", "italy"),
    ("Dmitri Sokolov", Role.REP, "West", "russia"),
    ("Emma Clarke", Role.REP, "West", "online"),
)

_ASCII = str.maketrans({"ö": "o", "ä": "a", "å": "a", "ã": "a", "é": "e", "ç": "c"})


def _email_for(display_name: str) -> str:
    return display_name.lower().translate(_ASCII).replace(" ", ".") + "@example.com"


def _pick_territories(rng: random.Random, locale: Locale) -> tuple[str, ...]:
    """One to three territories of the person's locale (fewer where the locale has fewer)."""
    count = min(rng.randint(1, 3), len(locale.territories))
    return tuple(sorted(rng.sample(locale.territories, count)))


def organisation_people(rng: random.Random) -> list[PersonSpec]:
    """Everyone of the normal demo besides the fixed logins; the same list for the same rng."""
    people = []
    for display_name, role, team, locale_key in OTHER_PEOPLE:
        locale = LOCALES[locale_key]
        # Drawn for managers too, so that reordering roles does not shift later reps.
        territories = _pick_territories(rng, locale)
        people.append(
            PersonSpec(
                email=_email_for(display_name),
                display_name=display_name,
                role=role,
                team=team,
                language=locale.language,
                time_zone=locale.time_zone,
                territories=territories if role == Role.REP else (),
            )
        )
    return people


def _territories_get_or_create(report: SeedReport) -> dict[str, Territory]:
    territories = {}
    for code, name, description in TERRITORIES:
        territory, created = Territory.objects.get_or_create(
            code=code, defaults={"name": name, "description": description}
        )
        report.record("territories", created=created)
        territories[code] = territory
    return territories


def _product_lines_get_or_create(report: SeedReport) -> None:
    for name, description in PRODUCT_LINES:
        _, created = ProductLine.objects.get_or_create(
            name__iexact=name, defaults={"name": name, "description": description}
        )
        report.record("product lines", created=created)


def _teams_get_or_create(names: Iterable[str], report: SeedReport) -> dict[str, Team]:
    teams = {}
    for name in names:
        team, created = Team.objects.get_or_create(name__iexact=name, defaults={"name": name})
        report.record("teams", created=created)
        teams[name] = team
    return teams


def _person_get_or_create(
    spec: PersonSpec,
    *,
    teams: dict[str, Team],
    territories: dict[str, Territory],
    password_hash: str,
) -> tuple[User, bool]:
    """The user with ``spec.email``; created (through the service) only when missing."""
    user = User.objects.filter(email__iexact=spec.email).first()
    if user is not None:
        return user, False
    user = user_create(
        email=spec.email,
        display_name=spec.display_name,
        role=spec.role,
        password=None,
        team=teams[spec.team] if spec.team else None,
        territories=[territories[code] for code in spec.territories],
        language=spec.language,
        time_zone=spec.time_zone,
    )
    # The service hashes what it is given; the demo hash is computed once for
    # everyone because the production hasher takes a noticeable time per call.
    user.password = password_hash
    user.save(update_fields=["password"])
    return user, True


def _team_add_manager(team: Team, manager: User) -> bool:
    """Add ``manager`` to the team's managers, keeping the others; False if already one."""
    if team.managers.filter(pk=manager.pk).exists():
        return False
    team_set_managers(team=team, managers=[*team.managers.all(), manager])
    return True


def _people_get_or_create(
    people: Sequence[PersonSpec],
    *,
    kind: str,
    teams: dict[str, Team],
    territories: dict[str, Territory],
    password_hash: str,
    report: SeedReport,
) -> None:
    for spec in people:
        user, created = _person_get_or_create(
            spec, teams=teams, territories=territories, password_hash=password_hash
        )
        report.record(kind, created=created)
        if spec.role == Role.MANAGER and spec.team:
            added = _team_add_manager(teams[spec.team], user)
            report.record("team managers", created=added)


def seed_demo_logins(
    *,
    teams: dict[str, Team],
    territories: dict[str, Territory],
    password_hash: str,
    report: SeedReport,
) -> None:
    """The fixed demo logins (DEMO_LOGINS); existing ones are left exactly as they are."""
    _people_get_or_create(
        DEMO_LOGINS,
        kind="demo logins",
        teams=teams,
        territories=territories,
        password_hash=password_hash,
        report=report,
    )


def seed_organisation(
    *, rng: random.Random, password_hash: str, report: SeedReport
) -> dict[str, Territory]:
    """Territories, product lines, teams North/South/West, the demo logins and their colleagues.

    Safe to repeat: every record is looked up by its natural key first and only
    missing ones are created; the rng is consumed the same way on every run.
    Returns the territories by code for the parts that follow.
    """
    territories = _territories_get_or_create(report)
    _product_lines_get_or_create(report)
    teams = _teams_get_or_create(TEAMS, report)
    seed_demo_logins(
        teams=teams, territories=territories, password_hash=password_hash, report=report
    )
    _people_get_or_create(
        organisation_people(rng),
        kind="other people",
        teams=teams,
        territories=territories,
        password_hash=password_hash,
        report=report,
    )
    return territories


# --- Large organisation (benchmarks) -----------------------------------------


def large_team_names() -> list[str]:
    """The teams added on top of the demo's, numbered after them: "Team 04".."Team 10"."""
    first = len(TEAMS) + 1
    return [f"Team {number:02d}" for number in range(first, LARGE_TOTAL_TEAMS + 1)]


def demo_rep_count() -> int:
    """Reps of the normal demo: the fixed logins and the generated colleagues."""
    people = [*DEMO_LOGINS, *organisation_people(random.Random(ORGANISATION_SEED))]  # noqa: S311
    return sum(1 for spec in people if spec.role == Role.REP)


def _random_person(
    rng: random.Random, *, email: str, role: str, team: str, locale: Locale
) -> PersonSpec:
    female = rng.random() < 0.5
    first_name = rng.choice(locale.female_names if female else locale.male_names)
    masculine, feminine = rng.choice(locale.family_names)
    territories = _pick_territories(rng, locale)
    return PersonSpec(
        email=email,
        display_name=f"{first_name} {feminine if female else masculine}",
        role=role,
        team=team,
        language=locale.language,
        time_zone=locale.time_zone,
        territories=territories if role == Role.REP else (),
    )


def large_organisation_people(rng: random.Random) -> list[PersonSpec]:
    """One manager per large team and the reps that bring the organisation to
    LARGE_TOTAL_REPS, dealt round-robin over the large teams; the same list for the same rng.

    Emails depend only on the position, never on the random names, so a run
    recognises the people of an earlier run even if the name pools change.
    """
    locales = list(LOCALES.values())
    people = []
    teams = large_team_names()
    for team_number, team in enumerate(teams, start=1):
        people.append(
            _random_person(
                rng,
                email=f"large.manager{team_number:02d}@example.com",
                role=Role.MANAGER,
                team=team,
                locale=rng.choice(locales),
            )
        )
    for number in range(1, LARGE_TOTAL_REPS - demo_rep_count() + 1):
        people.append(
            _random_person(
                rng,
                email=f"large.rep{number:03d}@example.com",
                role=Role.REP,
                team=teams[(number - 1) % len(teams)],
                locale=rng.choice(locales),
            )
        )
    return people


def _users_by_email(emails: Iterable[str]) -> dict[str, User]:
    # Compared in lower case, like the unique constraint on email.
    users = User.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=list(emails))
    return {user.email_lower: user for user in users}


def _teams_by_lower_name(names: Iterable[str]) -> dict[str, Team]:
    # Compared in lower case, like the unique constraint on team names.
    teams = Team.objects.annotate(name_lower=Lower("name")).filter(
        name_lower__in=[name.lower() for name in names]
    )
    return {team.name_lower: team for team in teams}


def _large_teams_get_or_create(report: SeedReport) -> dict[str, Team]:
    names = large_team_names()
    existing = _teams_by_lower_name(names)
    missing = [Team(name=name) for name in names if name.lower() not in existing]
    # ignore_conflicts: a concurrent run that created the same team is not an error.
    Team.objects.bulk_create(missing, batch_size=BULK_BATCH_SIZE, ignore_conflicts=True)
    report.record("large teams", created=True, count=len(missing))
    report.record("large teams", created=False, count=len(names) - len(missing))
    teams = _teams_by_lower_name(names)
    return {name: teams[name.lower()] for name in names}


def seed_large_organisation(
    *,
    rng: random.Random,
    password_hash: str,
    territories: dict[str, Territory],
    report: SeedReport,
) -> None:
    """Teams "Team 04".."Team 10" with a manager each and reps: 10 teams, 100 reps in all.

    Written set-based (bulk_create in batches, one password hash for all) so it
    stays fast. Safe to repeat: people whose email already exists are skipped
    and left unchanged, and links are inserted with ON CONFLICT DO NOTHING.
    """
    teams = _large_teams_get_or_create(report)
    people = large_organisation_people(rng)
    already_there = _users_by_email(spec.email for spec in people)
    new_people = [spec for spec in people if spec.email not in already_there]
    User.objects.bulk_create(
        [
            User(
                email=spec.email,
                display_name=spec.display_name,
                role=spec.role,
                team=teams[spec.team],
                language=spec.language,
                time_zone=spec.time_zone,
                password=password_hash,
            )
            for spec in new_people
        ],
        batch_size=BULK_BATCH_SIZE,
        ignore_conflicts=True,
    )
    report.record("large people", created=True, count=len(new_people))
    report.record("large people", created=False, count=len(people) - len(new_people))

    # bulk_create with ignore_conflicts does not return ids: read them back.
    users = _users_by_email(spec.email for spec in people)
    UserTerritory = User.territories.through
    UserTerritory.objects.bulk_create(
        [
            UserTerritory(user_id=users[spec.email].pk, territory_id=territories[code].pk)
            for spec in new_people
            for code in spec.territories
        ],
        batch_size=BULK_BATCH_SIZE,
        ignore_conflicts=True,
    )

    TeamManager = Team.managers.through
    managers = [spec for spec in people if spec.role == Role.MANAGER]
    not_managers = [spec.email for spec in managers if users[spec.email].role != Role.MANAGER]
    if not_managers:
        # Someone changed the role of an existing user; team_set_managers would refuse too.
        raise CommandError(f"Not sales managers, cannot manage a team: {', '.join(not_managers)}")
    already_managing = set(
        TeamManager.objects.filter(
            team__in=[teams[spec.team] for spec in managers],
            user__in=[users[spec.email] for spec in managers],
        ).values_list("team_id", "user_id")
    )
    links = [
        TeamManager(team_id=teams[spec.team].pk, user_id=users[spec.email].pk)
        for spec in managers
        if (teams[spec.team].pk, users[spec.email].pk) not in already_managing
    ]
    TeamManager.objects.bulk_create(links, batch_size=BULK_BATCH_SIZE, ignore_conflicts=True)
    report.record("team managers", created=True, count=len(links))
    report.record("team managers", created=False, count=len(managers) - len(links))


# --- Sales pipeline ------------------------------------------------------------


def demo_reps() -> list[User]:
    """The active reps of the normal demo (not the large organisation's)."""
    people = [*DEMO_LOGINS, *organisation_people(random.Random(ORGANISATION_SEED))]  # noqa: S311
    emails = [spec.email for spec in people if spec.role == Role.REP]
    users = _users_by_email(emails)
    return [
        users[email]
        for email in emails
        if email in users and users[email].role == Role.REP and users[email].is_active
    ]


def demo_marketing() -> User | None:
    """Who brings marketing's leads in: the demo marketing login, if it is still marketing."""
    emails = [spec.email for spec in DEMO_LOGINS if spec.role == Role.MARKETING]
    return User.objects.filter(email__in=emails, role=Role.MARKETING, is_active=True).first()


def _active_product_lines() -> list[ProductLine]:
    return list(ProductLine.objects.filter(is_active=True).order_by("name"))


# --- The command ---------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Create a demo organisation with fixed logins (password: salesperf-demo) and a "
        "year of sales pipeline. Safe to run again: existing records are left as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale",
            choices=["normal", "large"],
            default="normal",
            help=(
                "large: also 10 teams with 100 reps in all and 1,000,000 leads with their "
                "customers, estimates, deals and activities, for benchmarks (a few minutes)."
            ),
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing if the database already has users (what `make run` uses).",
        )

    def handle(self, *args: Any, scale: str, if_empty: bool = False, **options: Any) -> None:
        if if_empty and User.objects.exists():
            # A database with real (or earlier demo) people is never given demo people.
            self.stdout.write("The database already has users: no demo data loaded.")
            return
        # The history ends today: read once, so every part agrees on the day.
        today = timezone.localdate()
        report = SeedReport()
        password_hash = make_password(DEMO_PASSWORD)
        try:
            with transaction.atomic():
                territories = seed_organisation(
                    rng=random.Random(ORGANISATION_SEED),  # noqa: S311 - demo data, not security
                    password_hash=password_hash,
                    report=report,
                )
                if scale == "large":
                    seed_large_organisation(
                        rng=random.Random(LARGE_ORGANISATION_SEED),  # noqa: S311 - demo data
                        password_hash=password_hash,
                        territories=territories,
                        report=report,
                    )
                pipeline = pipeline_demo.seed_pipeline(
                    reps=demo_reps(),
                    product_lines=_active_product_lines(),
                    marketing=demo_marketing(),
                    today=today,
                    leads_per_rep=PIPELINE_LEADS_PER_REP,
                )
                surveys = feedback_demo.seed_feedback(today=today)
                goals = goals_demo.seed_goals(today=today, teams=TEAMS)
        except ValidationError as error:
            # An existing record no longer fits the demo (e.g. a demo manager got another role).
            raise CommandError("; ".join(error.messages)) from error
        self._print_summary(report)
        self._print_pipeline("Sales pipeline (a year of history):", pipeline, skipped="leads exist")
        self._print_pipeline(
            "Customer satisfaction (a year of surveys):", surveys, skipped="surveys exist"
        )
        self._print_pipeline("Goals (a year of months):", goals, skipped="goals exist")
        if scale == "large":
            self._seed_large_pipeline(today)
        self._compute_kpis_and_reminders(today)

    def _compute_kpis_and_reminders(self, today: date) -> None:
        """The nightly jobs, run now: a demo opens on filled dashboards and reminders.

        Both are safe to repeat (the facts of a day are replaced, a reminder's
        unique key is never inserted twice), so a second seed_demo changes nothing.
        """
        started = timezone.now()
        rows = compute_facts_range(today - timedelta(days=KPI_HISTORY_DAYS), today)
        counts = run_rules(today=today, now=timezone.now())
        seconds = (timezone.now() - started).total_seconds()
        self.stdout.write(self.style.MIGRATE_HEADING("Nightly jobs, run now:"))
        self.stdout.write(f"  KPI facts {rows:>13,} rows")
        self.stdout.write(f"  reminders {sum(counts.values()):>13,} created")
        self.stdout.write(f"  in {seconds:.1f} s")

    def _seed_large_pipeline(self, today: date) -> None:
        self.stdout.write(
            self.style.MIGRATE_HEADING(f"Benchmark pipeline ({LARGE_PIPELINE_LEADS:,} leads):")
        )

        def progress(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()  # visible while it runs, also when redirected to a file

        # Its own transaction: all of it or nothing, without holding back the demo's.
        with transaction.atomic():
            result = pipeline_demo.seed_large_pipeline(
                reps=list(User.objects.filter(role=Role.REP, is_active=True)),
                product_lines=_active_product_lines(),
                marketing=demo_marketing(),
                today=today,
                leads=LARGE_PIPELINE_LEADS,
                progress=progress,
            )
        self._print_pipeline("Benchmark pipeline:", result, skipped="benchmark leads exist")
        with transaction.atomic():
            surveys = feedback_demo.seed_large_feedback(today=today, progress=progress)
        self._print_pipeline(
            "Benchmark surveys (50,000 answers):", surveys, skipped="benchmark answers exist"
        )
        # After the benchmark deals, so the large teams' targets follow their sales.
        with transaction.atomic():
            goals = goals_demo.seed_goals(today=today)
        self._print_pipeline("Benchmark goals (every team):", goals, skipped="goals exist")
        if result is not None:
            started = timezone.now()
            # VACUUM needs autocommit; inside a caller's transaction ANALYZE alone.
            vacuum = not connection.in_atomic_block
            pipeline_demo.analyze_pipeline_tables(vacuum=vacuum)
            seconds = (timezone.now() - started).total_seconds()
            done = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
            self.stdout.write(f"  {done} of the pipeline tables in {seconds:.1f} s")

    def _print_pipeline(
        self, heading: str, result: pipeline_demo.PipelineResult | None, *, skipped: str
    ) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(heading))
        if result is None:
            self.stdout.write(f"  already seeded ({skipped}): skipped, nothing changed.")
            return
        width = max((len(kind) for kind in result.counts), default=0)
        for kind, count in result.counts.items():
            self.stdout.write(f"  {kind:<{width}}  {count:>9,} created")
        self.stdout.write(f"  in {result.seconds:.1f} s")

    def _print_summary(self, report: SeedReport) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Demo organisation:"))
        width = max(len(kind) for kind in report.kinds)
        for kind in report.kinds:
            self.stdout.write(
                f"  {kind:<{width}}  {report.created[kind]:>4} created, "
                f"{report.existing[kind]:>4} already there"
            )
        self.stdout.write(self.style.MIGRATE_HEADING(f"Demo logins (password: {DEMO_PASSWORD}):"))
        email_width = max(len(spec.email) for spec in DEMO_LOGINS)
        for spec in DEMO_LOGINS:
            where = f", team {spec.team}" if spec.team else ""
            self.stdout.write(f"  {spec.email:<{email_width}}  {spec.role}{where}")
