"""The demo's year of surveys (seed_demo): believable, consistent with the app's rules,
made once; the large scale adds an exact number of answers."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db.models import Count, F, Max

from feedback import demo, services
from feedback.models import (
    CaseSource,
    CaseStatus,
    DeliveryKind,
    DeliveryState,
    FollowUpCase,
    SurveyAnswer,
    SurveyDelivery,
    SurveyInvitation,
)
from feedback.selectors import satisfaction_table
from leads.demo import LARGE_EMAIL_SUFFIX
from tests.conftest import Cast
from tests.factories_leads import CustomerFactory, DealFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 6, 16)
NOW = dt.datetime(2025, 6, 16, 6, 0, tzinfo=dt.UTC)


def won_deals(reps: list, *, count: int, suffix: str = ".example") -> None:
    rng = random.Random(7)  # noqa: S311 - test data
    customers = {
        rep.pk: [
            CustomerFactory(owner=rep, email=f"c{rep.pk}-{i}@customer{suffix}", language=lang)
            for i, lang in enumerate(["en", "sv", "pt-br", "it", "ru"] * 4)
        ]
        for rep in reps
    }
    for index in range(count):
        rep = reps[index % len(reps)]
        DealFactory(
            owner=rep,
            customer=rng.choice(customers[rep.pk]),
            close_date=TODAY - dt.timedelta(days=rng.randint(1, 364)),
        )


def test_a_year_of_surveys_answers_and_cases(cast: Cast) -> None:
    reps = [cast.rep, cast.teammate, cast.other_rep]
    won_deals(reps, count=450)
    result = demo.seed_feedback(today=TODAY, now=NOW)
    assert result is not None
    invitations = SurveyInvitation.objects.all()
    answers = SurveyAnswer.objects.all()
    assert result.counts["survey invitations"] == invitations.count() > 200
    assert 0.4 < answers.count() / invitations.filter(sent_at__isnull=False).count() < 0.85

    # The app's rules hold: throttle, answered after sent and before expiry, none in the future.
    per_customer = invitations.order_by("customer_id", "created_at").values_list(
        "customer_id", "created_at"
    )
    previous: dict[int, dt.datetime] = {}
    for customer_id, created in per_customer:
        if customer_id in previous:
            assert created - previous[customer_id] > dt.timedelta(days=30)
        previous[customer_id] = created
    assert not answers.filter(answered_at__gte=NOW).exists()
    assert not invitations.filter(answered_at__lt=F("sent_at")).exists()
    assert not invitations.filter(answered_at__gte=F("expires_at")).exists()
    assert invitations.aggregate(last=Max("sent_at"))["last"] < NOW
    # One reminder at most, only when not answered within the three days.
    assert not SurveyDelivery.objects.values("invitation").annotate(n=Count("pk")).filter(n__gt=2)
    reminded = invitations.filter(reminded_at__isnull=False)
    assert reminded.exists()
    assert not reminded.filter(answered_at__lt=F("reminded_at")).exists()
    assert (
        SurveyDelivery.objects.filter(kind=DeliveryKind.REMINDER, state=DeliveryState.SENT).count()
        == reminded.count()
    )

    # Every answer the rules say opens a case has one; phone complaints exist too.
    for answer in answers.select_related("case"):
        opens = bool(
            services.case_reasons(csat=answer.csat, nps=answer.nps, has_concern=answer.has_concern)
        )
        assert hasattr(answer, "case") == opens
    assert FollowUpCase.objects.filter(source=CaseSource.MANUAL).exists()
    statuses = set(FollowUpCase.objects.values_list("status", flat=True))
    assert {CaseStatus.RESOLVED, CaseStatus.CLOSED} <= statuses
    assert answers.exclude(free_text="").filter(language="sv").exists()

    # A believable spread: the reps differ.
    table = satisfaction_table(
        rep_ids=[rep.pk for rep in reps], start=TODAY - dt.timedelta(days=365), end=TODAY, now=NOW
    )
    scores = [table.for_rep(rep.pk).csat for rep in reps]
    assert all(score is not None and Decimal(30) < score < Decimal(100) for score in scores)
    assert max(scores) - min(scores) > 3


def test_seeding_again_changes_nothing(cast: Cast) -> None:
    won_deals([cast.rep], count=40)
    assert demo.seed_feedback(today=TODAY, now=NOW) is not None
    counts = (
        SurveyInvitation.objects.count(),
        SurveyAnswer.objects.count(),
        FollowUpCase.objects.count(),
    )
    assert demo.seed_feedback(today=TODAY, now=NOW) is None
    assert counts == (
        SurveyInvitation.objects.count(),
        SurveyAnswer.objects.count(),
        FollowUpCase.objects.count(),
    )


def test_the_large_scale_adds_exactly_the_answers_asked_for(cast: Cast) -> None:
    won_deals([cast.rep, cast.other_rep], count=400, suffix=LARGE_EMAIL_SUFFIX)
    result = demo.seed_large_feedback(today=TODAY, answers=150, now=NOW)
    assert result is not None and result.counts["survey answers"] == 150
    assert SurveyAnswer.objects.filter(customer__email__endswith=LARGE_EMAIL_SUFFIX).count() == 150
    assert demo.seed_large_feedback(today=TODAY, answers=150, now=NOW) is None
    # The normal demo's seeding ignores the benchmark customers.
    assert demo.seed_feedback(today=TODAY, now=NOW) is not None
    assert SurveyAnswer.objects.count() == 150
