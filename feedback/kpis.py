"""The survey facts of the nightly KPI job (``goals.kpis``): what the feedback app adds.

``fact_sources()`` returns ``goals.kpis.FactSource``s (imported when called, so
neither app imports the other at start-up):

- answers, on the day answered (company time zone): ``csat_answered``,
  ``csat_satisfied`` (CSAT 4-5), ``nps_answered``, ``nps_promoters`` (9-10),
  ``nps_detractors`` (0-6);
- invitations, on the day first emailed: ``surveys_sent``, and
  ``surveys_answered`` (of those, answered by now).

The key is the rep the survey was for (the deal's owner when it was scheduled),
the deal's product line (none for a survey without a deal) and the deal's
territory, else the customer's.

``touched_days(since=, until=)`` names the old days whose facts an answer given
in [since, until) changes: the day its survey was sent (``surveys_answered``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import connection

ANSWER_COLUMNS = (
    "csat_answered",
    "csat_satisfied",
    "nps_answered",
    "nps_promoters",
    "nps_detractors",
)
INVITATION_COLUMNS = ("surveys_sent", "surveys_answered")

ANSWER_SQL = """
    SELECT (a.answered_at AT TIME ZONE %(tz)s)::date AS day, a.rep_id,
        d.product_line_id, COALESCE(d.territory_id, c.territory_id) AS territory_id,
        COUNT(*), COUNT(*) FILTER (WHERE a.csat >= 4),
        COUNT(*), COUNT(*) FILTER (WHERE a.nps >= 9), COUNT(*) FILTER (WHERE a.nps <= 6)
    FROM feedback_surveyanswer a
    JOIN leads_customer c ON c.id = a.customer_id
    LEFT JOIN leads_deal d ON d.id = a.deal_id
    WHERE a.answered_at >= %(lo)s AND a.answered_at < %(hi)s
        AND (a.answered_at AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
    GROUP BY 1, 2, 3, 4
"""

INVITATION_SQL = """
    SELECT (i.sent_at AT TIME ZONE %(tz)s)::date AS day, i.rep_id,
        d.product_line_id, COALESCE(d.territory_id, c.territory_id) AS territory_id,
        COUNT(*), COUNT(i.answered_at)
    FROM feedback_surveyinvitation i
    JOIN leads_customer c ON c.id = i.customer_id
    LEFT JOIN leads_deal d ON d.id = i.deal_id
    WHERE i.sent_at >= %(lo)s AND i.sent_at < %(hi)s
        AND (i.sent_at AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
    GROUP BY 1, 2, 3, 4
"""


def fact_sources() -> list[Any]:
    """The feedback app's ``FactSource``s for ``goals.kpis.feedback_fact_sources``."""
    from goals.kpis import FactSource

    return [
        FactSource(name="survey answers", sql=ANSWER_SQL, columns=ANSWER_COLUMNS),
        # An answer given today changes the response-rate facts of the day its
        # survey was sent: the nightly run finds those days through touched_sql.
        FactSource(
            name="survey invitations",
            sql=INVITATION_SQL,
            columns=INVITATION_COLUMNS,
            touched_sql=TOUCHED_DAYS_SQL,
        ),
    ]


TOUCHED_DAYS_SQL = """
    SELECT (i.sent_at AT TIME ZONE %(tz)s)::date
    FROM feedback_surveyanswer a JOIN feedback_surveyinvitation i ON i.id = a.invitation_id
    WHERE a.answered_at >= %(since)s AND a.answered_at < %(until)s AND i.sent_at IS NOT NULL
    UNION
    SELECT (a.answered_at AT TIME ZONE %(tz)s)::date FROM feedback_surveyanswer a
    WHERE a.answered_at >= %(since)s AND a.answered_at < %(until)s
"""


def touched_days(*, since: datetime, until: datetime) -> set[date]:
    """Days whose survey facts changed through answers given in [since, until)."""
    with connection.cursor() as cursor:
        cursor.execute(TOUCHED_DAYS_SQL, {"tz": settings.TIME_ZONE, "since": since, "until": until})
        return {row[0] for row in cursor.fetchall() if row[0] is not None}
