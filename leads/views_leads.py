"""The lead pages reps, managers and marketing use every day: list, export, create, edit,
the lead with its score and timeline, and the actions on it.

Thin views: a scoped selector (404 when not visible) → a form → a service → a redirect
with a message, or the page again with the service's refusal on the form.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from html import escape as _escape
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.template.defaultfilters import floatformat
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import get_or_404
from accounts.models import Role
from leads import services
from leads.exporting import csv_lines, export_values, lead_rows, xlsx_file
from leads.filters import (
    DEFAULT_SORT,
    FILTER_FIELDS,
    Sort,
    current_sort,
    estimated_lead_total,
    fields_html,
    leads_filtered,
)
from leads.forms_leads import (
    BULK_MAX,
    AssignForm,
    BulkAction,
    BulkActionForm,
    HandToTeamForm,
    LeadForm,
    MoveStageForm,
    TemperatureForm,
    add_service_errors,
    may_assign,
    may_hand_to_team,
    service_error_text,
)
from leads.models import Lead, LeadEventKind, LeadSource, Stage, Temperature
from leads.scoring import SCORE_REASON
from leads.selectors import (
    activities_for_user,
    customers_for_user,
    deals_for_user,
    estimates_for_user,
    lead_get_for_user,
    leads_for_user,
)

# --- The list ----------------------------------------------------------------------

PAGE_SIZE = 50
# A bare ?page=N past this is refused with a hint to filter: OFFSET reads every
# skipped row. (Next/Previous links use keyset cursors and have no such limit.)
MAX_PAGE = 2000
# Only the columns the list shows: no tsvector, no score breakdown, no password hashes.
LIST_FIELDS = (
    "pk",
    "contact_name",
    "company_name",
    "email",
    "phone",
    "source",
    "stage",
    "temperature",
    "temperature_overridden",
    "score",
    "estimated_value",
    "last_contact_at",
    "created_at",
    "owner",
    "owner__display_name",
    "territory",
    "territory__name",
)
# The sortable columns of the table and the sort key they toggle between.
SORTABLE_COLUMNS = {
    "created": "-created",
    "score": "-score",
    "last_contact": "last_contact",
    "stage": "stage",
    "value": "-value",
}


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


def _query_without(params: QueryDict, *names: str) -> str:
    """The list's query string (filters and sort only, no page or cursor) without ``names``."""
    kept = QueryDict(mutable=True)
    for name in FILTER_FIELDS:
        if name not in names and name in params:
            kept.setlist(name, [value for value in params.getlist(name) if value != ""])
    return kept.urlencode()


def _url_with(base: str, query: str, **extra: Any) -> str:
    params = QueryDict(query, mutable=True)
    for name, value in extra.items():
        params[name] = str(value)
    encoded = params.urlencode()
    return f"{base}?{encoded}" if encoded else base


def _sort_links(current: str, list_url: str, params: QueryDict) -> dict[str, dict[str, Any]]:
    query = _query_without(params, "sort")
    links = {}
    for column, first in SORTABLE_COLUMNS.items():
        ascending_key = column
        descending_key = f"-{column}"
        if current == first:
            target = ascending_key if first.startswith("-") else descending_key
        else:
            target = first
        links[column] = {
            "url": _url_with(list_url, query, sort=target),
            "active": current in (ascending_key, descending_key),
            "descending": current == descending_key,
        }
    return links


STAGE_CLASSES = {
    Stage.SQL: "text-bg-primary",
    Stage.MQL: "text-bg-info",
    Stage.WON: "text-bg-success",
    Stage.LOST: "text-bg-dark",
    Stage.DISQUALIFIED: "text-bg-dark",
}
TEMPERATURE_CLASSES = {
    Temperature.HOT: "text-bg-danger",
    Temperature.WARM: "text-bg-warning",
    Temperature.COLD: "text-bg-info",
}


def _score_class(score: int) -> str:
    if score >= 70:
        return "text-bg-success"
    return "text-bg-warning" if score >= 40 else "text-bg-secondary"


def lead_rows_html(rows: list[Lead], *, base_currency: str) -> SafeString:
    """The table rows of the list, built in Python once per page.

    Why not a template loop: each row has nine cells with a dozen tags, filters and
    translations, and Django's template engine spent about a millisecond per row on
    them (a translation lookup costs tens of microseconds, and every label was
    looked up again on every row). Here each label is translated once per page,
    choice labels come from dicts, the detail URL is reversed once and dates are
    formatted once per distinct day. Every value is escaped (``html.escape``, what
    Django's ``escape`` calls, without its lazy-string wrapper); the markup is the one
    the template had (same cells, classes, links, data-testid and data-label).
    """

    def escape(value: Any) -> str:
        return _escape(str(value))

    stages = {value: str(label) for value, label in Stage.choices}
    temperatures = {value: str(label) for value, label in Temperature.choices}
    sources = {value: str(label) for value, label in LeadSource.choices}
    label = {
        "tick": escape(_("Tick")),
        "score": escape(_("Score")),
        "stage": escape(_("Stage")),
        "temperature": escape(_("Temperature")),
        "owner": escape(_("Owner")),
        "last_contact": escape(_("Last contact")),
        "value": escape(_("Value")),
        "created": escape(_("Created")),
        "unassigned": escape(_("Unassigned")),
        "never": escape(_("never")),
        "by_hand": escape(_("Set by hand")),
    }
    currency = escape(base_currency)
    sentinel = 987654321
    url_head, url_tail = reverse("leads:detail", args=[sentinel]).split(str(sentinel), 1)
    days: dict[date, str] = {}

    def day(moment: datetime) -> str:
        local = timezone.localtime(moment)
        found = days.get(local.date())
        if found is None:
            found = days[local.date()] = escape(formats.date_format(local, "SHORT_DATE_FORMAT"))
        return found

    html = []
    for lead in rows:
        name = escape(lead.display_name)
        details = escape(sources.get(lead.source, lead.source))
        if lead.territory_id is not None:
            details += f" · {escape(lead.territory.name)}"
        for position, line in enumerate(lead.product_lines.all()):
            details += f"{' · ' if position == 0 else ', '}{escape(line.name)}"
        if lead.temperature:
            by_hand = (
                f' <span title="{label["by_hand"]}">✎</span>' if lead.temperature_overridden else ""
            )
            temperature = (
                f'<span class="badge '
                f'{TEMPERATURE_CLASSES.get(lead.temperature, "text-bg-light border")}">'
                f"{escape(temperatures.get(lead.temperature, lead.temperature))}{by_hand}</span>"
            )
        else:
            temperature = "—"
        owner = (
            escape(lead.owner.display_name)
            if lead.owner_id is not None
            else f'<span class="text-body-secondary">{label["unassigned"]}</span>'
        )
        contact = (
            day(lead.last_contact_at)
            if lead.last_contact_at
            else f'<span class="text-body-secondary">{label["never"]}</span>'
        )
        value = (
            f"{escape(floatformat(lead.estimated_value, '2g'))} {currency}"
            if lead.estimated_value is not None
            else "—"
        )
        html.append(
            '<tr data-testid="lead-row">'
            f'<td class="lead-tick"><input class="form-check-input" type="checkbox" name="ids" '
            f'value="{lead.pk}" form="bulk-form" aria-label="{label["tick"]} {name}"></td>'
            f'<td class="lead-name"><a href="{url_head}{lead.pk}{url_tail}" '
            f'class="fw-semibold">{name}</a>'
            f'<div class="small text-body-secondary">{details}</div></td>'
            f'<td data-label="{label["score"]}"><span class="badge rounded-pill '
            f'{_score_class(lead.score)}" data-testid="score">{lead.score}</span></td>'
            f'<td data-label="{label["stage"]}"><span class="badge '
            f'{STAGE_CLASSES.get(lead.stage, "text-bg-light border")}" data-testid="stage">'
            f"{escape(stages.get(lead.stage, lead.stage))}</span></td>"
            f'<td data-label="{label["temperature"]}">{temperature}</td>'
            f'<td data-label="{label["owner"]}" class="text-nowrap">{owner}</td>'
            f'<td data-label="{label["last_contact"]}" class="text-nowrap">{contact}</td>'
            f'<td data-label="{label["value"]}" class="text-md-end text-nowrap">{value}</td>'
            f'<td data-label="{label["created"]}" class="text-nowrap small d-none '
            f'd-md-table-cell">{day(lead.created_at)}</td>'
            "</tr>\n"
        )
    return mark_safe("".join(html))  # noqa: S308 (every value above is escaped)


CURSOR_SALT = "leads.list.cursor"


def _cursor(sort_name: str, sort: Sort, lead: Lead) -> str:
    """The position of ``lead`` in the list's order, signed so that it cannot be forged
    into something else than a position (it is only ever applied to the scoped list)."""
    values = [
        value.isoformat()
        if isinstance(value, datetime)
        else str(value)
        if value is not None
        else None
        for value in sort.values_of(lead)
    ]
    return signing.dumps({"sort": sort_name, "values": values}, salt=CURSOR_SALT)


def _read_cursor(raw: str | None, sort_name: str, sort: Sort) -> list[Any] | None:
    """The values of a cursor made for this sort, or None (absent, stale or tampered)."""
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=CURSOR_SALT)
        if data["sort"] != sort_name or len(data["values"]) != len(sort.keys):
            return None
        return [key.parse(value) for key, value in zip(sort.keys, data["values"], strict=True)]
    except (signing.BadSignature, KeyError, TypeError, ValueError, ArithmeticError):
        return None


@login_required
def lead_list(request: HttpRequest) -> HttpResponse:
    """The filtered, sorted, paginated list with bulk actions.

    Never a COUNT: over a million leads it costs more than the page itself. Each page
    fetches one row more than it shows, to know whether a next page exists.

    Next and Previous are keyset links: they carry the position of the page's last
    (first) row, signed, and the page is "the next 50 rows after it" in the same
    order, which the database finds by seeking the index, so page 200 costs what
    page 1 costs. Every order ends with the primary key, so positions are unique.
    A bare ?page=N (a typed or old link) falls back to OFFSET over the same order,
    bounded at MAX_PAGE: OFFSET reads every skipped row, fine for the first pages only.
    """
    leads, form = leads_filtered(user=request.user, params=request.GET)
    sort_name = form.cleaned_data.get("sort") if "sort" not in form.errors else None
    sort_name = sort_name or DEFAULT_SORT
    sort = current_sort(form)
    page = _page_number(request.GET.get("page"))
    rows_query = (
        leads.select_related("owner", "territory")
        .prefetch_related("product_lines")
        .only(*LIST_FIELDS)
    )
    after = _read_cursor(request.GET.get("after"), sort_name, sort)
    before = _read_cursor(request.GET.get("before"), sort_name, sort) if after is None else None
    too_deep = False
    if after is not None:
        rows = list(rows_query.filter(sort.after(after))[: PAGE_SIZE + 1])
        has_next, has_previous = len(rows) > PAGE_SIZE, True
        rows = rows[:PAGE_SIZE]
    elif before is not None:
        backwards = sort.reversed()
        rows = list(
            rows_query.filter(backwards.after(before)).order_by(*backwards.order_by())[
                : PAGE_SIZE + 1
            ]
        )
        has_next, has_previous = True, len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        if not has_previous:
            page = 1
    else:
        too_deep = page > MAX_PAGE
        page = min(page, MAX_PAGE)
        offset = (page - 1) * PAGE_SIZE
        rows = list(rows_query[offset : offset + PAGE_SIZE + 1])
        has_next, has_previous = len(rows) > PAGE_SIZE and not too_deep, page > 1
        rows = rows[:PAGE_SIZE]
    page = max(page, 2) if has_previous else 1

    list_url = reverse("leads:list")
    query = _query_without(request.GET)
    first_index = (page - 1) * PAGE_SIZE + 1
    next_url = previous_url = None
    if has_next and rows:
        next_url = _url_with(
            list_url, query, page=page + 1, after=_cursor(sort_name, sort, rows[-1])
        )
    if has_previous:
        previous_url = (
            _url_with(list_url, query, page=page - 1, before=_cursor(sort_name, sort, rows[0]))
            if page > 2 and rows
            else _url_with(list_url, query)
        )
    user_is_admin = request.user.role == Role.ADMIN
    bulk_form = BulkActionForm(user=request.user)
    context = {
        "form": form,
        "leads": rows,
        "rows_html": lead_rows_html(rows, base_currency=settings.BASE_CURRENCY),
        "page": page,
        "has_next": has_next,
        "too_deep": too_deep,
        "first_index": first_index,
        "last_index": first_index + len(rows) - 1,
        "first_url": _url_with(list_url, query),
        "next_url": next_url,
        "previous_url": previous_url,
        "query": query,
        "sort_links": _sort_links(sort_name, list_url, request.GET),
        "is_filtered": form.is_filtered,
        # Only an admin's unfiltered list is the whole table; others have no cheap total.
        "estimated_total": (
            estimated_lead_total() if user_is_admin and not form.is_filtered else None
        ),
        "bulk_form": bulk_form,
        # Crispy's markup, written in Python (leads.filters.field_html): see there why.
        "filter_fields": fields_html(form, skip=("q",)).values(),
        "bulk_fields": fields_html(bulk_form) if rows else {},
        "base_currency": settings.BASE_CURRENCY,
        "export_csv_url": _url_with(reverse("leads:export"), query, format="csv"),
        "export_xlsx_url": _url_with(reverse("leads:export"), query, format="xlsx"),
    }
    return render(request, "leads/lead_list.html", context)


def _list_redirect(query: str) -> HttpResponseRedirect:
    # Re-encoded through QueryDict: whatever was posted, only a query string comes back.
    return HttpResponseRedirect(_url_with(reverse("leads:list"), QueryDict(query).urlencode()))


def _parse_ids(values: list[str]) -> set[int]:
    ids = set()
    for value in values:
        try:
            ids.add(int(value))
        except ValueError:
            continue
    return ids


def _lead_label(lead: Lead) -> str:
    return f"#{lead.pk} {lead.display_name}"


@login_required
@require_POST
def leads_bulk(request: HttpRequest) -> HttpResponse:
    """Assign, move or hand to a team the ticked leads, each in its own transaction.

    The ids are scoped again through ``leads_for_user``: a lead the user may not see
    is not touched and is reported as ignored. Each service call is atomic on its
    own, so one refused lead (reported with the service's reason) undoes nothing else.
    """
    back = _list_redirect(request.POST.get("query", ""))
    ids = _parse_ids(request.POST.getlist("ids"))
    if not ids:
        messages.error(request, _("Tick at least one lead first."))
        return back
    if len(ids) > BULK_MAX:
        messages.error(
            request,
            _("At most %(max)d leads at a time; %(count)d were ticked.")
            % {"max": BULK_MAX, "count": len(ids)},
        )
        return back
    form = BulkActionForm(request.POST, user=request.user)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return back

    leads = list(
        leads_for_user(user=request.user)
        .filter(pk__in=ids)
        .only("pk", "contact_name", "company_name", "email", "phone", "stage", "owner")
        .order_by("pk")
    )
    action = form.cleaned_data["action"]
    done: list[Lead] = []
    refused: dict[str, list[str]] = defaultdict(list)
    for lead in leads:
        try:
            if action == BulkAction.ASSIGN:
                services.lead_assign(
                    lead=lead, owner=form.cleaned_data["owner"], actor=request.user
                )
            elif action == BulkAction.STAGE:
                services.lead_move_stage(
                    lead=lead,
                    actor=request.user,
                    to=form.cleaned_data["to"],
                    reason=form.service_reason(),
                )
            else:
                services.lead_hand_to_team(
                    lead=lead, team=form.cleaned_data["team"], actor=request.user
                )
        except ValidationError as error:
            refused[service_error_text(error)].append(_lead_label(lead))
        else:
            done.append(lead)

    if done:
        if action == BulkAction.ASSIGN:
            text = _("%(count)d lead(s) assigned to %(owner)s.") % {
                "count": len(done),
                "owner": form.cleaned_data["owner"],
            }
        elif action == BulkAction.STAGE:
            text = _("%(count)d lead(s) moved to %(stage)s.") % {
                "count": len(done),
                "stage": Stage(form.cleaned_data["to"]).label,
            }
        else:
            text = _("%(count)d lead(s) handed to %(team)s.") % {
                "count": len(done),
                "team": form.cleaned_data["team"],
            }
        messages.success(request, text)
    for reason, labels in refused.items():
        messages.warning(
            request,
            _("Not changed: %(leads)s. %(reason)s")
            % {
                "leads": ", ".join(labels[:10]) + (" …" if len(labels) > 10 else ""),
                "reason": reason,
            },
        )
    ignored = len(ids) - len(leads)
    if ignored:
        messages.warning(
            request,
            _("%(count)d ticked lead(s) are not visible to you and were ignored.")
            % {"count": ignored},
        )
    return back


# --- Export ------------------------------------------------------------------------


@login_required
def leads_export(request: HttpRequest) -> HttpResponse:
    """The current list (same filters and scope, no page limit) as CSV or XLSX."""
    query = _query_without(request.GET)
    export_format = request.GET.get("format", "csv")
    if export_format not in ("csv", "xlsx"):
        messages.error(request, _("Export as CSV or XLSX."))
        return _list_redirect(query)
    leads, form = leads_filtered(user=request.user, params=request.GET)
    if form.errors:
        messages.error(request, _("Correct the filters before exporting."))
        return _list_redirect(query)
    leads = export_values(leads)
    filename = f"leads-{timezone.localdate().isoformat()}.{export_format}"
    if export_format == "xlsx":
        rows = lead_rows(leads.iterator(chunk_size=2000))
        return FileResponse(
            xlsx_file(rows),
            as_attachment=True,
            filename=filename,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )

    # The CSV is written while it is sent; the middleware has reset the user's time zone
    # and language by then, so the generator brings them along.
    time_zone = timezone.get_current_timezone()
    language = translation.get_language()

    def lines() -> Any:
        with timezone.override(time_zone), translation.override(language):
            yield from csv_lines(lead_rows(leads.iterator(chunk_size=2000)))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Create and edit ---------------------------------------------------------------


def _back_to_lead(request: HttpRequest, lead: Lead) -> HttpResponseRedirect:
    """The lead's page, or the list when the change took the lead out of the user's sight."""
    if leads_for_user(user=request.user).filter(pk=lead.pk).exists():
        return redirect("leads:detail", pk=lead.pk)
    messages.info(
        request,
        _("%(lead)s is now outside your leads (for example, assigned to another team).")
        % {"lead": lead.display_name},
    )
    return redirect("leads:list")


@login_required
def lead_new(request: HttpRequest) -> HttpResponse:
    form = LeadForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            lead = services.lead_create(
                actor=request.user,
                source=data["source"],
                contact_name=data["contact_name"],
                company_name=data["company_name"],
                email=data["email"],
                phone=data["phone"],
                customer=data["customer"],
                product_lines=list(data["product_lines"]),
                territory=data["territory"],
                timeframe=data["timeframe"],
                estimated_value=data["estimated_value"],
                owner=data.get("owner"),
                stage=data["stage"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Lead %(lead)s created.") % {"lead": lead.display_name})
            return _back_to_lead(request, lead)
    return render(request, "leads/lead_form.html", {"form": form, "lead": None})


@login_required
def lead_edit(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_get_for_user(user=request.user, pk=pk)
    form = LeadForm(request.POST or None, user=request.user, lead=lead)
    if request.method == "POST" and form.is_valid():
        changed = set(form.changed_data)
        changes = {
            name: form.cleaned_data[name]
            for name in services.LEAD_EDITABLE_FIELDS
            if name in changed
        }
        product_lines = (
            list(form.cleaned_data["product_lines"]) if "product_lines" in changed else None
        )
        if not changes and product_lines is None:
            messages.info(request, _("Nothing was changed."))
            return redirect("leads:detail", pk=lead.pk)
        else:
            try:
                services.lead_update(
                    lead=lead, actor=request.user, product_lines=product_lines, **changes
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("Lead saved."))
                return _back_to_lead(request, lead)
    return render(request, "leads/lead_form.html", {"form": form, "lead": lead})


# --- The lead's page ---------------------------------------------------------------

TIMELINE_LIMIT = 200
RELATED_LIMIT = 10


def optional_url(name: str, *args: Any) -> str | None:
    """A page another part of the app provides, or None while it does not exist yet."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _with_lead(url: str | None, lead: Lead) -> str | None:
    """A create page of another area, started from this lead (its ``?lead=``)."""
    return f"{url}?lead={lead.pk}" if url else None


def _value_label(kind: str, value: str) -> str:
    """Stage and temperature codes as their (translated) labels; other values as stored."""
    if kind in (LeadEventKind.STAGE, LeadEventKind.CREATED) and value in Stage.values:
        return str(Stage(value).label)
    if kind == LeadEventKind.TEMPERATURE and value in Temperature.values:
        return str(Temperature(value).label)
    return value


def _timeline(lead: Lead) -> list[dict[str, Any]]:
    # "lead" is read too: the related manager sets each event's lead from it, and a
    # deferred lead_id would cost a query per event.
    events = lead.events.select_related("actor").only(
        "lead",
        "kind",
        "from_value",
        "to_value",
        "reason",
        "comment",
        "created_at",
        "actor",
        "actor__display_name",
    )[:TIMELINE_LIMIT]
    return [
        {
            "event": event,
            "kind": LeadEventKind(event.kind).label
            if event.kind in LeadEventKind.values
            else event.kind,
            "from": _value_label(event.kind, event.from_value),
            "to": _value_label(event.kind, event.to_value),
            "reason": _("the scoring rules")
            if event.kind == LeadEventKind.SCORE and event.reason == SCORE_REASON
            else event.reason,
        }
        for event in events
    ]


def _detail_context(request: HttpRequest, lead: Lead, **forms: Any) -> dict[str, Any]:
    user = request.user
    estimates = list(
        estimates_for_user(user=user)
        .filter(lead=lead)
        .select_related("product_line")
        .order_by("-created_at")[:RELATED_LIMIT]
    )
    deals = list(
        deals_for_user(user=user)
        .filter(lead=lead)
        .select_related("product_line")
        .order_by("-close_date", "-pk")[:RELATED_LIMIT]
    )
    activities = list(
        activities_for_user(user=user)
        .filter(lead=lead)
        .select_related("owner")
        .order_by("-occurred_at", "-pk")[:RELATED_LIMIT]
    )
    customer_url = None
    if lead.customer_id and customers_for_user(user=user).filter(pk=lead.customer_id).exists():
        customer_url = optional_url("leads:customer_detail", lead.customer_id)
    win_percent = (
        (lead.win_probability * 100).quantize(Decimal("1"))
        if lead.win_probability is not None
        else None
    )
    breakdown = [item for item in (lead.score_breakdown or []) if isinstance(item, dict)]
    context: dict[str, Any] = {
        "lead": lead,
        "product_lines": list(lead.product_lines.all()),
        "breakdown": breakdown,
        "breakdown_total": sum(int(item.get("points") or 0) for item in breakdown),
        "win_percent": win_percent,
        "timeline": _timeline(lead),
        "timeline_limit": TIMELINE_LIMIT,
        "estimates": [(e, optional_url("leads:estimate_detail", e.pk)) for e in estimates],
        "deals": [(d, optional_url("leads:deal_detail", d.pk)) for d in deals],
        "activities": activities,
        "customer_url": customer_url,
        "base_currency": settings.BASE_CURRENCY,
        "new_activity_url": _with_lead(optional_url("leads:activity_create"), lead),
        "new_estimate_url": None,
        "new_deal_url": None,
        "move_form": None,
        "temperature_form": None,
        "assign_form": None,
        "hand_form": None,
    }
    if user.role != Role.MARKETING:
        context["new_estimate_url"] = _with_lead(optional_url("leads:estimate_create"), lead)
        context["new_deal_url"] = _with_lead(optional_url("leads:deal_create"), lead)
    if services.allowed_stages(lead):
        context["move_form"] = MoveStageForm(lead=lead)
    if lead.is_open:
        context["temperature_form"] = TemperatureForm(initial={"temperature": lead.temperature})
    if may_assign(user):
        context["assign_form"] = AssignForm(user=user, initial={"owner": lead.owner_id})
    if may_hand_to_team(user) and lead.stage == Stage.MQL and lead.owner_id is None:
        context["hand_form"] = HandToTeamForm(initial={"team": lead.team_id})
    context.update(forms)
    return context


def _get_lead(request: HttpRequest, pk: int) -> Lead:
    """The lead if the user may see it (404 otherwise), with what its page shows."""
    leads = leads_for_user(user=request.user).select_related(
        "owner", "team", "territory", "customer", "created_by"
    )
    return get_or_404(leads, pk=pk)


@login_required
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _get_lead(request, pk)
    return render(request, "leads/lead_detail.html", _detail_context(request, lead))


def _detail_again(request: HttpRequest, lead: Lead, **forms: Any) -> HttpResponse:
    """The lead's page with the refused form and its messages (nothing was saved)."""
    lead.refresh_from_db()
    return render(request, "leads/lead_detail.html", _detail_context(request, lead, **forms))


@login_required
@require_POST
def lead_stage(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _get_lead(request, pk)
    form = MoveStageForm(request.POST, lead=lead)
    if form.is_valid():
        try:
            services.lead_move_stage(
                lead=lead,
                actor=request.user,
                to=form.cleaned_data["to"],
                reason=form.service_reason(),
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            add_service_errors(form, error, form.field_map())
        else:
            messages.success(
                request, _("Moved to %(stage)s.") % {"stage": Stage(form.cleaned_data["to"]).label}
            )
            return _back_to_lead(request, lead)
    return _detail_again(request, lead, move_form=form)


@login_required
@require_POST
def lead_temperature(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _get_lead(request, pk)
    if "back_to_timeframe" in request.POST:
        form = TemperatureForm(initial={"temperature": lead.temperature})
        temperature: str | None = None
        reason = ""
    else:
        form = TemperatureForm(request.POST)
        if not form.is_valid():
            return _detail_again(request, lead, temperature_form=form)
        temperature = form.cleaned_data["temperature"]
        reason = form.cleaned_data["reason"]
    try:
        services.lead_set_temperature(
            lead=lead, actor=request.user, temperature=temperature, reason=reason
        )
    except ValidationError as error:
        if not form.is_bound:
            form = TemperatureForm(request.POST)
            form.is_valid()
        add_service_errors(form, error)
        return _detail_again(request, lead, temperature_form=form)
    if temperature is None:
        messages.success(request, _("The temperature follows the buying timeframe again."))
    else:
        messages.success(
            request, _("Temperature set to %(value)s.") % {"value": Temperature(temperature).label}
        )
    return _back_to_lead(request, lead)


@login_required
@require_POST
def lead_owner(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _get_lead(request, pk)
    if not may_assign(request.user):
        raise PermissionDenied
    form = AssignForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            services.lead_assign(lead=lead, owner=form.cleaned_data["owner"], actor=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request, _("Assigned to %(owner)s.") % {"owner": form.cleaned_data["owner"]}
            )
            return _back_to_lead(request, lead)
    return _detail_again(request, lead, assign_form=form)


@login_required
@require_POST
def lead_team(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _get_lead(request, pk)
    if not may_hand_to_team(request.user):
        raise PermissionDenied
    form = HandToTeamForm(request.POST)
    if form.is_valid():
        try:
            services.lead_hand_to_team(
                lead=lead,
                team=form.cleaned_data["team"],
                actor=request.user,
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request, _("Handed to %(team)s.") % {"team": form.cleaned_data["team"]}
            )
            return _back_to_lead(request, lead)
    return _detail_again(request, lead, hand_form=form)
