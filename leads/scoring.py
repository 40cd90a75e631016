"""Explainable lead scoring: rule points plus a win probability learned from history.

A lead's score (0 to 100) is the sum of the lines of its breakdown, each a rule
with the points it gave and why:

- source: where the lead came from (a referral is worth more than a purchased list);
- temperature: hot > warm > cold (the buying timeframe);
- fit: the lead's territory is covered by an active rep; it asks for an active
  product line;
- engagement: contacts logged on the lead in the last N days (capped);
- completeness: email, phone, contact name, company;
- decay: no contact for N days costs points, more each week, capped;
- learned win probability: naive Bayes over the organisation's own won/lost
  leads (source, product lines, territory, temperature; Laplace smoothing, as
  Odoo's predictive lead scoring), worth up to ``probability_points``;
- a last "capped" line when the sum left 0..100, so the lines always add up to
  the score shown.

The weights are the ``LEAD_SCORING`` setting (``DEFAULT_SCORING`` below when
unset; a partial dict overrides only the keys it names).

Stored texts: each line's ``rule`` is the English label (a msgid marked for
translation: show it with ``{% translate line.rule %}``); ``detail`` is written
in the installation's language (``LANGUAGE_CODE``), whoever or whatever
triggered the rescoring, and names dates rather than "N days ago" so that a
nightly rescoring does not rewrite every lead's breakdown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextChoices,
)
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_noop, ngettext

from accounts.models import Role, User
from leads.models import (
    CLOSED_STAGES,
    CONTACT_KINDS,
    OPEN_STAGES,
    Activity,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadSource,
    Stage,
    Temperature,
    WinModel,
)

DEFAULT_SCORING: dict[str, Any] = {
    # Points by lead source (a source not listed gets 0).
    "source": {
        LeadSource.REFERRAL: 20,
        LeadSource.EXISTING_CUSTOMER: 20,
        LeadSource.LIVE_CHAT: 12,
        LeadSource.WEBINAR: 12,
        LeadSource.TRADE_SHOW: 12,
        LeadSource.NETWORKING: 10,
        LeadSource.INBOUND_CONTENT: 10,
        LeadSource.RECYCLED: 8,
        LeadSource.EMAIL_CAMPAIGN: 8,
        LeadSource.SOCIAL_MEDIA: 8,
        LeadSource.LOCAL_ADVERTISING: 6,
        LeadSource.OTHER: 5,
        LeadSource.PURCHASED_LIST: 2,
    },
    "temperature": {Temperature.HOT: 20, Temperature.WARM: 10, Temperature.COLD: 0},
    # Fit: the territory has an active rep; the lead wants a product line still sold.
    "territory_covered": 5,
    "product_line_active": 5,
    # Engagement: points per contact activity in the last `engagement_days`, capped.
    "engagement_days": 30,
    "engagement_points_per_contact": 3,
    "engagement_max_points": 15,
    # Completeness of the contact data.
    "completeness": {"email": 3, "phone": 3, "contact_name": 2, "company": 2},
    # Decay: from `decay_after_days` without contact (since the last contact, or since
    # the lead was created), lose `decay_points_per_week` for each week begun, capped.
    "decay_after_days": 14,
    "decay_points_per_week": 5,
    "decay_max_points": 30,
    # The learned win probability p adds round(p * probability_points).
    "probability_points": 30,
    # Win model: decided leads of the last N days (None: all history); models kept.
    "win_model_history_days": 730,
    "win_model_keep": 3,
}


def scoring_config() -> dict[str, Any]:
    """DEFAULT_SCORING overlaid with the LEAD_SCORING setting (top-level keys)."""
    configured = getattr(settings, "LEAD_SCORING", DEFAULT_SCORING)
    return {**DEFAULT_SCORING, **configured}


# Rule labels: msgids, stored untranslated and translated when shown.
RULE_SOURCE = gettext_noop("Source")
RULE_TEMPERATURE = gettext_noop("Temperature")
RULE_TERRITORY = gettext_noop("Fit: territory")
RULE_PRODUCT_LINE = gettext_noop("Fit: product line")
RULE_ENGAGEMENT = gettext_noop("Engagement")
RULE_COMPLETENESS = gettext_noop("Contact data")
RULE_DECAY = gettext_noop("No recent contact")
RULE_PROBABILITY = gettext_noop("Learned win probability")
RULE_CAPPED = gettext_noop("Kept between 0 and 100")

SCORE_REASON = "rules"
FOUR_PLACES = Decimal("0.0001")


# --- Features: what the rules look at, read in one query -------------------------


@dataclass(frozen=True)
class LeadFeatures:
    pk: int
    score: int
    score_breakdown: list[dict[str, Any]]
    win_probability: Decimal | None
    source: str
    temperature: str
    territory_id: int | None
    product_line_ids: list[int]
    has_active_product_line: bool
    territory_covered: bool
    recent_contacts: int
    email: str
    phone: str
    contact_name: str
    company_name: str
    customer_id: int | None
    last_contact_at: datetime | None
    created_at: datetime


_FEATURE_FIELDS = (
    "pk",
    "score",
    "score_breakdown",
    "win_probability",
    "source",
    "temperature",
    "territory_id",
    "email",
    "phone",
    "contact_name",
    "company_name",
    "customer_id",
    "last_contact_at",
    "created_at",
)


def _with_features(leads: QuerySet[Lead], *, now: datetime, config: Mapping[str, Any]) -> Any:
    """One SELECT: each lead's own fields plus the counted facts the rules need.

    Subqueries (each a probe of an index on the lead): its product lines, whether one
    is active, whether an active rep covers its territory, its recent contacts.
    """
    lines = Lead.product_lines.through.objects.filter(lead_id=OuterRef("pk"))
    since = now - timedelta(days=int(config["engagement_days"]))
    contacts = (
        Activity.objects.filter(
            lead_id=OuterRef("pk"),
            kind__in=CONTACT_KINDS,
            occurred_at__gt=since,
            occurred_at__lte=now,
        )
        # A to-do not yet done is a plan, not a contact.
        .filter(Q(due_at__isnull=True) | Q(done_at__isnull=False))
        .order_by()
        .values("lead_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return leads.annotate(
        product_line_ids=ArraySubquery(lines.order_by("productline_id").values("productline_id")),
        has_active_product_line=Exists(lines.filter(productline__is_active=True)),
        territory_covered=Exists(
            User.territories.through.objects.filter(
                territory_id=OuterRef("territory_id"),
                territory__is_active=True,
                user__is_active=True,
                user__role=Role.REP,
            )
        ),
        recent_contacts=Coalesce(Subquery(contacts, output_field=IntegerField()), 0),
    ).values(
        *_FEATURE_FIELDS,
        "product_line_ids",
        "has_active_product_line",
        "territory_covered",
        "recent_contacts",
    )


def _features(row: Mapping[str, Any]) -> LeadFeatures:
    return LeadFeatures(**{**row, "product_line_ids": list(row["product_line_ids"] or [])})


# --- The learned probability -------------------------------------------------------


def latest_win_model() -> WinModel | None:
    return WinModel.objects.order_by("-computed_at", "-pk").first()


def win_probability(
    model: WinModel | None,
    *,
    source: str,
    product_line_ids: Iterable[int],
    territory_id: int | None,
    temperature: str,
) -> Decimal | None:
    """P(won | the lead's features) by naive Bayes with Laplace smoothing (alpha = 1).

    P(won) is proportional to (W+1)/(W+L+2) * the product of (won_v + 1)/(W + k_f),
    and P(lost) to the same with L and lost_v, where W and L count the decided leads
    won and not won (lost or disqualified), won_v and lost_v those among them with
    the lead's value v of feature f, and k_f the number of values of f seen in the
    history, plus one when v was never seen (its counts are then 0 and 0).

    Product lines: each line of interest is one piece of evidence (as Odoo does with
    tags), so a lead asking for two lines that often win is more likely to win than
    one asking for one of them. An empty value (no territory, no temperature) is no
    evidence and is skipped. None when there is no model or no decided lead yet:
    without history there is nothing learned to show.
    """
    if model is None or model.won + model.lost == 0:
        return None
    won_total, lost_total = model.won, model.lost
    log_won = math.log((won_total + 1) / (won_total + lost_total + 2))
    log_lost = math.log((lost_total + 1) / (won_total + lost_total + 2))
    evidence = [
        ("source", source or ""),
        ("territory", str(territory_id) if territory_id else ""),
        ("temperature", temperature or ""),
        *(("product_line", str(pk)) for pk in product_line_ids),
    ]
    for feature, value in evidence:
        if not value:
            continue
        table = model.counts.get(feature, {})
        won_v, lost_v = table.get(value, (0, 0))
        values_seen = len(table) + (0 if value in table else 1)
        log_won += math.log((won_v + 1) / (won_total + values_seen))
        log_lost += math.log((lost_v + 1) / (lost_total + values_seen))
    probability = 1 / (1 + math.exp(log_lost - log_won))
    return Decimal(repr(probability)).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


_DECIDED_WON = Q(stage=Stage.WON)


@transaction.atomic
def win_model_recompute(*, now: datetime) -> WinModel:
    """Count won vs not won (lost or disqualified) decided leads per feature value.

    Set-based: one GROUP BY per feature (source, territory, temperature, and product
    line through the M2M table) plus one for the totals. Stores a new WinModel and
    keeps only the newest ``win_model_keep``. Safe to repeat: a rerun stores the same
    counts again and prunes the older copies.
    """
    config = scoring_config()
    decided = Lead.objects.filter(stage__in=CLOSED_STAGES)
    if config.get("win_model_history_days"):
        since = now - timedelta(days=int(config["win_model_history_days"]))
        # A closed lead without a decision time (old imports) counts as history too.
        decided = decided.filter(Q(decided_at__gte=since) | Q(decided_at__isnull=True))
    decided = decided.order_by()
    won_count = Count("pk", filter=_DECIDED_WON)
    lost_count = Count("pk", filter=~_DECIDED_WON)
    totals = decided.aggregate(won=won_count, lost=lost_count)

    counts: dict[str, dict[str, list[int]]] = {}
    for feature, field in (
        ("source", "source"),
        ("territory", "territory_id"),
        ("temperature", "temperature"),
    ):
        rows = decided.values(field).annotate(won=won_count, lost=lost_count)
        counts[feature] = {
            str(row[field]): [row["won"], row["lost"]]
            for row in rows
            if row[field] not in ("", None)
        }
    line_rows = (
        Lead.product_lines.through.objects.filter(lead__in=decided)
        .order_by()
        .values("productline_id")
        .annotate(
            won=Count("lead_id", filter=Q(lead__stage=Stage.WON)),
            lost=Count("lead_id", filter=~Q(lead__stage=Stage.WON)),
        )
    )
    counts["product_line"] = {
        str(row["productline_id"]): [row["won"], row["lost"]] for row in line_rows
    }
    model = WinModel.objects.create(won=totals["won"], lost=totals["lost"], counts=counts)
    keep = list(
        WinModel.objects.order_by("-computed_at", "-pk").values_list("pk", flat=True)[
            : max(1, int(config["win_model_keep"]))
        ]
    )
    WinModel.objects.exclude(pk__in=keep).delete()
    return model


# --- The rules ---------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreResult:
    score: int
    breakdown: list[dict[str, Any]]
    win_probability: Decimal | None


def _line(rule: str, points: int, detail: str) -> dict[str, Any]:
    return {"rule": rule, "points": int(points), "detail": str(detail)}


# Translations and dates memoised per language: the nightly rescoring writes the
# same few texts for a million leads, and gettext's lookups were most of its time.
@lru_cache(maxsize=1024)
def _translated(language: str | None, message: str) -> str:
    return gettext(message)


@lru_cache(maxsize=256)
def _choice_label(language: str | None, choices: type[TextChoices], value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


@lru_cache(maxsize=4096)
def _date_text(language: str | None, day: date) -> str:
    return date_format(day, "DATE_FORMAT")


def _day(language: str | None, moment: datetime) -> str:
    return _date_text(language, timezone.localdate(moment))


def score_compute(
    features: LeadFeatures,
    *,
    model: WinModel | None,
    now: datetime,
    config: Mapping[str, Any],
) -> ScoreResult:
    """The breakdown and score of one lead; pure (no queries)."""
    with translation.override(settings.LANGUAGE_CODE):
        return _score_compute(features, model=model, now=now, config=config)


def _score_compute(
    features: LeadFeatures,
    *,
    model: WinModel | None,
    now: datetime,
    config: Mapping[str, Any],
) -> ScoreResult:
    lines: list[dict[str, Any]] = []
    language = translation.get_language()

    def _(message: str) -> str:
        return _translated(language, message)

    lines.append(
        _line(
            RULE_SOURCE,
            config["source"].get(features.source, 0),
            _choice_label(language, LeadSource, features.source),
        )
    )

    if features.temperature:
        lines.append(
            _line(
                RULE_TEMPERATURE,
                config["temperature"].get(features.temperature, 0),
                _choice_label(language, Temperature, features.temperature),
            )
        )
    else:
        lines.append(_line(RULE_TEMPERATURE, 0, _("Not known yet")))

    if features.territory_id is None:
        lines.append(_line(RULE_TERRITORY, 0, _("No territory")))
    elif features.territory_covered:
        lines.append(
            _line(RULE_TERRITORY, config["territory_covered"], _("An active rep covers it"))
        )
    else:
        lines.append(_line(RULE_TERRITORY, 0, _("No active rep covers it")))

    if features.has_active_product_line:
        lines.append(
            _line(RULE_PRODUCT_LINE, config["product_line_active"], _("Asks for a product we sell"))
        )
    elif features.product_line_ids:
        lines.append(_line(RULE_PRODUCT_LINE, 0, _("Only product lines no longer sold")))
    else:
        lines.append(_line(RULE_PRODUCT_LINE, 0, _("No product line given")))

    engagement = min(
        features.recent_contacts * int(config["engagement_points_per_contact"]),
        int(config["engagement_max_points"]),
    )
    lines.append(
        _line(
            RULE_ENGAGEMENT,
            engagement,
            ngettext(
                "%(count)d contact in the last %(days)d days",
                "%(count)d contacts in the last %(days)d days",
                features.recent_contacts,
            )
            % {"count": features.recent_contacts, "days": int(config["engagement_days"])},
        )
    )

    present = []
    points = 0
    completeness = config["completeness"]
    for field, has_it, label in (
        ("email", bool(features.email), _("email")),
        ("phone", bool(features.phone), _("phone")),
        ("contact_name", bool(features.contact_name), _("name")),
        ("company", bool(features.company_name or features.customer_id), _("company")),
    ):
        if has_it:
            present.append(str(label))
            points += int(completeness.get(field, 0))
    lines.append(
        _line(RULE_COMPLETENESS, points, ", ".join(present) if present else _("nothing given"))
    )

    reference = features.last_contact_at or features.created_at
    quiet_days = (now - reference).days if reference else 0
    after = int(config["decay_after_days"])
    if quiet_days >= after:
        weeks = (quiet_days - after) // 7 + 1
        decay = min(weeks * int(config["decay_points_per_week"]), int(config["decay_max_points"]))
        detail = (
            _("No contact since %(date)s") % {"date": _day(language, features.last_contact_at)}
            if features.last_contact_at
            else _("Never contacted since it came in on %(date)s")
            % {"date": _day(language, features.created_at)}
        )
        lines.append(_line(RULE_DECAY, -decay, detail))
    else:
        lines.append(_line(RULE_DECAY, 0, _("In touch within %(days)d days") % {"days": after}))

    probability = win_probability(
        model,
        source=features.source,
        product_line_ids=features.product_line_ids,
        territory_id=features.territory_id,
        temperature=features.temperature,
    )
    if probability is None:
        lines.append(_line(RULE_PROBABILITY, 0, _("No won or lost leads to learn from yet")))
    else:
        learned = int(
            (probability * int(config["probability_points"])).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )
        lines.append(
            _line(
                RULE_PROBABILITY,
                learned,
                _("%(percent)s%% of similar leads are won")
                % {"percent": (probability * 100).quantize(Decimal("0.1"))},
            )
        )

    total = sum(line["points"] for line in lines)
    score = max(0, min(100, total))
    if score != total:
        lines.append(_line(RULE_CAPPED, score - total, _("The score runs from 0 to 100")))
    return ScoreResult(score=score, breakdown=lines, win_probability=probability)


# --- Services ----------------------------------------------------------------------


def _score_event(lead_id: int, old: int, new: int) -> LeadEvent:
    return LeadEvent(
        lead_id=lead_id,
        kind=LeadEventKind.SCORE,
        from_value=str(old),
        to_value=str(new),
        actor=None,
        reason=SCORE_REASON,
    )


@transaction.atomic
def lead_rescore(*, lead: Lead, now: datetime) -> Lead:
    """Recompute ``lead``'s score, breakdown and learned probability, and save them.

    Queries, whatever the lead's history: 1 SELECT of the lead with its features
    (product lines, territory coverage, recent contacts as subqueries), 1 SELECT of
    the newest win model, 1 UPDATE, and 1 INSERT of a SCORE event only when the
    score changed. Safe to repeat: the same facts give the same score and no event.
    """
    config = scoring_config()
    row = _with_features(Lead.objects.filter(pk=lead.pk), now=now, config=config).get()
    features = _features(row)
    result = score_compute(features, model=latest_win_model(), now=now, config=config)
    lead.score = result.score
    lead.score_breakdown = result.breakdown
    lead.win_probability = result.win_probability
    lead.save(update_fields=["score", "score_breakdown", "win_probability"])
    if result.score != features.score:
        _score_event(lead.pk, features.score, result.score).save()
    return lead


def _bulk_write_scores(updates: list[tuple[int, ScoreResult]]) -> None:
    """One UPDATE … FROM unnest(arrays) for a batch: Django's bulk_update builds a CASE
    per field and row, which costs more than the scoring itself at this size."""
    table = connection.ops.quote_name(Lead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS lead SET score = data.score, "  # noqa: S608 (our table name)
            "score_breakdown = data.breakdown::jsonb, win_probability = data.probability "
            "FROM unnest(%s::bigint[], %s::integer[], %s::text[], %s::numeric[]) "
            "AS data(id, score, breakdown, probability) WHERE lead.id = data.id",
            [
                [pk for pk, _result in updates],
                [result.score for _pk, result in updates],
                [json.dumps(result.breakdown) for _pk, result in updates],
                [result.win_probability for _pk, result in updates],
            ],
        )


def leads_rescore_open(*, now: datetime, batch_size: int = 2000) -> int:
    """Rescore every open lead, a batch at a time; returns how many scores changed.

    Each batch is one transaction: one SELECT … FOR UPDATE SKIP LOCKED of the next
    leads by pk with their features, one UPDATE of those whose score, breakdown or
    probability changed, and a bulk INSERT of their SCORE events. A lead locked by a
    user's edit is skipped: the service editing it rescores it anyway. Safe to
    repeat: a second run finds nothing changed and records no event.
    """
    config = scoring_config()
    model = latest_win_model()
    changed = 0
    last_pk = 0
    while True:
        with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
            batch = Lead.objects.filter(stage__in=OPEN_STAGES, pk__gt=last_pk).order_by("pk")
            batch = batch.select_for_update(skip_locked=True, of=("self",))
            rows = list(_with_features(batch, now=now, config=config)[:batch_size])
            if not rows:
                return changed
            updates: list[tuple[int, ScoreResult]] = []
            events: list[LeadEvent] = []
            for row in rows:
                features = _features(row)
                result = _score_compute(features, model=model, now=now, config=config)
                if (
                    result.score == features.score
                    and result.breakdown == features.score_breakdown
                    and result.win_probability == features.win_probability
                ):
                    continue
                updates.append((features.pk, result))
                if result.score != features.score:
                    events.append(_score_event(features.pk, features.score, result.score))
            if updates:
                _bulk_write_scores(updates)
            if events:
                LeadEvent.objects.bulk_create(events, batch_size=1000)
            changed += len(events)
            last_pk = rows[-1]["pk"]
