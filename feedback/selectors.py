"""Reads of the feedback app, scoped to the user (accounts/access.py), and the
satisfaction KPIs other apps (goals: daily facts, dashboards) build on.

Visibility: a rep sees their own answers, invitations and cases; a manager
their teams'; an admin all; marketing none. The customer's free text is on the
answer, so it is seen by the rep, their manager and admins only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Count, Q, QuerySet

from accounts.access import get_or_404, scope_owned
from accounts.models import User
from feedback.defaults import DEFAULT_TEXTS
from feedback.models import (
    OPEN_CASE_STATUSES,
    CaseStatus,
    FollowUpCase,
    SurveyAnswer,
    SurveyInvitation,
    SurveyTemplate,
    SurveyTemplateText,
)
from feedback.services import token_hash
from leads.models import Customer, Deal
from leads.selectors import HISTORY_CAP, Capped, capped

AnyUser = User | AnonymousUser

# What a token looks like (secrets.token_urlsafe): anything else is not looked up.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")


# --- Scoped querysets ----------------------------------------------------------------


def invitations_for_user(*, user: AnyUser) -> QuerySet[SurveyInvitation]:
    return scope_owned(SurveyInvitation.objects.all(), user=user, owner_field="rep")


def answers_for_user(*, user: AnyUser) -> QuerySet[SurveyAnswer]:
    """The rep's own answers; a manager's teams'; all for admins; none for marketing."""
    return scope_owned(SurveyAnswer.objects.all(), user=user, owner_field="rep")


def answer_get_for_user(*, user: AnyUser, pk: Any) -> SurveyAnswer:
    return get_or_404(
        answers_for_user(user=user).select_related("customer", "deal", "rep", "team", "case"),
        pk=pk,
    )


def cases_for_user(*, user: AnyUser) -> QuerySet[FollowUpCase]:
    return scope_owned(FollowUpCase.objects.all(), user=user, owner_field="rep")


def case_get_for_user(*, user: AnyUser, pk: Any) -> FollowUpCase:
    return get_or_404(
        cases_for_user(user=user).select_related("customer", "deal", "rep", "team", "answer"),
        pk=pk,
    )


# --- The public survey page --------------------------------------------------------------


@dataclass(frozen=True)
class SurveyTexts:
    language: str
    intro: str
    csat_question: str
    nps_question: str
    free_text_question: str
    contact_question: str


TEXT_FIELDS = ("intro", "csat_question", "nps_question", "free_text_question", "contact_question")


def survey_texts(template: SurveyTemplate, language: str) -> SurveyTexts:
    """The template's texts in ``language``; each text missing there is taken in English
    (and, if the template has no English either, from the built-in English). One query."""
    rows = {
        row.language: row
        for row in SurveyTemplateText.objects.filter(
            template=template, language__in={language, "en"}
        )
    }
    builtin = dict(zip(TEXT_FIELDS, DEFAULT_TEXTS["en"], strict=True))
    values = {}
    for name in TEXT_FIELDS:
        candidates = [getattr(rows[code], name) for code in (language, "en") if code in rows]
        values[name] = next((text for text in candidates if text.strip()), builtin[name])
    return SurveyTexts(language=language, **values)


@dataclass(frozen=True)
class PublicInvitation:
    """What the public survey page needs of an invitation, and nothing more."""

    pk: int
    language: str
    expires_at: datetime | None
    answered_at: datetime | None
    template_id: int
    template_version: datetime
    ask_free_text: bool
    ask_contact: bool
    rep_name: str


# One indexed lookup (the token hash is unique) joined to what the page shows.
# Written out because this page must serve hundreds of requests a second: the
# ORM's compilation of the same three joins costs more than running it.
PUBLIC_INVITATION_SQL = """
SELECT i.id, i.language, i.expires_at, i.answered_at, t.id, t.updated_at,
    t.ask_free_text, t.ask_contact, u.display_name
FROM feedback_surveytoken k
JOIN feedback_surveyinvitation i ON i.id = k.invitation_id
JOIN feedback_surveytemplate t ON t.id = i.template_id
JOIN accounts_user u ON u.id = i.rep_id
WHERE k.token_hash = %s
"""


def invitation_for_token(token: str) -> PublicInvitation | None:
    """The invitation a link's token opens; one query.

    Nothing about the customer beyond this invitation is read. A string that
    cannot be a token is refused without asking the database.
    """
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    with connection.cursor() as cursor:
        cursor.execute(PUBLIC_INVITATION_SQL, [token_hash(token)])
        row = cursor.fetchone()
    return PublicInvitation(*row) if row is not None else None


@lru_cache(maxsize=128)
def _texts_of_version(template_id: int, version: datetime, language: str) -> SurveyTexts:
    return survey_texts(SurveyTemplate(pk=template_id), language)


def survey_texts_cached(invitation: PublicInvitation) -> SurveyTexts:
    """``survey_texts`` kept in this process per template *version* (its ``updated_at``):
    editing a template in the admin saves it, so the next page reads the new texts
    (a query only the first time each version and language is shown)."""
    return _texts_of_version(
        invitation.template_id, invitation.template_version, invitation.language
    )


# --- Customer and deal pages ---------------------------------------------------------------


@dataclass
class CustomerFeedback:
    answers: Capped
    cases: Capped


def customer_feedback(*, user: AnyUser, customer: Customer) -> CustomerFeedback:
    """The answers and cases of a customer that the user may see: two queries."""
    return CustomerFeedback(
        answers=capped(
            answers_for_user(user=user)
            .filter(customer=customer)
            .select_related("rep", "deal", "case")
            .order_by("-answered_at", "-pk")
        ),
        cases=capped(
            cases_for_user(user=user)
            .filter(customer=customer)
            .select_related("rep")
            .order_by("-opened_at", "-pk")
        ),
    )


def deal_surveys(*, user: AnyUser, deal: Deal) -> list[SurveyInvitation]:
    """The surveys of a deal (newest first) with their answers; one query.
    Each has ``status`` (scheduled, sent, reminded, answered, expired)."""
    return list(
        invitations_for_user(user=user)
        .filter(deal=deal)
        .select_related("answer")
        .order_by("-created_at", "-pk")[:HISTORY_CAP]
    )


def case_alerts_for_user(*, user: AnyUser, now: datetime) -> dict[str, int]:
    """Open and overdue cases the user sees (a rep: theirs; a manager: the teams'); one query."""
    is_open = Q(status__in=OPEN_CASE_STATUSES)
    return cases_for_user(user=user).aggregate(
        open=Count("pk", filter=is_open),
        overdue=Count("pk", filter=is_open & Q(deadline__lt=now)),
    )


# --- KPI math (DESIGN.md, "KPI definitions") ----------------------------------------------


def csat_score(satisfied: int, answered: int) -> Decimal | None:
    """CSAT: share of CSAT answers 4 or 5, times 100 (0 to 100); None without answers."""
    return Decimal(satisfied) * 100 / Decimal(answered) if answered else None


def nps_score(promoters: int, detractors: int, answered: int) -> Decimal | None:
    """NPS: % promoters (9-10) minus % detractors (0-6) (-100 to 100); None without answers."""
    return Decimal(promoters - detractors) * 100 / Decimal(answered) if answered else None


def response_rate(answered: int, sent: int) -> Decimal | None:
    """Surveys answered ÷ surveys sent (0…1), of the surveys sent in range."""
    return Decimal(answered) / Decimal(sent) if sent else None


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants the company's days ``start`` and ``end + 1`` begin."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def _ids(rep_ids: Iterable[int] | QuerySet[Any]) -> list[int]:
    if isinstance(rep_ids, QuerySet):
        return list(rep_ids.values_list("pk", flat=True))
    return [int(pk) for pk in rep_ids]


# --- Raw daily survey counts (for the nightly KPI facts) -----------------------------------

SURVEY_COUNT_COLUMNS = (
    "csat_answered",
    "csat_satisfied",
    "nps_answered",
    "nps_promoters",
    "nps_detractors",
    "surveys_sent",
    "surveys_answered",
)


@dataclass(frozen=True)
class SurveyDayCounts:
    """The survey counts of one rep on one day (company time zone). All additive:

    - ``csat_answered`` / ``csat_satisfied``: answers given that day, and of them CSAT 4-5;
    - ``nps_answered`` / ``nps_promoters`` / ``nps_detractors``: answers given that
      day, and of them NPS 9-10 and NPS 0-6;
    - ``surveys_sent``: invitations first emailed that day; ``surveys_answered``: of
      those, the ones answered by now (the response rate is answered ÷ sent over
      the days the surveys were *sent*).
    """

    day: date
    rep_id: int
    csat_answered: int = 0
    csat_satisfied: int = 0
    nps_answered: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    surveys_sent: int = 0
    surveys_answered: int = 0


SURVEY_COUNTS_SQL = """
WITH answered AS (
    SELECT (a.answered_at AT TIME ZONE %(tz)s)::date AS day, a.rep_id,
        COUNT(*) AS csat_answered,
        COUNT(*) FILTER (WHERE a.csat >= 4) AS csat_satisfied,
        COUNT(*) AS nps_answered,
        COUNT(*) FILTER (WHERE a.nps >= 9) AS nps_promoters,
        COUNT(*) FILTER (WHERE a.nps <= 6) AS nps_detractors
    FROM feedback_surveyanswer a
    WHERE a.answered_at >= %(lo)s AND a.answered_at < %(hi)s AND a.rep_id = ANY(%(reps)s)
    GROUP BY 1, 2
), sent AS (
    SELECT (i.sent_at AT TIME ZONE %(tz)s)::date AS day, i.rep_id,
        COUNT(*) AS surveys_sent, COUNT(i.answered_at) AS surveys_answered
    FROM feedback_surveyinvitation i
    WHERE i.sent_at >= %(lo)s AND i.sent_at < %(hi)s AND i.rep_id = ANY(%(reps)s)
    GROUP BY 1, 2
)
SELECT COALESCE(a.day, s.day), COALESCE(a.rep_id, s.rep_id),
    COALESCE(a.csat_answered, 0), COALESCE(a.csat_satisfied, 0), COALESCE(a.nps_answered, 0),
    COALESCE(a.nps_promoters, 0), COALESCE(a.nps_detractors, 0),
    COALESCE(s.surveys_sent, 0), COALESCE(s.surveys_answered, 0)
FROM answered a FULL OUTER JOIN sent s ON s.day = a.day AND s.rep_id = a.rep_id
ORDER BY 1, 2
"""


def survey_counts(
    *, rep_ids: Iterable[int] | QuerySet[Any], start: date, end: date
) -> list[SurveyDayCounts]:
    """Per rep and day in [start, end] (company days), the raw survey counts; one query.

    Days and reps without any survey activity have no row. Columns: see
    ``SurveyDayCounts``. CSAT, NPS and response rate of any range and rollup are
    ``csat_score``/``nps_score``/``response_rate`` of the summed columns.
    """
    lo, hi = _day_bounds(start, end)
    with connection.cursor() as cursor:
        cursor.execute(
            SURVEY_COUNTS_SQL,
            {"tz": settings.TIME_ZONE, "lo": lo, "hi": hi, "reps": _ids(rep_ids)},
        )
        return [SurveyDayCounts(*row) for row in cursor.fetchall()]


# --- Totals per rep, team and all (the satisfaction page, dashboards) -----------------------


@dataclass
class SatisfactionFigures:
    """Survey and case figures of one rep, one team or everyone, over a range."""

    csat_answered: int = 0
    csat_satisfied: int = 0
    nps_answered: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    surveys_sent: int = 0
    surveys_answered: int = 0
    cases_opened: int = 0
    cases_resolved: int = 0
    resolution_median_hours: Decimal | None = None
    cases_open: int = 0
    cases_overdue: int = 0

    @property
    def csat(self) -> Decimal | None:
        return csat_score(self.csat_satisfied, self.csat_answered)

    @property
    def nps(self) -> Decimal | None:
        return nps_score(self.nps_promoters, self.nps_detractors, self.nps_answered)

    @property
    def response_rate(self) -> Decimal | None:
        return response_rate(self.surveys_answered, self.surveys_sent)

    @property
    def response_rate_percent(self) -> Decimal | None:
        rate = self.response_rate
        return rate * 100 if rate is not None else None


@dataclass
class SatisfactionTable:
    by_rep: dict[int, SatisfactionFigures] = field(default_factory=dict)
    by_team: dict[int | None, SatisfactionFigures] = field(default_factory=dict)
    total: SatisfactionFigures = field(default_factory=SatisfactionFigures)

    def for_rep(self, rep_id: int) -> SatisfactionFigures:
        return self.by_rep.get(rep_id) or SatisfactionFigures()

    def for_team(self, team_id: int | None) -> SatisfactionFigures:
        return self.by_team.get(team_id) or SatisfactionFigures()


# Reps are grouped by the team they are in now (the team a manager sees them in).
SURVEY_TOTALS_SQL = """
WITH rows AS (
    SELECT a.rep_id, 1 AS answered, (a.csat >= 4)::int AS satisfied,
        (a.nps >= 9)::int AS promoter, (a.nps <= 6)::int AS detractor, 0 AS sent, 0 AS sent_answered
    FROM feedback_surveyanswer a
    WHERE a.answered_at >= %(lo)s AND a.answered_at < %(hi)s AND a.rep_id = ANY(%(reps)s)
    UNION ALL
    SELECT i.rep_id, 0, 0, 0, 0, 1, (i.answered_at IS NOT NULL)::int
    FROM feedback_surveyinvitation i
    WHERE i.sent_at >= %(lo)s AND i.sent_at < %(hi)s AND i.rep_id = ANY(%(reps)s)
)
SELECT GROUPING(r.rep_id), GROUPING(u.team_id), r.rep_id, u.team_id,
    SUM(r.answered), SUM(r.satisfied), SUM(r.answered), SUM(r.promoter), SUM(r.detractor),
    SUM(r.sent), SUM(r.sent_answered)
FROM rows r JOIN accounts_user u ON u.id = r.rep_id
GROUP BY GROUPING SETS ((r.rep_id), (u.team_id), ())
"""

CASE_TOTALS_SQL = f"""
SELECT GROUPING(c.rep_id), GROUPING(u.team_id), c.rep_id, u.team_id,
    COUNT(*) FILTER (WHERE c.opened_at >= %(lo)s AND c.opened_at < %(hi)s),
    COUNT(*) FILTER (WHERE c.status = '{CaseStatus.RESOLVED}'
        AND c.resolved_at >= %(lo)s AND c.resolved_at < %(hi)s),
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY EXTRACT(EPOCH FROM c.resolved_at - c.opened_at) / 3600
    ) FILTER (WHERE c.status = '{CaseStatus.RESOLVED}'
        AND c.resolved_at >= %(lo)s AND c.resolved_at < %(hi)s),
    COUNT(*) FILTER (WHERE c.status IN %(open)s),
    COUNT(*) FILTER (WHERE c.status IN %(open)s AND c.deadline < %(now)s)
FROM feedback_followupcase c JOIN accounts_user u ON u.id = c.rep_id
WHERE c.rep_id = ANY(%(reps)s) AND (
    c.status IN %(open)s
    OR (c.opened_at >= %(lo)s AND c.opened_at < %(hi)s)
    OR (c.resolved_at >= %(lo)s AND c.resolved_at < %(hi)s)
)
GROUP BY GROUPING SETS ((c.rep_id), (u.team_id), ())
"""  # noqa: S608 - constants only


def _place(
    table: SatisfactionTable, rep_grouped: int, team_grouped: int, rep_id: Any, team_id: Any
) -> SatisfactionFigures:
    if not rep_grouped:
        return table.by_rep.setdefault(rep_id, SatisfactionFigures())
    if not team_grouped:
        return table.by_team.setdefault(team_id, SatisfactionFigures())
    return table.total


def satisfaction_table(
    *, rep_ids: Iterable[int] | QuerySet[Any], start: date, end: date, now: datetime
) -> SatisfactionTable:
    """Survey and case KPIs per rep, per (current) team and in all; two queries.

    Survey figures: answers given in range (CSAT, NPS) and surveys sent in range
    (response rate). Cases: opened in range; resolved in range and the median
    hours from opened to resolved of those (DESIGN.md "case resolution time";
    cases closed without action are not resolutions); open and overdue now.
    """
    lo, hi = _day_bounds(start, end)
    params = {
        "lo": lo,
        "hi": hi,
        "now": now,
        "reps": _ids(rep_ids),
        "open": tuple(str(status) for status in OPEN_CASE_STATUSES),
    }
    table = SatisfactionTable()
    with connection.cursor() as cursor:
        cursor.execute(SURVEY_TOTALS_SQL, params)
        for rep_grouped, team_grouped, rep_id, team_id, *counts in cursor.fetchall():
            figures = _place(table, rep_grouped, team_grouped, rep_id, team_id)
            (
                figures.csat_answered,
                figures.csat_satisfied,
                figures.nps_answered,
                figures.nps_promoters,
                figures.nps_detractors,
                figures.surveys_sent,
                figures.surveys_answered,
            ) = (int(value or 0) for value in counts)
        cursor.execute(CASE_TOTALS_SQL, params)
        for row in cursor.fetchall():
            rep_grouped, team_grouped, rep_id, team_id, opened, resolved, median, open_, late = row
            figures = _place(table, rep_grouped, team_grouped, rep_id, team_id)
            figures.cases_opened, figures.cases_resolved = int(opened), int(resolved)
            figures.cases_open, figures.cases_overdue = int(open_), int(late)
            figures.resolution_median_hours = (
                Decimal(str(round(median, 1))) if median is not None else None
            )
    return table


def case_kpis(
    *, rep_ids: Iterable[int] | QuerySet[Any], start: date, end: date, now: datetime
) -> SatisfactionFigures:
    """The case KPIs (and survey figures) of a set of reps taken together; two queries."""
    return satisfaction_table(rep_ids=rep_ids, start=start, end=end, now=now).total
