"""Sales pages: estimates (and their send / accept / reject actions), deals, activities.

Every object comes from a scoped selector (404 when not visible), including
the customer, lead or deal named in a ``?customer=`` / ``?lead=`` / ``?deal=``
link, which is resolved again on every request. Writes go through
leads.services; a refused change comes back as a message, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import get_or_404
from accounts.models import User
from feedback.selectors import deal_surveys
from leads import services
from leads.forms_sales import (
    ActivityCompleteForm,
    ActivityForm,
    DealFilterForm,
    DealForm,
    EstimateAcceptForm,
    EstimateFilterForm,
    EstimateForm,
    add_service_errors,
)
from leads.models import Customer, Deal, DealStatus, EstimateStatus, Lead
from leads.selectors import (
    activities_for_user,
    activity_get_for_user,
    capped,
    customer_get_for_user,
    deal_get_for_user,
    deals_for_user,
    estimate_get_for_user,
    estimates_for_user,
    lead_get_for_user,
)
from leads.views_customers import (
    PAGE_SIZE,
    SALES_ROLES,
    forbidden,
    lead_url,
    render_page,
)

# How many of the user's open to-dos the activity page lists before the recent ones.
TODO_CAP = 50


def _no_sales_for(user: User) -> bool:
    """Marketing works on leads, not on estimates or deals (DESIGN.md, visibility)."""
    return user.role not in SALES_ROLES


def _forbid_sales(request: HttpRequest) -> HttpResponse:
    return forbidden(request, _("Estimates and deals are for the sales team."))


# --- Where a new estimate, deal or activity comes from --------------------------------


@dataclass
class Source:
    """The customer / lead / deal a new record is made from (each already scoped)."""

    customer: Customer | None = None
    lead: Lead | None = None
    deal: Deal | None = None
    problem: str = ""

    def query(self) -> str:
        parts = []
        for name in ("customer", "lead", "deal"):
            obj = getattr(self, name)
            if obj is not None:
                parts.append(f"{name}={obj.pk}")
        return "?" + "&".join(parts) if parts else ""


def _sales_source(request: HttpRequest) -> Source:
    """?customer= and/or ?lead=: an estimate or deal needs a customer, given or the lead's."""
    user = request.user
    lead = lead_get_for_user(user=user, pk=request.GET["lead"]) if request.GET.get("lead") else None
    customer = (
        customer_get_for_user(user=user, pk=request.GET["customer"])
        if request.GET.get("customer")
        else None
    )
    source = Source(customer=customer, lead=lead)
    if lead is not None and lead.customer_id is not None:
        if customer is None:
            source.customer = customer_get_for_user(user=user, pk=lead.customer_id)
        elif customer.pk != lead.customer_id:
            source.problem = _("That lead belongs to another customer.")
    if source.customer is None and not source.problem:
        source.problem = (
            _("This lead has no customer yet: link it to a customer first.")
            if lead is not None
            else _("Start from a customer or a lead: open it and use the button there.")
        )
    return source


def _start_page(request: HttpRequest, *, title: str, problem: str) -> HttpResponse:
    return render_page(request, "leads/_sales_start.html", {"title": title, "problem": problem})


# --- Estimates --------------------------------------------------------------------------


@login_required
def estimate_list(request: HttpRequest) -> HttpResponse:
    if _no_sales_for(request.user):
        return _forbid_sales(request)
    form = EstimateFilterForm(request.GET or None)
    estimates = estimates_for_user(user=request.user).select_related(
        "customer", "product_line", "owner"
    )
    filters = form.cleaned_data if form.is_valid() else {}
    if filters.get("status"):
        estimates = estimates.filter(status=filters["status"])
    if filters.get("product_line"):
        estimates = estimates.filter(product_line=filters["product_line"])
    page = Paginator(estimates.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render_page(
        request,
        "leads/estimate_list.html",
        {"form": form, "page_obj": page, "today": timezone.localdate()},
    )


@login_required
def estimate_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    if _no_sales_for(user):
        return _forbid_sales(request)
    source = _sales_source(request)
    if source.problem:
        return _start_page(request, title=_("New estimate"), problem=source.problem)
    customer, lead = source.customer, source.lead
    assert customer is not None  # _sales_source reports a problem otherwise
    owner = (lead.owner if lead else None) or customer.owner
    form = EstimateForm(request.POST or None, user=user, owner=owner)
    if request.method == "POST" and form.is_valid():
        try:
            estimate = services.estimate_create(
                actor=user,
                customer=customer,
                lead=lead,
                owner=form.cleaned_data.get("owner"),
                product_line=form.cleaned_data["product_line"],
                title=form.cleaned_data["title"],
                amount=form.cleaned_data["amount"],
                valid_until=form.cleaned_data["valid_until"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Estimate saved as a draft."))
            if estimates_for_user(user=user).filter(pk=estimate.pk).exists():
                return redirect("leads:estimate_detail", pk=estimate.pk)
            return redirect("leads:estimate_list")
    return render_page(
        request,
        "leads/estimate_form.html",
        {"form": form, "source": source, "lead_url": lead_url(lead.pk) if lead else None},
    )


def _estimate_for(request: HttpRequest, pk: int) -> Any:
    return get_or_404(
        estimates_for_user(user=request.user).select_related(
            "customer", "lead", "product_line", "owner", "deal"
        ),
        pk=pk,
    )


@login_required
def estimate_detail(request: HttpRequest, pk: int) -> HttpResponse:
    estimate = _estimate_for(request, pk)
    deal = getattr(estimate, "deal", None)
    return render_page(
        request,
        "leads/estimate_detail.html",
        {
            "estimate": estimate,
            "deal": deal,
            "accept_form": EstimateAcceptForm(),
            "lead_url": lead_url(estimate.lead_id) if estimate.lead_id else None,
            "is_sent": estimate.status == EstimateStatus.SENT,
            "is_draft": estimate.status == EstimateStatus.DRAFT,
        },
    )


@login_required
@require_POST
def estimate_send(request: HttpRequest, pk: int) -> HttpResponse:
    estimate = estimate_get_for_user(user=request.user, pk=pk)
    try:
        services.estimate_send(estimate=estimate, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Estimate marked as sent to the customer."))
    return redirect("leads:estimate_detail", pk=estimate.pk)


@login_required
@require_POST
def estimate_reject(request: HttpRequest, pk: int) -> HttpResponse:
    estimate = estimate_get_for_user(user=request.user, pk=pk)
    try:
        services.estimate_reject(estimate=estimate, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Estimate marked as rejected by the customer."))
    return redirect("leads:estimate_detail", pk=estimate.pk)


@login_required
def estimate_accept(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks the close date; POST accepts and shows the won deal it became."""
    estimate = _estimate_for(request, pk)
    if estimate.status != EstimateStatus.SENT:
        messages.error(
            request,
            _("Only a sent estimate can be accepted; this one is %(status)s.")
            % {"status": estimate.get_status_display().lower()},
        )
        return redirect("leads:estimate_detail", pk=estimate.pk)
    form = EstimateAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            deal = services.estimate_accept(
                estimate=estimate, actor=request.user, close_date=form.cleaned_data["close_date"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Estimate accepted: this is the won deal."))
            if deals_for_user(user=request.user).filter(pk=deal.pk).exists():
                return redirect("leads:deal_detail", pk=deal.pk)
            return redirect("leads:estimate_detail", pk=estimate.pk)
    return render_page(request, "leads/estimate_accept.html", {"estimate": estimate, "form": form})


# --- Deals -------------------------------------------------------------------------------


@login_required
def deal_list(request: HttpRequest) -> HttpResponse:
    if _no_sales_for(request.user):
        return _forbid_sales(request)
    form = DealFilterForm(request.GET or None)
    deals = deals_for_user(user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    if filters.get("status"):
        deals = deals.filter(status=filters["status"])
    if filters.get("product_line"):
        deals = deals.filter(product_line=filters["product_line"])
    start, end = form.close_range(timezone.localdate()) if form.is_bound else (None, None)
    if start:
        deals = deals.filter(close_date__gte=start)
    if end:
        deals = deals.filter(close_date__lte=end)
    totals = deals.aggregate(
        won_count=Count("pk", filter=Q(status=DealStatus.WON)),
        won_amount=Sum("amount", filter=Q(status=DealStatus.WON)),
        lost_count=Count("pk", filter=Q(status=DealStatus.LOST)),
    )
    page = Paginator(
        deals.select_related("customer", "product_line", "owner").order_by("-close_date", "-pk"),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    return render_page(
        request,
        "leads/deal_list.html",
        {"form": form, "page_obj": page, "totals": totals, "start": start, "end": end},
    )


@login_required
def deal_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    if _no_sales_for(user):
        return _forbid_sales(request)
    source = _sales_source(request)
    if source.problem:
        return _start_page(request, title=_("Record a deal"), problem=source.problem)
    customer, lead = source.customer, source.lead
    assert customer is not None  # _sales_source reports a problem otherwise
    owner = (lead.owner if lead else None) or customer.owner
    form = DealForm(request.POST or None, user=user, owner=owner)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            deal = services.deal_record(
                actor=user,
                customer=customer,
                lead=lead,
                owner=data.get("owner"),
                status=data["status"],
                lost_reason=data["lost_reason"],
                product_line=data["product_line"],
                amount=data["amount"],
                close_date=data["close_date"],
                title=data["title"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Won deal recorded.")
                if deal.status == DealStatus.WON
                else _("Lost deal recorded."),
            )
            if deals_for_user(user=user).filter(pk=deal.pk).exists():
                return redirect("leads:deal_detail", pk=deal.pk)
            return redirect("leads:deal_list")
    return render_page(
        request,
        "leads/deal_form.html",
        {"form": form, "source": source, "lead_url": lead_url(lead.pk) if lead else None},
    )


@login_required
def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    deal = get_or_404(
        deals_for_user(user=user).select_related(
            "customer", "lead", "estimate", "product_line", "owner", "territory"
        ),
        pk=pk,
    )
    activities = capped(
        activities_for_user(user=user).filter(deal=deal).select_related("owner", "lead")
    )
    return render_page(
        request,
        "leads/deal_detail.html",
        {
            "deal": deal,
            "activities": activities,
            "surveys": deal_surveys(user=user, deal=deal),
            "lead_url": lead_url(deal.lead_id) if deal.lead_id else None,
        },
    )


# --- Activities --------------------------------------------------------------------------


@login_required
def activity_list(request: HttpRequest) -> HttpResponse:
    """The user's open to-dos first (soonest due first), then everything recent they may see."""
    user = request.user
    visible = activities_for_user(user=user).select_related("owner", "lead", "customer", "deal")
    todos = capped(
        visible.filter(owner=user, due_at__isnull=False, done_at__isnull=True).order_by(
            "due_at", "pk"
        ),
        TODO_CAP,
    )
    recent = visible.exclude(owner=user, due_at__isnull=False, done_at__isnull=True).order_by(
        "-occurred_at", "-pk"
    )
    page = Paginator(recent, PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page(
        request,
        "leads/activity_list.html",
        {
            "todos": todos,
            "page_obj": page,
            "now": timezone.now(),
            "complete_form": ActivityCompleteForm(),
        },
    )


def _activity_source(request: HttpRequest) -> Source:
    user = request.user
    source = Source(
        lead=lead_get_for_user(user=user, pk=request.GET["lead"])
        if request.GET.get("lead")
        else None,
        customer=(
            customer_get_for_user(user=user, pk=request.GET["customer"])
            if request.GET.get("customer")
            else None
        ),
        deal=deal_get_for_user(user=user, pk=request.GET["deal"])
        if request.GET.get("deal")
        else None,
    )
    if source.lead is None and source.customer is None and source.deal is None:
        source.problem = _(
            "Log an activity from a lead, a customer or a deal: open it and use the button there."
        )
    return source


@login_required
def activity_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    source = _activity_source(request)
    if source.problem:
        return _start_page(request, title=_("Log an activity"), problem=source.problem)
    form = ActivityForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.activity_log(
                actor=user,
                lead=source.lead,
                customer=source.customer,
                deal=source.deal,
                **form.cleaned_data,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("To-do saved.") if form.cleaned_data["due_at"] else _("Activity logged."),
            )
            return redirect(_back_to(source))
    return render_page(
        request,
        "leads/activity_form.html",
        {
            "form": form,
            "source": source,
            "lead_url": lead_url(source.lead.pk) if source.lead else None,
        },
    )


def _back_to(source: Source) -> str:
    """Back where the activity was logged from."""
    if source.deal is not None:
        return reverse("leads:deal_detail", args=[source.deal.pk])
    if source.customer is not None:
        return reverse("leads:customer_detail", args=[source.customer.pk])
    if source.lead is not None and lead_url(source.lead.pk):
        return str(lead_url(source.lead.pk))
    return reverse("leads:activity_list")


@login_required
@require_POST
def activity_complete(request: HttpRequest, pk: int) -> HttpResponse:
    activity = activity_get_for_user(user=request.user, pk=pk)
    form = ActivityCompleteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The outcome is too long (at most 200 characters)."))
    elif activity.done_at is not None:
        messages.info(request, _("This activity was already done."))
    else:
        services.activity_complete(
            activity=activity, actor=request.user, outcome=form.cleaned_data["outcome"]
        )
        messages.success(request, _("Done: %(subject)s.") % {"subject": activity.subject})
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    return redirect("leads:activity_list")
