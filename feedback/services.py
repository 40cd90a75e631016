"""Writes of the feedback app: invitations and their emails, answers, follow-up cases.

Each service validates, saves and records history in one transaction; a refused
change raises ValidationError with a message for the user and saves nothing.

Sending is exactly-once (DESIGN.md, "Background work"): every email is a
``SurveyDelivery`` row that is *claimed* with a conditional UPDATE (``state =
'scheduled' AND send_after <= now``) before it is sent, and marked sent after.
The email's Message-ID is derived from the invitation and the kind of email,
so a resend after a crash is recognisable as the same message. A worker that
dies after claiming leaves the row "claimed"; ``deliveries_sweep`` gives such
claims back after ``SURVEY_CLAIM_TIMEOUT``. One email that fails never stops the
others: its error is recorded and its next attempt is pushed back.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.headerregistry import Address
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Role, User
from feedback import conf
from feedback.defaults import DEFAULT_TEMPLATE_NAME, DEFAULT_TEXTS
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
    SurveyTemplate,
    SurveyTemplateText,
    SurveyToken,
)
from leads.models import Customer, Deal, DealStatus

logger = logging.getLogger(__name__)

SALES_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)
LANGUAGE_CODES = frozenset(code for code, _name in settings.LANGUAGES)
FREE_TEXT_MAX = 5000


# --- Tokens -------------------------------------------------------------------------


def token_hash(token: str) -> str:
    """What is stored of a link's token. The token has 256 random bits, so a plain
    SHA-256 cannot be reversed or guessed; a leaked table opens no survey."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_new() -> str:
    return secrets.token_urlsafe(32)


def message_id(invitation_id: int, kind: str) -> str:
    """The same Message-ID for every attempt at the same email: a retry is recognisable."""
    return f"<survey.{invitation_id}.{kind}@{conf.message_id_domain()}>"


# --- Working days -----------------------------------------------------------------------


def is_working_day(day: date) -> bool:
    """Monday to Friday, except the COMPANY_HOLIDAYS."""
    return day.weekday() < 5 and day not in conf.holidays()


def add_working_days(start: datetime, days: int) -> datetime:
    """The same clock time (company time zone) ``days`` working days after ``start``'s day.

    Opened Monday 10:00 with 2 days: due Wednesday 10:00; opened Friday 15:00 or
    on the weekend: due Tuesday at that time. Daylight saving keeps the clock time.
    """
    zone = ZoneInfo(settings.TIME_ZONE)
    local = start.astimezone(zone)
    day, counted = local.date(), 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day, local.time(), tzinfo=zone)


def case_deadline(opened_at: datetime) -> datetime:
    return add_working_days(opened_at, conf.case_deadline_working_days())


# --- Templates --------------------------------------------------------------------------


def survey_template_default() -> SurveyTemplate:
    """The default template; made from the built-in texts (five languages) when there is none."""
    template = SurveyTemplate.objects.filter(is_default=True).first()
    if template is not None:
        return template
    try:
        with transaction.atomic():
            template = SurveyTemplate.objects.create(name=DEFAULT_TEMPLATE_NAME, is_default=True)
            SurveyTemplateText.objects.bulk_create(
                SurveyTemplateText(
                    template=template,
                    language=language,
                    intro=texts[0],
                    csat_question=texts[1],
                    nps_question=texts[2],
                    free_text_question=texts[3],
                    contact_question=texts[4],
                )
                for language, texts in DEFAULT_TEXTS.items()
                if language in LANGUAGE_CODES
            )
    except IntegrityError:
        # Someone else made it at the same moment (one default only): use theirs.
        return SurveyTemplate.objects.get(is_default=True)
    return template


def customer_language(customer: Customer) -> str:
    return customer.language if customer.language in LANGUAGE_CODES else "en"


# --- Concerns -----------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _concern_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    parts = []
    for word in words:
        whole = word.startswith("=")
        text = re.escape(word.lstrip("=").casefold())
        parts.append(rf"(?<!\w){text}" + (r"(?!\w)" if whole else ""))
    return re.compile("|".join(parts) or r"(?!)")


def text_has_concern(text: str, language: str) -> bool:
    """Whether a free-text answer voices a concern (see ``conf.DEFAULT_CONCERN_WORDS``)."""
    if not text.strip():
        return False
    return bool(_concern_pattern(conf.concern_words(language)).search(text.casefold()))


# --- Invitations ----------------------------------------------------------------------------


def _recently_surveyed(customer_id: int, now: datetime) -> bool:
    """Sent within the throttle window, or waiting to be sent (and not given up)."""
    return (
        SurveyInvitation.objects.filter(customer_id=customer_id, failed_at__isnull=True)
        .filter(Q(sent_at__gt=now - conf.throttle()) | Q(sent_at__isnull=True))
        .exists()
    )


@transaction.atomic
def invitation_create(
    *,
    customer: Customer,
    rep: User,
    reason: str,
    now: datetime,
    send_after: datetime,
    deal: Deal | None = None,
    actor: User | None = None,
) -> SurveyInvitation:
    """Schedule a survey for ``customer`` about ``deal`` (or in general), for ``rep``.

    Refused (ValidationError, nothing saved) when the customer has no email or was
    surveyed within SURVEY_THROTTLE_DAYS (or has a survey waiting). The customer
    row is locked while checking, so two deals won at once schedule one survey.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if not customer.email:
        raise ValidationError(
            _("%(customer)s has no email address: add one to send a survey.")
            % {"customer": customer}
        )
    if _recently_surveyed(customer.pk, now):
        raise ValidationError(
            _(
                "%(customer)s has a survey waiting or answered one in the last %(days)s days: "
                "no new survey yet."
            )
            % {"customer": customer, "days": conf.throttle().days}
        )
    invitation = SurveyInvitation.objects.create(
        customer=customer,
        deal=deal,
        rep=rep,
        team_id=rep.team_id,
        template=survey_template_default(),
        reason=reason,
        email=customer.email,
        language=customer_language(customer),
        created_by=actor,
        created_at=now,
        send_after=send_after,
    )
    SurveyDelivery.objects.create(
        invitation=invitation, kind=DeliveryKind.INVITATION, send_after=send_after
    )
    return invitation


def invitation_create_for_won_deal(
    *, deal: Deal, now: datetime | None = None
) -> SurveyInvitation | None:
    """Schedule the survey of a won deal, SURVEY_SEND_DELAY from now.

    Called by ``leads.services.deal_record`` inside its transaction. Never raises
    for an expected refusal (no email, surveyed recently): it returns None and
    the deal is recorded all the same. A deal recorded long after it closed (an
    import of history) gets no survey: its close date must lie within the
    throttle window.
    """
    now = now or timezone.now()
    if deal.status != DealStatus.WON:
        return None
    if deal.close_date < timezone.localdate(now) - conf.throttle():
        return None
    try:
        return invitation_create(
            customer=deal.customer,
            rep=deal.owner,
            deal=deal,
            reason=InvitationReason.DEAL_WON,
            now=now,
            send_after=now + conf.send_delay(),
        )
    except ValidationError as refusal:
        logger.info("No survey for deal %s: %s", deal.pk, "; ".join(refusal.messages))
        return None


@transaction.atomic
def invitation_request(
    *,
    actor: User,
    customer: Customer,
    deal: Deal | None = None,
    now: datetime | None = None,
) -> SurveyInvitation:
    """A survey asked for from a customer's or a deal's page: sent right away.

    The survey is the rep's who owns the deal (or the customer). The email is
    queued after commit; the dispatcher sends it anyway if that queueing is lost.
    """
    now = now or timezone.now()
    if actor.role not in SALES_ROLES:
        raise ValidationError(_("Only sales reps, managers and administrators send surveys."))
    if deal is not None and deal.customer_id != customer.pk:
        raise ValidationError(_("That deal belongs to another customer."))
    rep = deal.owner if deal is not None else customer.owner
    if rep is None:
        raise ValidationError(_("This customer has no owner: assign one before sending a survey."))
    invitation = invitation_create(
        customer=customer,
        rep=rep,
        deal=deal,
        reason=InvitationReason.ON_DEMAND,
        now=now,
        send_after=now,
        actor=actor,
    )
    delivery_id = invitation.deliveries.get(kind=DeliveryKind.INVITATION).pk
    from feedback.tasks import send_survey_email

    transaction.on_commit(lambda: send_survey_email.delay(delivery_id=delivery_id))
    return invitation


# --- Sending ------------------------------------------------------------------------------


def deliveries_claim_due(*, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """Claim up to ``limit`` due emails; returns (delivery id, claim time) of each.

    SKIP LOCKED: two dispatchers at once take different rows, never the same.
    """
    claimed_at = timezone.now()
    with transaction.atomic():
        ids = list(
            SurveyDelivery.objects.select_for_update(skip_locked=True)
            .filter(state=DeliveryState.SCHEDULED, send_after__lte=now)
            .order_by("send_after", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            SurveyDelivery.objects.filter(pk__in=ids, state=DeliveryState.SCHEDULED).update(
                state=DeliveryState.CLAIMED, claimed_at=claimed_at, attempts=F("attempts") + 1
            )
    return [(pk, claimed_at) for pk in ids]


def delivery_claim(*, delivery_id: int, now: datetime) -> datetime | None:
    """Claim one email if it is due and nobody has it; the claim time, or None."""
    claimed_at = timezone.now()
    claimed = SurveyDelivery.objects.filter(
        pk=delivery_id, state=DeliveryState.SCHEDULED, send_after__lte=now
    ).update(state=DeliveryState.CLAIMED, claimed_at=claimed_at, attempts=F("attempts") + 1)
    return claimed_at if claimed == 1 else None


@dataclass(frozen=True)
class _Prepared:
    delivery: SurveyDelivery
    invitation: SurveyInvitation
    token: str


def _claimed(delivery_id: int, claimed_at: datetime) -> Q:
    return Q(pk=delivery_id, state=DeliveryState.CLAIMED, claimed_at=claimed_at)


def _moot_reason(delivery: SurveyDelivery, invitation: SurveyInvitation, now: datetime) -> str:
    if invitation.answered_at is not None:
        return "answered"
    if invitation.failed_at is not None:
        return "given up"
    if delivery.kind == DeliveryKind.REMINDER and (
        invitation.expires_at is None or invitation.expires_at <= now
    ):
        return "expired"
    return ""


@transaction.atomic
def _prepare(delivery_id: int, claimed_at: datetime, now: datetime) -> _Prepared | str:
    """Check the claimed email still has a reason to go, and issue its link's token."""
    delivery = SurveyDelivery.objects.filter(_claimed(delivery_id, claimed_at)).first()
    if delivery is None:
        return "lost"  # the sweeper gave it to someone else
    invitation = (
        SurveyInvitation.objects.select_for_update(of=("self",))
        .select_related("customer", "rep", "template")
        .get(pk=delivery.invitation_id)
    )
    moot = _moot_reason(delivery, invitation, now)
    if moot:
        SurveyDelivery.objects.filter(_claimed(delivery_id, claimed_at)).update(
            state=DeliveryState.CANCELLED, last_error=moot
        )
        return "cancelled"
    customer = invitation.customer
    if not customer.email:
        SurveyDelivery.objects.filter(_claimed(delivery_id, claimed_at)).update(
            state=DeliveryState.FAILED, last_error="the customer has no email address"
        )
        if delivery.kind == DeliveryKind.INVITATION:
            invitation.failed_at = now
            invitation.failure = "the customer has no email address"
            invitation.save(update_fields=["failed_at", "failure"])
        return "failed"
    token = token_new()
    SurveyToken.objects.create(
        invitation=invitation, token_hash=token_hash(token), kind=delivery.kind, created_at=now
    )
    if invitation.expires_at is None:
        invitation.expires_at = now + conf.link_validity()
    invitation.email = customer.email
    invitation.language = customer_language(customer)
    invitation.save(update_fields=["expires_at", "email", "language"])
    return _Prepared(delivery=delivery, invitation=invitation, token=token)


def survey_url(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("feedback:survey", args=[token])


def _survey_email(prepared: _Prepared) -> EmailMultiAlternatives:
    from feedback.selectors import survey_texts

    invitation, kind = prepared.invitation, prepared.delivery.kind
    rep = invitation.rep
    language = invitation.language
    texts = survey_texts(invitation.template, language)
    with translation.override(language):
        context = {
            "invitation": invitation,
            "customer": invitation.customer,
            "rep": rep,
            "company": conf.company_name(),
            "texts": texts,
            "url": survey_url(prepared.token),
            "expires_on": timezone.localdate(invitation.expires_at),
        }
        subject = render_to_string(f"emails/survey_{kind}_subject.txt", context).strip()
        body = render_to_string(f"emails/survey_{kind}.txt", context)
        html = render_to_string(f"emails/survey_{kind}.html", context)
    headers = {"Message-ID": message_id(invitation.pk, kind)}
    if kind == DeliveryKind.REMINDER:
        headers["In-Reply-To"] = headers["References"] = message_id(
            invitation.pk, DeliveryKind.INVITATION
        )
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        # From the rep's company, with the rep's name; answers by email reach the rep.
        from_email=str(
            Address(
                display_name=f"{rep.display_name} · {conf.company_name()}",
                addr_spec=conf.from_address(),
            )
        ),
        to=[invitation.email],
        reply_to=[rep.email],
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return message


@transaction.atomic
def _mark_sent(prepared: _Prepared, claimed_at: datetime, now: datetime) -> None:
    delivery, invitation = prepared.delivery, prepared.invitation
    SurveyDelivery.objects.filter(_claimed(delivery.pk, claimed_at)).update(
        state=DeliveryState.SENT, sent_at=now, last_error=""
    )
    if delivery.kind == DeliveryKind.INVITATION:
        SurveyInvitation.objects.filter(pk=invitation.pk, sent_at__isnull=True).update(sent_at=now)
        # The one reminder; ignore_conflicts: a resend after a crash schedules no second one.
        SurveyDelivery.objects.bulk_create(
            [
                SurveyDelivery(
                    invitation=invitation,
                    kind=DeliveryKind.REMINDER,
                    send_after=now + conf.reminder_after(),
                )
            ],
            ignore_conflicts=True,
        )
    else:
        SurveyInvitation.objects.filter(pk=invitation.pk).update(reminded_at=now)


def _record_failure(delivery_id: int, claimed_at: datetime, now: datetime, error: Exception) -> str:
    """Give the email back with its next attempt later, or give up after SURVEY_MAX_ATTEMPTS."""
    text = f"{type(error).__name__}: {error}"[:1000]
    with transaction.atomic():
        delivery = (
            SurveyDelivery.objects.select_for_update()
            .filter(_claimed(delivery_id, claimed_at))
            .first()
        )
        if delivery is None:
            return "lost"
        if delivery.attempts >= conf.max_attempts():
            delivery.state = DeliveryState.FAILED
            if delivery.kind == DeliveryKind.INVITATION:
                SurveyInvitation.objects.filter(pk=delivery.invitation_id).update(
                    failed_at=now, failure=text[:300]
                )
        else:
            delivery.state = DeliveryState.SCHEDULED
            delivery.send_after = now + conf.retry_delay(delivery.attempts)
        delivery.last_error = text
        delivery.save(update_fields=["state", "send_after", "last_error"])
    logger.warning("Survey email %s not sent (%s): %s", delivery_id, delivery.state, text)
    return "failed" if delivery.state == DeliveryState.FAILED else "retry"


def delivery_send(*, delivery_id: int, claimed_at: datetime, now: datetime) -> str:
    """Send one claimed email. Returns what happened: sent, retry, failed, cancelled, lost.

    Never raises: one email's trouble must not stop a batch.
    """
    try:
        prepared = _prepare(delivery_id, claimed_at, now)
        if isinstance(prepared, str):
            return prepared
        _survey_email(prepared).send()
    except Exception as error:  # any failure is recorded on the row
        return _record_failure(delivery_id, claimed_at, now, error)
    try:
        _mark_sent(prepared, claimed_at, now)
    except Exception:
        # Sent but not recorded: the claim stays, and the sweeper's resend carries
        # the same Message-ID. Better than stopping the batch here.
        logger.exception("Survey email %s sent but not recorded", delivery_id)
        return "sent, not recorded"
    return "sent"


def delivery_send_now(*, delivery_id: int, now: datetime) -> str:
    """Claim and send one email if it is due (an on-demand survey); "not due" otherwise."""
    claimed_at = delivery_claim(delivery_id=delivery_id, now=now)
    if claimed_at is None:
        return "not due"
    return delivery_send(delivery_id=delivery_id, claimed_at=claimed_at, now=now)


def deliveries_dispatch(*, now: datetime) -> Counter[str]:
    """Send every email due at ``now``, in small claimed batches; counts of the outcomes.

    Safe to run twice at once (SKIP LOCKED) and to repeat: an email sent is never
    claimed again, a failed one only after its back-off.
    """
    outcomes: Counter[str] = Counter()
    handled = 0
    while handled < conf.dispatch_max_per_run():
        batch = deliveries_claim_due(now=now, limit=conf.dispatch_batch_size())
        if not batch:
            break
        for delivery_id, claimed_at in batch:
            outcomes[delivery_send(delivery_id=delivery_id, claimed_at=claimed_at, now=now)] += 1
        handled += len(batch)
    return outcomes


def deliveries_sweep(*, now: datetime) -> int:
    """Give back claims older than SURVEY_CLAIM_TIMEOUT (their worker died); how many.

    The email may have gone out before the worker died: the resend carries the
    same Message-ID, and the first link keeps working (tokens are never replaced).
    """
    stale = SurveyDelivery.objects.filter(
        state=DeliveryState.CLAIMED, claimed_at__lt=now - conf.claim_timeout()
    )
    given_up = stale.filter(attempts__gte=conf.max_attempts()).update(
        state=DeliveryState.FAILED, last_error="claim timed out too often"
    )
    requeued = stale.update(
        state=DeliveryState.SCHEDULED, send_after=now, last_error="claim timed out"
    )
    if given_up or requeued:
        logger.warning("Survey emails: %s claims given back, %s given up", requeued, given_up)
    return requeued


# --- Answers ---------------------------------------------------------------------------------


class SurveyUnavailable(Exception):
    """The survey cannot be answered: the link is unknown, expired or already used."""

    INVALID = "invalid"
    EXPIRED = "expired"
    ANSWERED = "answered"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def case_reasons(*, csat: int, nps: int, has_concern: bool) -> list[str]:
    """Why an answer opens a follow-up case (empty: it does not).

    CSAT 2 or less, NPS 6 or less (a detractor), or a concern in the comment.
    """
    reasons = []
    if csat <= 2:
        reasons.append(_("CSAT %(score)s/5") % {"score": csat})
    if nps <= 6:
        reasons.append(_("NPS %(score)s/10") % {"score": nps})
    if has_concern:
        reasons.append(_("concern in the comment"))
    return reasons


def _validate_scores(csat: int, nps: int) -> None:
    errors = {}
    if not isinstance(csat, int) or not 1 <= csat <= 5:
        errors["csat"] = _("Choose a score from 1 to 5.")
    if not isinstance(nps, int) or not 0 <= nps <= 10:
        errors["nps"] = _("Choose a score from 0 to 10.")
    if errors:
        raise ValidationError(errors)


def survey_answer(
    *,
    token: str,
    csat: int,
    nps: int,
    free_text: str = "",
    may_contact: bool | None = None,
    now: datetime | None = None,
) -> SurveyAnswer:
    """Store a customer's answer; exactly once per invitation.

    The invitation row is locked (SELECT … FOR UPDATE) while checking and
    writing, and the answer is UNIQUE per invitation: of two submits at once the
    second waits, then finds it answered (SurveyUnavailable "answered") and
    stores nothing. A poor answer opens a follow-up case in the same transaction.
    """
    now = now or timezone.now()
    _validate_scores(csat, nps)
    with transaction.atomic():
        # The invitation of the link, locked: one query (the token hash is unique).
        # (get(), not first(): an ORDER BY would make PostgreSQL walk the invitations.)
        try:
            invitation = (
                SurveyInvitation.objects.select_for_update(of=("self",))
                .select_related("template")
                .get(tokens__token_hash=token_hash(token))
            )
        except SurveyInvitation.DoesNotExist:
            raise SurveyUnavailable(SurveyUnavailable.INVALID) from None
        if invitation.answered_at is not None:
            raise SurveyUnavailable(SurveyUnavailable.ANSWERED)
        if invitation.expires_at is None or invitation.expires_at <= now:
            raise SurveyUnavailable(SurveyUnavailable.EXPIRED)
        template = invitation.template
        free_text = free_text.strip()[:FREE_TEXT_MAX] if template.ask_free_text else ""
        has_concern = text_has_concern(free_text, invitation.language)
        try:
            answer = SurveyAnswer.objects.create(
                invitation=invitation,
                customer_id=invitation.customer_id,
                deal_id=invitation.deal_id,
                rep_id=invitation.rep_id,
                team_id=invitation.team_id,
                csat=csat,
                nps=nps,
                free_text=free_text,
                may_contact=may_contact if template.ask_contact else None,
                has_concern=has_concern,
                language=invitation.language,
                answered_at=now,
            )
        except IntegrityError:
            # Only reachable if the lock were bypassed; the constraint still holds.
            raise SurveyUnavailable(SurveyUnavailable.ANSWERED) from None
        # No reminder after an answer: the dispatcher cancels a reminder whose
        # invitation is answered when it comes due (``_prepare``); the busy public
        # page does not touch the emails.
        invitation.answered_at = now
        invitation.save(update_fields=["answered_at"])
        reasons = case_reasons(csat=csat, nps=nps, has_concern=has_concern)
        if reasons:
            rep: User = User.objects.get(pk=invitation.rep_id)
            with translation.override(rep.language):
                summary = _("Survey answer: %(reasons)s") % {"reasons": ", ".join(reasons)}
            _case_create(
                customer_id=invitation.customer_id,
                rep=rep,
                deal_id=invitation.deal_id,
                answer=answer,
                source=CaseSource.SURVEY,
                summary=summary,
                description="",
                actor=None,
                now=now,
            )
    return answer


# --- Follow-up cases ---------------------------------------------------------------------

# Where a case may go from each status.
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED, CaseStatus.CLOSED}),
    CaseStatus.IN_PROGRESS: frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED}),
    CaseStatus.RESOLVED: frozenset(),
    CaseStatus.CLOSED: frozenset(),
}


def allowed_case_statuses(case: FollowUpCase) -> list[str]:
    return [status for status in CaseStatus.values if status in CASE_TRANSITIONS[case.status]]


def _case_create(
    *,
    customer_id: int,
    rep: User,
    deal_id: int | None,
    answer: SurveyAnswer | None,
    source: str,
    summary: str,
    description: str,
    actor: User | None,
    now: datetime,
) -> FollowUpCase:
    case = FollowUpCase.objects.create(
        customer_id=customer_id,
        deal_id=deal_id,
        answer=answer,
        rep=rep,
        team_id=rep.team_id,
        source=source,
        summary=summary[:300],
        description=description,
        opened_at=now,
        opened_by=actor,
        deadline=case_deadline(now),
    )
    CaseEvent.objects.create(
        case=case, from_status="", to_status=CaseStatus.OPEN, actor=actor, created_at=now
    )
    if actor is None or actor.pk != rep.pk:  # nobody needs an email about their own action
        from feedback.tasks import notify_case_opened

        case_id = case.pk
        transaction.on_commit(lambda: notify_case_opened.delay(case_id=case_id))
    return case


@transaction.atomic
def case_open(
    *,
    actor: User,
    customer: Customer,
    summary: str,
    description: str = "",
    deal: Deal | None = None,
    now: datetime | None = None,
) -> FollowUpCase:
    """Open a case by hand (a complaint by phone) for the rep who owns the deal or customer."""
    now = now or timezone.now()
    if actor.role not in SALES_ROLES:
        raise ValidationError(_("Only sales reps, managers and administrators open cases."))
    if deal is not None and deal.customer_id != customer.pk:
        raise ValidationError({"deal": _("That deal belongs to another customer.")})
    rep = deal.owner if deal is not None else customer.owner
    if rep is None:
        raise ValidationError(_("This customer has no owner: assign one before opening a case."))
    summary = summary.strip()
    if not summary:
        raise ValidationError({"summary": _("Say in a few words what the case is about.")})
    return _case_create(
        customer_id=customer.pk,
        rep=rep,
        deal_id=deal.pk if deal is not None else None,
        answer=None,
        source=CaseSource.MANUAL,
        summary=summary,
        description=description.strip(),
        actor=actor,
        now=now,
    )


@transaction.atomic
def case_change_status(
    *,
    case: FollowUpCase,
    actor: User,
    to_status: str,
    note: str = "",
    now: datetime | None = None,
) -> FollowUpCase:
    """open → in progress → resolved (note required) or closed without action (reason required).

    Every change is a CaseEvent with who and when. Asking for the status the case
    already has changes nothing (a double click records one event).
    """
    now = now or timezone.now()
    if actor.role not in SALES_ROLES:
        raise ValidationError(_("Only sales reps, managers and administrators work on cases."))
    case = FollowUpCase.objects.select_for_update().get(pk=case.pk)
    if to_status not in CaseStatus.values:
        raise ValidationError({"to_status": _("Choose a status.")})
    if to_status == case.status:
        return case
    if to_status not in CASE_TRANSITIONS[case.status]:
        raise ValidationError(
            _("A case that is %(current)s cannot become %(new)s.")
            % {
                "current": CaseStatus(case.status).label.lower(),
                "new": CaseStatus(to_status).label.lower(),
            }
        )
    note = note.strip()
    if to_status == CaseStatus.RESOLVED and not note:
        raise ValidationError({"note": _("Write how the case was resolved.")})
    if to_status == CaseStatus.CLOSED and not note:
        raise ValidationError({"note": _("Write why the case is closed without action.")})
    previous = case.status
    case.status = to_status
    fields = ["status", "updated_at"]
    if to_status == CaseStatus.RESOLVED:
        case.resolution_note, case.resolved_at = note, now
        fields += ["resolution_note", "resolved_at"]
    elif to_status == CaseStatus.CLOSED:
        case.close_reason, case.resolved_at = note, now
        fields += ["close_reason", "resolved_at"]
    case.save(update_fields=fields)
    CaseEvent.objects.create(
        case=case, from_status=previous, to_status=to_status, note=note, actor=actor, created_at=now
    )
    return case


def case_notification_claim(*, case_id: int, now: datetime) -> bool:
    """Claim the "case opened" email of a case: True exactly once per case."""
    return (
        FollowUpCase.objects.filter(pk=case_id, notified_at__isnull=True).update(notified_at=now)
        == 1
    )


def case_notification_release(*, case_id: int) -> None:
    """The email could not be sent: let a retry claim it again."""
    FollowUpCase.objects.filter(pk=case_id).update(notified_at=None)
