"""Leaderboards: reps ranked on one metric over a period, for a team or the company.

Figures come from the daily facts, grouped by rep in one query (plus the revenue
goals, for attainment). Ties share a rank (1, 2, 2, 4); equal values are listed
by name. Reps without a figure (no revenue goal for attainment, fewer than
``CSAT_MIN_ANSWERS`` answers for CSAT) are listed after the ranked ones, unranked.

Who sees which board is the views' business (DESIGN.md visibility): a rep gets
their own team's board and only their own rank in the company, a manager their
teams' boards and their reps' company ranks, an admin every board.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from goals.dashboards import (
    RepIds,
    competition_ranks,
    facts_by_rep,
    goals_by_rep,
    rep_goals,
    rep_quota,
)
from goals.kpis import ACTIVITY_COLUMNS
from goals.selectors import ratio

CSAT_MIN_ANSWERS = 5


class BoardMetric(models.TextChoices):
    REVENUE = "revenue", _("Revenue won")
    ATTAINMENT = "attainment", _("Attainment of the revenue goal")
    CSAT = "csat", _("CSAT")
    DEALS_WON = "deals_won", _("Deals won")
    ACTIVITIES = "activities", _("Activities")


# The fact columns each metric needs: a board sums only those.
BOARD_COLUMNS: dict[str, tuple[str, ...]] = {
    BoardMetric.REVENUE: ("revenue_won",),
    BoardMetric.ATTAINMENT: ("revenue_won",),
    BoardMetric.CSAT: ("csat_answered", "csat_satisfied"),
    BoardMetric.DEALS_WON: ("deals_won",),
    BoardMetric.ACTIVITIES: tuple(ACTIVITY_COLUMNS.values()),
}


@dataclass(frozen=True)
class BoardRow:
    rep: User
    value: Decimal | None  # None: not ranked on this metric
    rank: int | None


@dataclass(frozen=True)
class Board:
    metric: str
    rows: list[BoardRow]

    @property
    def ranked(self) -> int:
        """How many reps have a rank (the N of "7 of N")."""
        return sum(1 for row in self.rows if row.rank is not None)

    def row_for(self, rep_id: int) -> BoardRow | None:
        return next((row for row in self.rows if row.rep.pk == rep_id), None)


def metric_value(
    metric: str, totals: dict[str, Any] | None, quota: Decimal | None
) -> Decimal | None:
    """The figure a rep is ranked on (pure). Attainment and CSAT are percentages."""
    if metric == BoardMetric.REVENUE:
        return Decimal(totals["revenue_won"]) if totals else Decimal(0)
    if metric == BoardMetric.DEALS_WON:
        return Decimal(totals["deals_won"]) if totals else Decimal(0)
    if metric == BoardMetric.ACTIVITIES:
        if not totals:
            return Decimal(0)
        return Decimal(sum(totals[column] for column in ACTIVITY_COLUMNS.values()))
    if metric == BoardMetric.ATTAINMENT:
        share = ratio(totals["revenue_won"] if totals else 0, quota)
        return (share * 100).quantize(Decimal("0.1")) if share is not None else None
    if metric == BoardMetric.CSAT:
        if not totals or totals["csat_answered"] < CSAT_MIN_ANSWERS:
            return None
        share = ratio(totals["csat_satisfied"], totals["csat_answered"])
        return (share * 100).quantize(Decimal("0.1")) if share is not None else None
    raise ValueError(f"unknown leaderboard metric {metric}")


def rank_rows(reps: Sequence[User], values: dict[int, Decimal | None], metric: str) -> Board:
    """Order by value (best first) then name; ties share a rank; no value: unranked, last."""
    ranked = [rep for rep in reps if values.get(rep.pk) is not None]
    unranked = [rep for rep in reps if values.get(rep.pk) is None]
    ranked.sort(key=lambda rep: (-values[rep.pk], rep.display_name.lower(), rep.pk))
    unranked.sort(key=lambda rep: (rep.display_name.lower(), rep.pk))
    ranks = competition_ranks([values[rep.pk] for rep in ranked])
    rows = [BoardRow(rep, values[rep.pk], rank) for rep, rank in zip(ranked, ranks, strict=True)]
    rows += [BoardRow(rep, None, None) for rep in unranked]
    return Board(metric=metric, rows=rows)


def leaderboard(
    *,
    reps: Sequence[User],
    metric: str,
    start: date,
    end: date,
    quota_end: date | None = None,
    totals_by_rep: dict[int | None, dict[str, Any]] | None = None,
) -> Board:
    """The board of ``reps`` on ``metric`` over [start, end] (facts up to the caller's end).

    One grouped query for the facts (skipped when ``totals_by_rep`` is given, e.g.
    by a dashboard that already has them); attainment adds one for the revenue goals:
    revenue won ÷ the rep's revenue quota for [start, ``quota_end``] (goals prorated
    by days, see ``goals.dashboards.rep_quota``): pass the period's end there while
    the facts stop at yesterday, so attainment is "of the whole period's quota".
    """
    rep_ids: RepIds = [rep.pk for rep in reps]
    if totals_by_rep is None:
        totals_by_rep = facts_by_rep(
            rep_ids=rep_ids, start=start, end=end, columns=BOARD_COLUMNS[metric]
        )
    goals: dict[int, list[Any]] = {}
    if metric == BoardMetric.ATTAINMENT:
        goals = goals_by_rep(
            rep_goals(rep_ids=rep_ids, start=start, end=quota_end or end, revisions=False)
        )
    values = {
        rep.pk: metric_value(
            metric,
            totals_by_rep.get(rep.pk),
            rep_quota(goals.get(rep.pk, []), start, quota_end or end, ())
            if goals.get(rep.pk)
            else None,
        )
        for rep in reps
    }
    return rank_rows(reps, values, metric)
