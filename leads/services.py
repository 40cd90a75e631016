"""Writes to the pipeline. Each service validates, saves and records history in
one transaction; a refused change raises ValidationError with a message for the
user and saves nothing.

The lead stage machine (DESIGN.md):

    suspect ──> cold | warm | hot ──> MQL ──> SQL ──> won | lost
         any open stage ──> disqualified (reason required)
         lost | disqualified ──> recycled back to suspect/cold (source: recycled)

Moving between cold, warm and hot is a change of temperature. A lead is won
through its won deal (``deal_record``), never by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.access import users_for_user
from accounts.models import ProductLine, Role, Team, Territory, User
from leads.models import (
    CLOSED_STAGES,
    CONTACT_KINDS,
    OPEN_STAGES,
    TEMPERATURE_STAGES,
    Activity,
    Contact,
    Customer,
    Deal,
    DealStatus,
    Estimate,
    EstimateStatus,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadSource,
    LostReason,
    Stage,
    Temperature,
    normalise_phone,
)

# Where a lead may go by hand from each stage.
TRANSITIONS: dict[str, frozenset[str]] = {
    Stage.SUSPECT: frozenset({Stage.COLD, Stage.WARM, Stage.HOT, Stage.DISQUALIFIED}),
    Stage.COLD: frozenset({Stage.WARM, Stage.HOT, Stage.MQL, Stage.DISQUALIFIED}),
    Stage.WARM: frozenset({Stage.COLD, Stage.HOT, Stage.MQL, Stage.DISQUALIFIED}),
    Stage.HOT: frozenset({Stage.COLD, Stage.WARM, Stage.MQL, Stage.DISQUALIFIED}),
    Stage.MQL: frozenset({Stage.SQL, Stage.DISQUALIFIED}),
    Stage.SQL: frozenset({Stage.WON, Stage.LOST, Stage.DISQUALIFIED}),
    Stage.WON: frozenset(),
    Stage.LOST: frozenset({Stage.SUSPECT, Stage.COLD}),
    Stage.DISQUALIFIED: frozenset({Stage.SUSPECT, Stage.COLD}),
}
RECYCLE_STAGES = (Stage.SUSPECT, Stage.COLD)


def allowed_stages(lead: Lead) -> list[str]:
    """The stages a user may move this lead to by hand (won only through a deal)."""
    return [stage for stage in Stage.values if stage in TRANSITIONS[lead.stage] - {Stage.WON}]


# --- Temperature -------------------------------------------------------------


def temperature_for(*, timeframe: date | None, today: date) -> str:
    """Hot: decision within LEAD_HOT_DAYS; warm: within LEAD_WARM_DAYS; else cold."""
    if timeframe is None:
        return Temperature.COLD
    days = (timeframe - today).days
    if days <= settings.LEAD_HOT_DAYS:
        return Temperature.HOT
    if days <= settings.LEAD_WARM_DAYS:
        return Temperature.WARM
    return Temperature.COLD


def _today(now: datetime) -> date:
    return timezone.localdate(now)


_REFRESH_TEMPERATURES_SQL = """
WITH derived AS (
    SELECT id, stage AS old_stage, temperature AS old_temperature,
           CASE WHEN timeframe - %(today)s <= %(hot)s THEN 'hot'
                WHEN timeframe - %(today)s <= %(warm)s THEN 'warm'
                ELSE 'cold' END AS new_temperature
    FROM leads_lead
    WHERE timeframe IS NOT NULL
      AND NOT temperature_overridden
      AND stage IN %(open)s
), changed AS (
    UPDATE leads_lead AS lead
    SET temperature = derived.new_temperature,
        stage = CASE WHEN lead.stage IN %(temperature_stages)s
                     THEN derived.new_temperature ELSE lead.stage END,
        updated_at = %(now)s
    FROM derived
    WHERE lead.id = derived.id AND derived.old_temperature <> derived.new_temperature
    RETURNING lead.id, derived.old_stage, derived.old_temperature, derived.new_temperature
)
INSERT INTO leads_leadevent (lead_id, kind, from_value, to_value, reason, comment, created_at)
SELECT id, 'temperature', old_temperature, new_temperature, %(reason)s, '', %(now)s FROM changed
UNION ALL
SELECT id, 'stage', old_stage, new_temperature, %(reason)s, '', %(now)s
FROM changed WHERE old_stage IN %(temperature_stages)s
"""


def leads_refresh_temperatures(*, today: date, now: datetime | None = None) -> int:
    """Re-derive the temperature of open leads as their buying timeframe draws near.

    A lead whose decision was 45 days away is warm; a month later it is hot, and
    a lead in a temperature stage moves with it. Leads whose temperature was set
    by hand keep it. One set-based statement (the changes and their history);
    safe to repeat: a second run the same day finds nothing to change.
    Returns the number of history rows written.
    """
    from django.db import connection

    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _REFRESH_TEMPERATURES_SQL,
            {
                "today": today,
                "hot": settings.LEAD_HOT_DAYS,
                "warm": settings.LEAD_WARM_DAYS,
                "open": tuple(str(stage) for stage in OPEN_STAGES),
                "temperature_stages": tuple(str(stage) for stage in TEMPERATURE_STAGES),
                "reason": _("Buying timeframe drew nearer"),
                "now": now,
            },
        )
        return cursor.rowcount


# --- History -----------------------------------------------------------------


def _record(
    lead: Lead,
    kind: str,
    *,
    from_value: Any = "",
    to_value: Any = "",
    actor: User | None = None,
    reason: str = "",
    comment: str = "",
) -> LeadEvent:
    return LeadEvent.objects.create(
        lead=lead,
        kind=kind,
        from_value=str(from_value or ""),
        to_value=str(to_value or ""),
        actor=actor,
        reason=reason[:200],
        comment=comment,
    )


def _owner_label(user: User | None) -> str:
    return user.display_name if user else ""


# --- Leads ---------------------------------------------------------------------


def _clean_choice(value: str, choices: type, field: str, message: str) -> str:
    if value not in choices.values:
        raise ValidationError({field: message})
    return value


def _check_can_own(owner: User) -> None:
    if not owner.is_active:
        raise ValidationError({"owner": _("%(name)s is inactive.") % {"name": owner}})
    if owner.role not in (Role.REP, Role.MANAGER):
        raise ValidationError(
            {
                "owner": _("Only sales reps and managers can own this; %(name)s cannot.")
                % {"name": owner}
            }
        )


def _check_actor_may_assign(actor: User | None, owner: User) -> None:
    """Admins assign to anyone; managers within their teams; routing (actor None) anywhere."""
    if actor is None or actor.role == Role.ADMIN:
        return
    if actor.role == Role.MANAGER and users_for_user(user=actor).filter(pk=owner.pk).exists():
        return
    if actor.pk == owner.pk and actor.role in (Role.REP, Role.MANAGER):
        return
    raise ValidationError({"owner": _("You can only assign leads to people in your teams.")})


@transaction.atomic
def lead_create(
    *,
    actor: User | None,
    source: str,
    contact_name: str = "",
    company_name: str = "",
    email: str = "",
    phone: str = "",
    customer: Customer | None = None,
    product_lines: Iterable[ProductLine] = (),
    territory: Territory | None = None,
    timeframe: date | None = None,
    estimated_value: Decimal | None = None,
    owner: User | None = None,
    team: Team | None = None,
    stage: str = Stage.SUSPECT,
    route: bool = False,
    comment: str = "",
    now: datetime | None = None,
) -> Lead:
    """Create a lead, score it, and route it when it needs an owner.

    ``comment`` (e.g. the message of a web form) is kept on the "created" event
    of the timeline, so it is there whether or not the lead gets an owner.

    Reps own the leads they create. ``route`` asks for automatic assignment
    (web forms, imports); an SQL lead without an owner is always routed.
    """
    now = now or timezone.now()
    _clean_choice(source, LeadSource, "source", _("Choose a source from the list."))
    if stage not in OPEN_STAGES:
        raise ValidationError({"stage": _("A new lead starts in an open stage.")})
    if not (contact_name or company_name or email or phone or customer):
        raise ValidationError(
            _("Give at least a name, a company, an email, a phone or a customer.")
        )
    if estimated_value is not None and estimated_value < 0:
        raise ValidationError({"estimated_value": _("The estimated value cannot be negative.")})
    if owner is None and actor is not None and actor.role == Role.REP:
        owner = actor
    if owner is not None:
        _check_can_own(owner)
        _check_actor_may_assign(actor, owner)

    derived = temperature_for(timeframe=timeframe, today=_today(now))
    temperature, overridden = derived, False
    if stage in TEMPERATURE_STAGES:
        temperature, overridden = stage, stage != derived and timeframe is not None
    lead = Lead(
        customer=customer,
        contact_name=contact_name.strip(),
        company_name=company_name.strip(),
        email=email.strip().lower(),
        phone=phone.strip(),
        phone_normalised=normalise_phone(phone),
        source=source,
        territory=territory or (customer.territory if customer else None),
        timeframe=timeframe,
        estimated_value=estimated_value,
        owner=owner,
        team=owner.team if owner else team,
        stage=stage,
        temperature=temperature,
        temperature_overridden=overridden,
        reached_mql_at=now if stage in (Stage.MQL, Stage.SQL) else None,
        reached_sql_at=now if stage == Stage.SQL else None,
        created_by=actor,
    )
    lead.full_clean(exclude=["search"])
    lead.save()
    if product_lines:
        lead.product_lines.set(product_lines)
    _record(lead, LeadEventKind.CREATED, to_value=stage, actor=actor, comment=comment)
    if owner is not None:
        _record(lead, LeadEventKind.OWNER, to_value=_owner_label(owner), actor=actor)
        _notify_owner(lead, owner, actor)

    from leads.scoring import lead_rescore

    lead_rescore(lead=lead, now=now)
    if owner is None and (route or stage == Stage.SQL):
        from leads.routing import lead_route

        lead_route(lead=lead, now=now)
    return lead


LEAD_EDITABLE_FIELDS = (
    "contact_name",
    "company_name",
    "email",
    "phone",
    "customer",
    "territory",
    "timeframe",
    "estimated_value",
)


@transaction.atomic
def lead_update(
    *,
    lead: Lead,
    actor: User,
    product_lines: Iterable[ProductLine] | None = None,
    now: datetime | None = None,
    **changes: Any,
) -> Lead:
    """Edit the lead's data; a new timeframe re-derives the temperature (unless set by hand)."""
    now = now or timezone.now()
    unknown = set(changes) - set(LEAD_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"lead_update cannot change {sorted(unknown)}")
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    for field, value in changes.items():
        setattr(lead, field, value.strip() if isinstance(value, str) else value)
    lead.email = lead.email.lower()
    lead.phone_normalised = normalise_phone(lead.phone)
    if not (lead.contact_name or lead.company_name or lead.email or lead.phone or lead.customer):
        raise ValidationError(
            _("Give at least a name, a company, an email, a phone or a customer.")
        )
    lead.full_clean(exclude=["search"])
    lead.save()
    if product_lines is not None:
        lead.product_lines.set(product_lines)
    if "timeframe" in changes and not lead.temperature_overridden:
        _apply_temperature(
            lead,
            temperature_for(timeframe=lead.timeframe, today=_today(now)),
            actor=actor,
            reason=_("Buying timeframe changed"),
            overridden=False,
            now=now,
        )
    from leads.scoring import lead_rescore

    lead_rescore(lead=lead, now=now)
    return lead


def _apply_temperature(
    lead: Lead,
    temperature: str,
    *,
    actor: User | None,
    reason: str,
    overridden: bool,
    now: datetime,
) -> None:
    """Set the temperature; a lead in a temperature stage moves with it."""
    fields = []
    if lead.temperature != temperature:
        _record(
            lead,
            LeadEventKind.TEMPERATURE,
            from_value=lead.temperature,
            to_value=temperature,
            actor=actor,
            reason=reason,
        )
        lead.temperature = temperature
        fields.append("temperature")
    if lead.temperature_overridden != overridden:
        lead.temperature_overridden = overridden
        fields.append("temperature_overridden")
    if lead.stage in TEMPERATURE_STAGES and lead.stage != temperature:
        _record(
            lead,
            LeadEventKind.STAGE,
            from_value=lead.stage,
            to_value=temperature,
            actor=actor,
            reason=reason,
        )
        lead.stage = temperature
        fields.append("stage")
    if fields:
        lead.save(update_fields=[*fields, "updated_at"])


@transaction.atomic
def lead_set_temperature(
    *,
    lead: Lead,
    actor: User,
    temperature: str | None,
    reason: str = "",
    now: datetime | None = None,
) -> Lead:
    """Override the derived temperature (a reason is required), or go back to it (None)."""
    now = now or timezone.now()
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if lead.stage in CLOSED_STAGES:
        raise ValidationError(_("A closed lead has no temperature to change."))
    derived = temperature_for(timeframe=lead.timeframe, today=_today(now))
    if temperature is None:
        _apply_temperature(
            lead, derived, actor=actor, reason=_("Back to the timeframe"), overridden=False, now=now
        )
    else:
        _clean_choice(temperature, Temperature, "temperature", _("Choose cold, warm or hot."))
        if temperature != derived and not reason.strip():
            raise ValidationError(
                {"reason": _("Say why the temperature differs from the buying timeframe.")}
            )
        _apply_temperature(
            lead,
            temperature,
            actor=actor,
            reason=reason.strip() or _("Matches the timeframe"),
            overridden=temperature != derived,
            now=now,
        )
    from leads.scoring import lead_rescore

    lead_rescore(lead=lead, now=now)
    return lead


def _set_stage(
    lead: Lead,
    to: str,
    *,
    actor: User | None,
    now: datetime,
    reason: str = "",
    comment: str = "",
    lost_reason: str = "",
) -> None:
    """Move ``lead`` (locked by the caller) to ``to`` and record it; no rule checks here."""
    previous = lead.stage
    lead.stage = to
    if to in (Stage.MQL, Stage.SQL) and lead.reached_mql_at is None:
        lead.reached_mql_at = now
    if to == Stage.SQL and lead.reached_sql_at is None:
        lead.reached_sql_at = now
    if to in CLOSED_STAGES:
        lead.decided_at = now
        lead.lost_reason = lost_reason if to != Stage.WON else ""
    if previous in (Stage.LOST, Stage.DISQUALIFIED) and to in RECYCLE_STAGES:
        lead.decided_at = None
        lead.lost_reason = ""
        lead.source = LeadSource.RECYCLED
    lead.save(
        update_fields=[
            "stage",
            "reached_mql_at",
            "reached_sql_at",
            "decided_at",
            "lost_reason",
            "source",
            "updated_at",
        ]
    )
    label = LostReason(lost_reason).label if lost_reason else reason
    _record(
        lead,
        LeadEventKind.STAGE,
        from_value=previous,
        to_value=to,
        actor=actor,
        reason=str(label),
        comment=comment,
    )


@transaction.atomic
def lead_move_stage(
    *,
    lead: Lead,
    actor: User,
    to: str,
    reason: str = "",
    comment: str = "",
    now: datetime | None = None,
) -> Lead:
    """Move a lead by hand along the stage machine.

    Lost and disqualified need a reason from the list; cold/warm/hot set the
    temperature (a reason when it differs from the timeframe); won comes only
    from a won deal. Safe to repeat: moving a lead to the stage it is in
    is refused with a message and changes nothing.
    """
    now = now or timezone.now()
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    _clean_choice(to, Stage, "stage", _("Choose a stage from the list."))
    if to == Stage.WON and lead.stage == Stage.SQL:
        raise ValidationError(_("A lead is won through its deal: record the won deal."))
    if to not in TRANSITIONS[lead.stage]:
        raise ValidationError(
            _("A lead cannot go from %(from)s to %(to)s.")
            % {"from": Stage(lead.stage).label, "to": Stage(to).label}
        )
    if to in (Stage.LOST, Stage.DISQUALIFIED):
        if reason not in LostReason.values:
            raise ValidationError({"reason": _("Choose the reason from the list.")})
        if to == Stage.LOST and lead.deals.filter(status=DealStatus.WON).exists():
            raise ValidationError(_("This lead has a won deal: it cannot be lost."))
        _set_stage(lead, to, actor=actor, now=now, comment=comment, lost_reason=reason)
    elif to in TEMPERATURE_STAGES and lead.stage in (*TEMPERATURE_STAGES, Stage.SUSPECT):
        derived = temperature_for(timeframe=lead.timeframe, today=_today(now))
        if to != derived and not reason.strip():
            raise ValidationError(
                {"reason": _("Say why the temperature differs from the buying timeframe.")}
            )
        if lead.stage == Stage.SUSPECT:
            _set_stage(lead, to, actor=actor, now=now, reason=reason, comment=comment)
        _apply_temperature(
            lead,
            to,
            actor=actor,
            reason=reason.strip() or _("Matches the timeframe"),
            overridden=to != derived,
            now=now,
        )
    else:
        _set_stage(lead, to, actor=actor, now=now, reason=reason, comment=comment)
        if lead.stage in RECYCLE_STAGES and to == Stage.COLD:
            lead.temperature = Temperature.COLD
            lead.temperature_overridden = False
            lead.save(update_fields=["temperature", "temperature_overridden"])
    from leads.scoring import lead_rescore

    lead_rescore(lead=lead, now=now)
    if to == Stage.SQL and lead.owner_id is None:
        from leads.routing import lead_route

        lead_route(lead=lead, now=now)
    return lead


def _notify_owner(lead: Lead, owner: User, actor: User | None) -> None:
    if actor is not None and actor.pk == owner.pk:
        return  # nobody needs an email about their own action
    from leads.tasks import notify_lead_assigned

    lead_id, owner_id = lead.pk, owner.pk
    transaction.on_commit(lambda: notify_lead_assigned.delay(lead_id=lead_id, owner_id=owner_id))


@transaction.atomic
def lead_assign(
    *,
    lead: Lead,
    owner: User,
    actor: User | None,
    rule: str = "",
) -> Lead:
    """Give a lead an owner; ``actor`` None is automatic routing, with ``rule`` saying why.

    Managers assign within their teams, admins to anyone. The new owner is
    emailed after commit. Assigning to the current owner changes nothing.
    """
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    _check_can_own(owner)
    _check_actor_may_assign(actor, owner)
    if lead.owner_id == owner.pk:
        return lead
    previous = lead.owner
    lead.owner = owner
    lead.team = owner.team
    lead.assigned_by_rule = rule
    lead.save(update_fields=["owner", "team", "assigned_by_rule", "updated_at"])
    _record(
        lead,
        LeadEventKind.OWNER,
        from_value=_owner_label(previous),
        to_value=_owner_label(owner),
        actor=actor,
        reason=rule,
    )
    _notify_owner(lead, owner, actor)
    return lead


@transaction.atomic
def lead_hand_to_team(*, lead: Lead, team: Team, actor: User, comment: str = "") -> Lead:
    """Marketing hands a qualified (MQL) lead to a sales team, whose manager then sees it."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if actor.role not in (Role.MARKETING, Role.ADMIN):
        raise ValidationError(_("Only marketing hands leads to a team."))
    if lead.stage != Stage.MQL:
        raise ValidationError(_("Only a marketing-qualified lead (MQL) can be handed to a team."))
    if lead.owner_id is not None:
        raise ValidationError(_("This lead already has an owner."))
    if not team.is_active:
        raise ValidationError({"team": _("That team is not active.")})
    previous = lead.team
    lead.team = team
    lead.save(update_fields=["team", "updated_at"])
    _record(
        lead,
        LeadEventKind.TEAM,
        from_value=previous.name if previous else "",
        to_value=team.name,
        actor=actor,
        comment=comment,
    )
    return lead


# --- Customers -------------------------------------------------------------------


def customer_duplicates(
    *, name: str = "", email: str = "", phone: str = "", exclude_pk: int | None = None
) -> Any:
    """Existing customers with the same email, normalised phone or company name (any case).

    Not scoped: the caller decides what of them the user may see (a link or just a warning).
    """
    condition = Q()
    if email.strip():
        condition |= Q(email__iexact=email.strip())
    if normalise_phone(phone):
        condition |= Q(phone_normalised=normalise_phone(phone))
    if name.strip():
        condition |= Q(name__iexact=name.strip())
    if not condition:
        return Customer.objects.none()
    found = Customer.objects.filter(condition)
    return found.exclude(pk=exclude_pk) if exclude_pk else found


CUSTOMER_FIELDS = (
    "kind",
    "name",
    "email",
    "phone",
    "address",
    "city",
    "country",
    "language",
    "territory",
    "notes",
    "extra",
)


@transaction.atomic
def customer_create(*, actor: User, owner: User | None = None, **data: Any) -> Customer:
    unknown = set(data) - set(CUSTOMER_FIELDS)
    if unknown:
        raise TypeError(f"customer_create cannot set {sorted(unknown)}")
    if owner is None and actor.role in (Role.REP, Role.MANAGER):
        owner = actor
    if owner is not None:
        _check_actor_may_assign(actor, owner)
    customer = Customer(owner=owner, created_by=actor, **data)
    customer.email = customer.email.strip().lower()
    customer.phone_normalised = normalise_phone(customer.phone)
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, actor: User, **data: Any) -> Customer:
    unknown = set(data) - set(CUSTOMER_FIELDS) - {"owner"}
    if unknown:
        raise TypeError(f"customer_update cannot set {sorted(unknown)}")
    if "owner" in data and data["owner"] is not None:
        _check_actor_may_assign(actor, data["owner"])
    # A copy of our own: a refused edit leaves the caller's object as it was.
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    for field, value in data.items():
        setattr(customer, field, value)
    customer.email = customer.email.strip().lower()
    customer.phone_normalised = normalise_phone(customer.phone)
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_merge(*, keep: Customer, merge: Customer, actor: User) -> Customer:
    """Fold ``merge`` into ``keep``: all history moves, empty fields fill, ``merge`` goes.

    Set-based: one UPDATE per related table, whatever the history's size.
    """
    if keep.pk == merge.pk:
        raise ValidationError(_("Choose two different customers to merge."))
    keep = Customer.objects.select_for_update().get(pk=keep.pk)
    merge = Customer.objects.select_for_update().get(pk=merge.pk)
    from feedback.models import FollowUpCase, SurveyAnswer, SurveyInvitation

    related = (
        Lead,
        Estimate,
        Deal,
        Activity,
        Contact,
        SurveyInvitation,
        SurveyAnswer,
        FollowUpCase,
    )
    for model in related:
        model.objects.filter(customer=merge).update(customer=keep)
    for field in ("email", "phone", "address", "city", "country", "notes"):
        if not getattr(keep, field) and getattr(merge, field):
            setattr(keep, field, getattr(merge, field))
    if keep.territory_id is None:
        keep.territory_id = merge.territory_id
    if keep.owner_id is None:
        keep.owner_id = merge.owner_id
    keep.extra = {**merge.extra, **keep.extra}
    note = _("Merged with %(name)s (#%(pk)s) by %(actor)s on %(date)s.") % {
        "name": merge.name,
        "pk": merge.pk,
        "actor": actor,
        "date": timezone.localdate().isoformat(),
    }
    keep.notes = f"{keep.notes}\n{note}".strip()
    keep.phone_normalised = normalise_phone(keep.phone)
    keep.save()
    merge.delete()
    return keep


@transaction.atomic
def contact_add(
    *,
    customer: Customer,
    name: str,
    title: str = "",
    email: str = "",
    phone: str = "",
    language: str = "",
    is_primary: bool = False,
) -> Contact:
    contact = Contact(
        customer=customer,
        name=name.strip(),
        title=title,
        email=email.strip().lower(),
        phone=phone,
        language=language,
        is_primary=is_primary,
    )
    contact.full_clean()
    if is_primary:
        customer.contacts.filter(is_primary=True).update(is_primary=False)
    contact.save()
    return contact


# --- Estimates -----------------------------------------------------------------


def _default_owner(actor: User, owner: User | None) -> User:
    owner = owner or actor
    _check_can_own(owner)
    _check_actor_may_assign(actor, owner)
    return owner


@transaction.atomic
def estimate_create(
    *,
    actor: User,
    customer: Customer,
    product_line: ProductLine,
    amount: Decimal,
    valid_until: date,
    lead: Lead | None = None,
    title: str = "",
    owner: User | None = None,
    now: datetime | None = None,
) -> Estimate:
    now = now or timezone.now()
    owner = _default_owner(actor, owner or (lead.owner if lead else None))
    if amount is None or amount <= 0:
        raise ValidationError({"amount": _("The amount must be more than zero.")})
    if valid_until < _today(now):
        raise ValidationError({"valid_until": _("Valid until cannot be in the past.")})
    if not product_line.is_active:
        raise ValidationError({"product_line": _("That product line is no longer sold.")})
    estimate = Estimate(
        customer=customer,
        lead=lead,
        owner=owner,
        product_line=product_line,
        amount=amount,
        valid_until=valid_until,
        title=title.strip(),
    )
    estimate.full_clean()
    estimate.save()
    return estimate


def _estimate_locked(estimate: Estimate) -> Estimate:
    return Estimate.objects.select_for_update().get(pk=estimate.pk)


def _refuse_estimate(estimate: Estimate, action: str) -> ValidationError:
    return ValidationError(
        _("A %(status)s estimate cannot be %(action)s.")
        % {"status": EstimateStatus(estimate.status).label.lower(), "action": action}
    )


@transaction.atomic
def estimate_send(*, estimate: Estimate, actor: User, now: datetime | None = None) -> Estimate:
    """Draft → sent; the day it is sent is the day it counts as issued (coverage KPI)."""
    now = now or timezone.now()
    estimate = _estimate_locked(estimate)
    if estimate.status != EstimateStatus.DRAFT:
        raise _refuse_estimate(estimate, _("sent"))
    if estimate.valid_until < _today(now):
        raise ValidationError(_("This estimate's validity has passed: change it before sending."))
    estimate.status = EstimateStatus.SENT
    estimate.issued_on = _today(now)
    estimate.save(update_fields=["status", "issued_on", "updated_at"])
    return estimate


@transaction.atomic
def estimate_reject(*, estimate: Estimate, actor: User, now: datetime | None = None) -> Estimate:
    now = now or timezone.now()
    estimate = _estimate_locked(estimate)
    if estimate.status != EstimateStatus.SENT:
        raise _refuse_estimate(estimate, _("rejected"))
    estimate.status = EstimateStatus.REJECTED
    estimate.decided_on = _today(now)
    estimate.save(update_fields=["status", "decided_on", "updated_at"])
    return estimate


@transaction.atomic
def estimate_accept(
    *, estimate: Estimate, actor: User, close_date: date | None = None, now: datetime | None = None
) -> Deal:
    """Sent → accepted, and the won deal it becomes (the lead, if any, is won with it)."""
    now = now or timezone.now()
    estimate = _estimate_locked(estimate)
    if estimate.status != EstimateStatus.SENT:
        raise _refuse_estimate(estimate, _("accepted"))
    close_date = close_date or _today(now)
    estimate.status = EstimateStatus.ACCEPTED
    estimate.decided_on = close_date
    estimate.save(update_fields=["status", "decided_on", "updated_at"])
    return deal_record(
        actor=actor,
        customer=estimate.customer,
        product_line=estimate.product_line,
        amount=estimate.amount,
        close_date=close_date,
        status=DealStatus.WON,
        lead=estimate.lead,
        estimate=estimate,
        owner=estimate.owner,
        title=estimate.title,
        now=now,
    )


def estimates_expire_due(*, today: date) -> int:
    """Sent estimates past their validity become expired. Set-based; safe to repeat."""
    return Estimate.objects.filter(status=EstimateStatus.SENT, valid_until__lt=today).update(
        status=EstimateStatus.EXPIRED, decided_on=F("valid_until"), updated_at=timezone.now()
    )


# --- Deals -----------------------------------------------------------------------


@transaction.atomic
def deal_record(
    *,
    actor: User,
    customer: Customer,
    product_line: ProductLine,
    amount: Decimal,
    close_date: date,
    status: str,
    lost_reason: str = "",
    lead: Lead | None = None,
    estimate: Estimate | None = None,
    owner: User | None = None,
    territory: Territory | None = None,
    title: str = "",
    now: datetime | None = None,
) -> Deal:
    """Record a won or lost deal; its lead is won (or lost) with it.

    A won deal on a lead not yet in SQL passes it through SQL first, so the
    funnel stays true. A lost deal closes the lead only if nothing on it was won.
    """
    now = now or timezone.now()
    _clean_choice(status, DealStatus, "status", _("Choose won or lost."))
    if status == DealStatus.LOST and lost_reason not in LostReason.values:
        raise ValidationError({"lost_reason": _("Choose why the deal was lost.")})
    if status == DealStatus.WON:
        lost_reason = ""
    if amount is None or amount < 0:
        raise ValidationError({"amount": _("The amount cannot be negative.")})
    if close_date > _today(now):
        raise ValidationError(
            {"close_date": _("A deal closes today or earlier, not in the future.")}
        )
    if lead is not None and lead.customer_id not in (None, customer.pk):
        raise ValidationError({"lead": _("That lead belongs to another customer.")})
    owner = _default_owner(actor, owner or (lead.owner if lead else None))
    deal = Deal(
        customer=customer,
        lead=lead,
        estimate=estimate,
        owner=owner,
        product_line=product_line,
        territory=territory or (lead.territory if lead else None) or customer.territory,
        title=title.strip(),
        amount=amount,
        close_date=close_date,
        status=status,
        lost_reason=lost_reason,
    )
    deal.full_clean()
    deal.save()
    if lead is not None:
        _close_lead_from_deal(lead, deal, actor=actor, now=now)
    if deal.status == DealStatus.WON:
        from feedback.services import invitation_create_for_won_deal

        # Schedules the satisfaction survey (throttled per customer); never raises
        # for a refusal, so a won deal is always recorded.
        invitation_create_for_won_deal(deal=deal, now=now)
    return deal


def _close_lead_from_deal(lead: Lead, deal: Deal, *, actor: User, now: datetime) -> None:
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if lead.customer_id is None:
        lead.customer = deal.customer
        lead.save(update_fields=["customer", "updated_at"])
    why = _("Deal %(deal)s") % {"deal": deal}
    if deal.status == DealStatus.WON:
        if lead.stage == Stage.WON:
            return
        if lead.stage in (Stage.LOST, Stage.DISQUALIFIED):
            _set_stage(lead, Stage.SUSPECT, actor=actor, now=now, reason=why)
        if lead.stage != Stage.SQL:
            _set_stage(lead, Stage.SQL, actor=actor, now=now, reason=why)
        _set_stage(lead, Stage.WON, actor=actor, now=now, reason=why)
    elif lead.stage in OPEN_STAGES and not lead.deals.filter(status=DealStatus.WON).exists():
        _set_stage(lead, Stage.LOST, actor=actor, now=now, lost_reason=deal.lost_reason)


# --- Activities ------------------------------------------------------------------


def _touch_lead(lead_id: int | None, when: datetime) -> None:
    """Last contact moves forward only (an old call logged late does not move it back)."""
    if lead_id is None:
        return
    Lead.objects.filter(pk=lead_id).filter(
        Q(last_contact_at__isnull=True) | Q(last_contact_at__lt=when)
    ).update(last_contact_at=Greatest(F("last_contact_at"), when), updated_at=timezone.now())


@transaction.atomic
def activity_log(
    *,
    actor: User,
    kind: str,
    subject: str,
    occurred_at: datetime,
    lead: Lead | None = None,
    customer: Customer | None = None,
    deal: Deal | None = None,
    due_at: datetime | None = None,
    notes: str = "",
    outcome: str = "",
    owner: User | None = None,
) -> Activity:
    """Log an activity (or a to-do, when it has a due date). A contact logged on a lead
    moves the lead's "last contact"."""
    if lead is None and customer is None and deal is None:
        raise ValidationError(_("Link the activity to a lead, a customer or a deal."))
    owner = owner or actor
    if owner.pk != actor.pk:
        _check_actor_may_assign(actor, owner)
    activity = Activity(
        kind=kind,
        subject=subject.strip(),
        occurred_at=occurred_at,
        due_at=due_at,
        notes=notes,
        outcome=outcome,
        owner=owner,
        lead=lead,
        customer=customer or (lead.customer if lead else None) or (deal.customer if deal else None),
        deal=deal,
    )
    activity.full_clean()
    activity.save()
    if kind in CONTACT_KINDS and due_at is None:
        _touch_lead(activity.lead_id, occurred_at)
    return activity


@transaction.atomic
def activity_complete(
    *, activity: Activity, actor: User, outcome: str = "", now: datetime | None = None
) -> Activity:
    """Mark a to-do done; a contact done on a lead moves its "last contact". Repeat-safe."""
    now = now or timezone.now()
    activity = Activity.objects.select_for_update().get(pk=activity.pk)
    if activity.done_at is not None:
        return activity
    activity.done_at = now
    if outcome:
        activity.outcome = outcome
    activity.save(update_fields=["done_at", "outcome"])
    if activity.kind in CONTACT_KINDS:
        _touch_lead(activity.lead_id, now)
    return activity
