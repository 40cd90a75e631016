"""Demo and benchmark data for customer satisfaction (``manage.py seed_demo``).

From the won deals already in the database (``leads.demo`` makes them), a year
of surveys as the application would have made them: an invitation the day after
each won deal unless the customer was surveyed in the last 30 days, the one
reminder after three days, answers from about half to three quarters of the
customers (each rep has their own level of service, so CSAT and NPS spread
believably between reps), comments in the customer's language, and the
follow-up cases the poor answers and concerns opened, most of them resolved,
some still open and a few overdue, plus complaints taken by phone.

The rows obey the app's rules by construction (the same case rules, deadlines,
states of the emails). Everything is drawn from ``random.Random`` with fixed
seeds and written with ``bulk_create``; ``seed_feedback`` runs once (when no
survey of the normal demo exists), ``seed_large_feedback`` adds the benchmark's
50,000 answers on the large pipeline's customers, once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.models import User
from feedback import conf, services
from feedback.models import (
    CaseEvent,
    CaseSource,
    CaseStatus,
    DeliveryKind,
    DeliveryState,
    FollowUpCase,
    InvitationReason,
    SurveyAnswer,
    SurveyDelivery,
    SurveyInvitation,
)
from leads.demo import LARGE_EMAIL_SUFFIX, PipelineResult
from leads.models import Deal, DealStatus

FEEDBACK_SEED = "salesperf-demo:feedback"
LARGE_FEEDBACK_SEED = "salesperf-demo:large-feedback"
LARGE_ANSWERS = 50_000
BATCH = 2_000
Progress = Callable[[str], None]

# Comments customers write, by language: (pleased, unhappy). The unhappy ones
# voice a concern the app recognises, as real ones would.
COMMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        ("Great service, thank you!", "Fast delivery and friendly people.", "Very helpful rep."),
        (
            "The delivery was two weeks late.",
            "Disappointed with the installation.",
            "Invoice was wrong, please call me.",
        ),
    ),
    "sv": (
        ("Mycket bra service, tack!", "Snabb leverans och trevligt bemötande."),
        (
            "Leveransen var försenad.",
            "Jag är besviken på installationen.",
            "Fakturan var felaktig.",
        ),
    ),
    "pt-br": (
        ("Ótimo atendimento, obrigado!", "Entrega rápida e equipe atenciosa."),
        ("A entrega atrasou duas semanas.", "Tive um problema com a instalação."),
    ),
    "it": (
        ("Servizio ottimo, grazie!", "Consegna veloce e personale gentile."),
        ("La consegna è arrivata in ritardo.", "Il prodotto è arrivato rotto."),
    ),
    "ru": (
        ("Отличный сервис, спасибо!", "Быстрая доставка и вежливые сотрудники."),
        ("Доставка задержалась на две недели.", "Есть проблема с установкой."),  # noqa: RUF001
    ),
}
PHONE_COMPLAINTS = (
    "Called: the delivery is late",
    "Called: the invoice is wrong",
    "Called: a part is missing",
    "Called: unhappy with the installation",
)
RESOLUTIONS = ("Called the customer and agreed a fix.", "Credit note sent.", "Replacement shipped.")
CLOSE_REASONS = ("The customer withdrew the complaint.", "Could not reach the customer.")


@dataclass(frozen=True)
class _Deal:
    pk: int
    customer_id: int
    owner_id: int
    team_id: int | None
    close_date: date
    language: str
    email: str


@dataclass(frozen=True)
class _RepProfile:
    quality: float  # share of customers answering CSAT 4-5
    response: float  # share of customers answering at all


def _profile(rep_id: int, seed: str) -> _RepProfile:
    rng = random.Random(f"{seed}:rep:{rep_id}")  # noqa: S311 - demo data
    return _RepProfile(quality=rng.uniform(0.55, 0.93), response=rng.uniform(0.45, 0.78))


def _csat(rng: random.Random, quality: float) -> int:
    if rng.random() < quality:
        return 5 if rng.random() < 0.6 else 4
    return rng.choices((3, 2, 1), weights=(5, 3, 2))[0]


def _nps(rng: random.Random, csat: int) -> int:
    centre = {5: 9.3, 4: 8.0, 3: 6.4, 2: 4.5, 1: 2.5}[csat]
    return max(0, min(10, round(rng.gauss(centre, 1.1))))


def _comment(rng: random.Random, language: str, csat: int, nps: int) -> str:
    pleased, unhappy = COMMENTS.get(language, COMMENTS["en"])
    if csat <= 2 or (nps <= 6 and rng.random() < 0.6):
        return rng.choice(unhappy) if rng.random() < 0.7 else ""
    return rng.choice(pleased) if rng.random() < 0.3 else ""


def _business_moment(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(
        day, dt_time(hour=rng.randint(8, 17), minute=rng.randint(0, 59)), tzinfo=zone
    )


class _Writer:
    """Collects rows and writes them with bulk_create; ids come back (PostgreSQL)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def write(self, label: str, model: type, rows: list) -> list:
        created = model.objects.bulk_create(rows, batch_size=BATCH)
        self.counts[label] += len(created)
        return created


def _won_deals(*, large: bool, since: date, until: date) -> list[_Deal]:
    suffix = Q(customer__email__endswith=LARGE_EMAIL_SUFFIX)
    deals = (
        Deal.objects.filter(
            status=DealStatus.WON, close_date__gte=since, close_date__lte=until, owner__isnull=False
        )
        .exclude(customer__email="")
        .filter(suffix if large else ~suffix)
        .order_by("close_date", "pk")
        .values_list(
            "pk",
            "customer_id",
            "owner_id",
            "owner__team_id",
            "close_date",
            "customer__language",
            "customer__email",
        )
    )
    return [_Deal(*row) for row in deals.iterator(chunk_size=10_000)]


def _throttled(deals: Iterable[_Deal], rng: random.Random) -> list[_Deal]:
    """One survey per customer per throttle window, like ``invitation_create``."""
    window = conf.throttle()
    last: dict[int, date] = {}
    chosen = []
    for deal in deals:
        previous = last.get(deal.customer_id)
        if previous is not None and deal.close_date - previous <= window:
            continue
        last[deal.customer_id] = deal.close_date
        chosen.append(deal)
    return chosen


def _generate(
    deals: Sequence[_Deal],
    *,
    answered: set[int] | None,
    seed: str,
    now: datetime,
    template_id: int,
    manual_cases: bool,
    progress: Progress | None,
) -> PipelineResult:
    """Invitations, emails, answers, cases and their history for ``deals``.

    ``answered``: the indexes of the deals whose survey is answered (the large
    scale picks them to reach an exact count); None: each rep's response rate.
    """
    started = time.monotonic()
    zone = ZoneInfo(settings.TIME_ZONE)
    rng = random.Random(seed)  # noqa: S311 - demo data
    writer = _Writer()
    reps = {user.pk: user for user in User.objects.filter(pk__in={deal.owner_id for deal in deals})}
    profiles = {rep_id: _profile(rep_id, seed) for rep_id in reps}
    validity, reminder_after = conf.link_validity(), conf.reminder_after()

    for offset in range(0, len(deals), BATCH):
        chunk = deals[offset : offset + BATCH]
        invitations, plans = [], []
        for index, deal in enumerate(chunk, start=offset):
            profile = profiles[deal.owner_id]
            created = _business_moment(rng, deal.close_date, zone)
            send_after = created + conf.send_delay()
            sent = send_after + timedelta(minutes=rng.randint(1, 5)) if send_after < now else None
            reply_in = timedelta(hours=rng.expovariate(1 / 40))
            if answered is not None:
                will_answer = index in answered
                if will_answer and sent:  # chosen to be answered: answered in time
                    reply_in = min(reply_in, (now - sent) * 0.9, validity * 0.9)
            else:
                will_answer = rng.random() < profile.response
            answered_at = (
                sent + reply_in if sent and will_answer and sent + reply_in < now else None
            )
            if answered_at is not None and answered_at >= sent + validity:
                answered_at = None
            reminded = (
                sent + reminder_after
                if sent
                and sent + reminder_after < now
                and (answered_at is None or answered_at > sent + reminder_after)
                else None
            )
            invitations.append(
                SurveyInvitation(
                    customer_id=deal.customer_id,
                    deal_id=deal.pk,
                    rep_id=deal.owner_id,
                    team_id=deal.team_id,
                    template_id=template_id,
                    reason=InvitationReason.DEAL_WON,
                    email=deal.email,
                    language=deal.language,
                    created_at=created,
                    send_after=send_after,
                    sent_at=sent,
                    expires_at=sent + validity if sent else None,
                    reminded_at=reminded,
                    answered_at=answered_at,
                )
            )
            plans.append((deal, sent, reminded, answered_at))
        invitations = writer.write("survey invitations", SurveyInvitation, invitations)

        deliveries, answers, answer_plans = [], [], []
        for invitation, (deal, sent, reminded, answered_at) in zip(invitations, plans, strict=True):
            deliveries.append(
                SurveyDelivery(
                    invitation=invitation,
                    kind=DeliveryKind.INVITATION,
                    state=DeliveryState.SENT if sent else DeliveryState.SCHEDULED,
                    send_after=invitation.send_after,
                    sent_at=sent,
                    attempts=1 if sent else 0,
                )
            )
            if sent:
                due = sent + reminder_after
                if reminded:
                    state = DeliveryState.SENT
                elif answered_at is not None or due >= sent + validity:
                    state = DeliveryState.CANCELLED
                else:
                    state = DeliveryState.SCHEDULED
                deliveries.append(
                    SurveyDelivery(
                        invitation=invitation,
                        kind=DeliveryKind.REMINDER,
                        state=state,
                        send_after=due,
                        sent_at=reminded,
                        attempts=1 if reminded else 0,
                    )
                )
            if answered_at is None:
                continue
            quality = profiles[deal.owner_id].quality
            csat = _csat(rng, quality)
            nps = _nps(rng, csat)
            comment = _comment(rng, deal.language, csat, nps)
            answers.append(
                SurveyAnswer(
                    invitation=invitation,
                    customer_id=deal.customer_id,
                    deal_id=deal.pk,
                    rep_id=deal.owner_id,
                    team_id=deal.team_id,
                    csat=csat,
                    nps=nps,
                    free_text=comment,
                    may_contact=rng.random() < 0.6 if rng.random() < 0.8 else None,
                    has_concern=services.text_has_concern(comment, deal.language),
                    language=deal.language,
                    answered_at=answered_at,
                )
            )
            answer_plans.append(deal)
        writer.write("survey emails", SurveyDelivery, deliveries)
        answers = writer.write("survey answers", SurveyAnswer, answers)

        cases = []
        for answer in answers:
            reasons = services.case_reasons(
                csat=answer.csat, nps=answer.nps, has_concern=answer.has_concern
            )
            if reasons:
                rep = reps[answer.rep_id]
                with translation.override(rep.language):
                    summary = gettext("Survey answer: %(reasons)s") % {
                        "reasons": ", ".join(reasons)
                    }
                cases.append(
                    _case(
                        rng,
                        now=now,
                        customer_id=answer.customer_id,
                        deal_id=answer.deal_id,
                        answer=answer,
                        rep=rep,
                        source=CaseSource.SURVEY,
                        summary=summary,
                        opened=answer.answered_at,
                    )
                )
        _write_cases(writer, cases, now=now)
        if progress:
            progress(f"  {offset + len(chunk):>7,} of {len(deals):,} surveys")

    if manual_cases:
        _phone_complaints(writer, rng, deals, reps, now=now)
    return PipelineResult(counts=writer.counts, seconds=time.monotonic() - started)


def _case(
    rng: random.Random,
    *,
    now: datetime,
    customer_id: int,
    deal_id: int | None,
    answer: SurveyAnswer | None,
    rep: User,
    source: str,
    summary: str,
    opened: datetime,
) -> tuple[FollowUpCase, list[tuple[str, str, datetime, str, int | None]]]:
    """A case and its history: most resolved in about a day, some closed, a few still open."""
    deadline = services.case_deadline(opened)
    case = FollowUpCase(
        customer_id=customer_id,
        deal_id=deal_id,
        answer=answer,
        rep_id=rep.pk,
        team_id=rep.team_id,
        source=source,
        summary=summary[:300],
        opened_at=opened,
        opened_by_id=rep.pk if source == CaseSource.MANUAL else None,
        deadline=deadline,
        notified_at=opened if source == CaseSource.SURVEY else None,
    )
    events = [("", CaseStatus.OPEN, opened, "", case.opened_by_id)]
    started = opened + timedelta(hours=rng.uniform(0.5, 20))
    # Median about 20 hours; never more than ten days: old cases are all finished.
    finished = max(
        opened + timedelta(hours=min(rng.lognormvariate(3.0, 0.8), 240)),
        started + timedelta(hours=1),
    )
    recent = opened > now - timedelta(days=14)
    if recent and rng.random() < 0.4:
        return case, events  # still open: some of these are past their deadline
    roll = rng.random()
    if started < now:
        events.append((CaseStatus.OPEN, CaseStatus.IN_PROGRESS, started, "", rep.pk))
        case.status = CaseStatus.IN_PROGRESS
        if finished < now and not (recent and roll > 0.7):
            if roll < 0.9:
                case.status, case.resolution_note = CaseStatus.RESOLVED, rng.choice(RESOLUTIONS)
            else:
                case.status, case.close_reason = CaseStatus.CLOSED, rng.choice(CLOSE_REASONS)
            case.resolved_at = finished
            note = case.resolution_note or case.close_reason
            events.append((CaseStatus.IN_PROGRESS, case.status, finished, note, rep.pk))
    return case, events


def _write_cases(writer: _Writer, cases: list, *, now: datetime) -> None:
    created = writer.write("follow-up cases", FollowUpCase, [case for case, _ in cases])
    writer.write(
        "case history",
        CaseEvent,
        [
            CaseEvent(
                case=case,
                from_status=old,
                to_status=new,
                created_at=when,
                note=note,
                actor_id=actor,
            )
            for case, (_, events) in zip(created, cases, strict=True)
            for old, new, when, note, actor in events
        ],
    )


def _phone_complaints(
    writer: _Writer,
    rng: random.Random,
    deals: Sequence[_Deal],
    reps: dict[int, User],
    *,
    now: datetime,
) -> None:
    """About one complaint taken by phone per rep every two months, on their customers."""
    zone = ZoneInfo(settings.TIME_ZONE)
    by_rep: dict[int, list[_Deal]] = {}
    for deal in deals:
        by_rep.setdefault(deal.owner_id, []).append(deal)
    cases = []
    for rep_id, rep_deals in sorted(by_rep.items()):
        for deal in rng.sample(rep_deals, k=min(len(rep_deals), 6)):
            day = deal.close_date + timedelta(days=rng.randint(5, 60))
            opened = _business_moment(rng, day, zone)
            if opened >= now:
                continue
            cases.append(
                _case(
                    rng,
                    now=now,
                    customer_id=deal.customer_id,
                    deal_id=deal.pk if rng.random() < 0.7 else None,
                    answer=None,
                    rep=reps[rep_id],
                    source=CaseSource.MANUAL,
                    summary=rng.choice(PHONE_COMPLAINTS),
                    opened=opened,
                )
            )
    _write_cases(writer, cases, now=now)


def _normal_exists() -> bool:
    return SurveyInvitation.objects.exclude(customer__email__endswith=LARGE_EMAIL_SUFFIX).exists()


def _large_exists() -> bool:
    return SurveyAnswer.objects.filter(customer__email__endswith=LARGE_EMAIL_SUFFIX).exists()


def seed_feedback(*, today: date, now: datetime | None = None) -> PipelineResult | None:
    """A year of surveys, answers and cases on the normal demo's won deals; None when
    the demo already has surveys (nothing is changed then)."""
    if _normal_exists():
        return None
    now = now or timezone.now()
    template = services.survey_template_default()
    rng = random.Random(FEEDBACK_SEED)  # noqa: S311 - demo data
    deals = _throttled(_won_deals(large=False, since=today - timedelta(days=365), until=today), rng)
    return _generate(
        deals,
        answered=None,
        seed=FEEDBACK_SEED,
        now=now,
        template_id=template.pk,
        manual_cases=True,
        progress=None,
    )


def seed_large_feedback(
    *,
    today: date,
    answers: int = LARGE_ANSWERS,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> PipelineResult | None:
    """``answers`` survey answers (50,000) on the large pipeline's won deals of the last
    two years, with their invitations and cases; None when they exist already."""
    if _large_exists():
        return None
    now = now or timezone.now()
    template = services.survey_template_default()
    rng = random.Random(LARGE_FEEDBACK_SEED)  # noqa: S311 - demo data
    deals = _throttled(_won_deals(large=True, since=today - timedelta(days=730), until=today), rng)
    # Keep about 1.6 invitations per answer (a response rate near 60 %), then pick
    # exactly ``answers`` of the invitations sent early enough to be answered.
    keep = min(len(deals), int(answers * 1.6))
    deals = sorted(rng.sample(deals, keep), key=lambda deal: (deal.close_date, deal.pk))
    answerable = [
        index
        for index, deal in enumerate(deals)
        if datetime.combine(
            deal.close_date + timedelta(days=3), dt_time.min, tzinfo=ZoneInfo(settings.TIME_ZONE)
        )
        < now
    ]
    answered = set(rng.sample(answerable, min(answers, len(answerable))))
    return _generate(
        deals,
        answered=answered,
        seed=LARGE_FEEDBACK_SEED,
        now=now,
        template_id=template.pk,
        manual_cases=False,
        progress=progress,
    )
