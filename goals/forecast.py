"""The weighted pipeline and the forecast for a period's end.

DESIGN.md: weighted pipeline = sum of open estimate amount times stage probability,
the probabilities being ``settings.PIPELINE_STAGE_PROBABILITIES`` (by the stage
of the estimate's lead; an estimate without a lead counts as "sql"; a lead
already won, lost or disqualified counts 0 — its revenue is in the deals).
An estimate is open while it is a draft or sent and not past its valid-until day.

The forecast for a period's end is what is already won in the period plus the
weighted value of the open estimates that will be decided by then (valid until
a day within the period): the estimates that run past the period's end cannot
be counted on for it.

These read raw estimates (a snapshot of now, not a daily fact): one query for
any number of reps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, DecimalField, F, Q, QuerySet, Sum, Value, When

from accounts.models import User
from leads.models import OPEN_ESTIMATE_STATUSES, Estimate, Stage

RepScope = QuerySet[User] | Iterable[int]
ZERO = Decimal(0)


def _probability() -> Case:
    """The probability of an estimate's lead's stage, as a SQL expression."""
    probabilities = settings.PIPELINE_STAGE_PROBABILITIES
    whens = [
        When(lead__stage=stage, then=Value(Decimal(str(probability))))
        for stage, probability in probabilities.items()
    ]
    no_lead = Decimal(str(probabilities.get(Stage.SQL, 0)))
    return Case(
        When(lead__isnull=True, then=Value(no_lead)),
        *whens,
        default=Value(ZERO),
        output_field=DecimalField(max_digits=6, decimal_places=4),
    )


def open_estimates(*, reps: RepScope, today: date, until: date | None = None) -> QuerySet[Estimate]:
    """The open estimates of the reps on ``today``; with ``until``, only those decided by then."""
    owners = Q(owner__in=reps.values("pk")) if isinstance(reps, QuerySet) else Q(owner__in=reps)
    estimates = Estimate.objects.filter(
        owners, status__in=OPEN_ESTIMATE_STATUSES, valid_until__gte=today
    )
    if until is not None:
        estimates = estimates.filter(valid_until__lte=until)
    return estimates


def weighted_pipeline_by_rep(
    *, reps: RepScope, today: date, until: date | None = None
) -> dict[int, Decimal]:
    """{rep id: weighted pipeline} of open estimates, one query; reps without any are absent."""
    rows = (
        open_estimates(reps=reps, today=today, until=until)
        .values("owner")
        .annotate(
            weighted=Sum(
                F("amount") * _probability(),
                output_field=DecimalField(max_digits=20, decimal_places=6),
            )
        )
        .values_list("owner", "weighted")
    )
    return {owner: (weighted or ZERO).quantize(Decimal("0.01")) for owner, weighted in rows}


@dataclass(frozen=True)
class Forecast:
    won_to_date: Decimal  # revenue won in the period up to today
    weighted_pipeline: Decimal  # open estimates decided by the period's end, weighted
    forecast: Decimal  # the sum of both: the revenue expected by the period's end


def forecast_for(*, won_to_date: Decimal, reps: RepScope, today: date, end: date) -> Forecast:
    """The forecast for the period ending ``end``, given what is already won (one query).

    ``won_to_date`` comes from the caller (the facts' ``revenue_won`` of the
    period so far), so a dashboard that already summed it pays no second query.
    """
    pipeline = sum(
        weighted_pipeline_by_rep(reps=reps, today=today, until=end).values(), ZERO
    ).quantize(Decimal("0.01"))
    return Forecast(
        won_to_date=won_to_date, weighted_pipeline=pipeline, forecast=won_to_date + pipeline
    )
