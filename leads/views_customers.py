"""Customer pages: the list, the full view of a customer, create/edit with duplicate
warnings, contacts, and merging two customers.

Every object comes from a scoped selector (404 when not visible); writes go
through leads.services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.access import get_or_404
from accounts.models import Role, User
from feedback.selectors import customer_feedback
from leads import services
from leads.forms_sales import (
    ContactForm,
    CustomerForm,
    MergeForm,
    SearchForm,
    add_service_errors,
    extra_to_text,
)
from leads.models import Activity, Contact, Customer, Deal, Estimate, Lead, normalise_phone
from leads.selectors import (
    activities_for_user,
    capped,
    customer_get_for_user,
    customers_for_user,
    deals_for_user,
    estimates_for_user,
    leads_for_user,
)

PAGE_SIZE = 25
MERGE_ROLES = (Role.MANAGER, Role.ADMIN)
SALES_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)


# --- Helpers shared with views_sales -------------------------------------------


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """render() with what every customer/sales page shows: the base currency."""
    return render(
        request, template, {"base_currency": settings.BASE_CURRENCY, **context}, status=status
    )


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """A role that may not use a page at all: 403 with the reason on top."""
    messages.error(request, message)
    return render(request, "403.html", status=403)


def lead_url(pk: int) -> str | None:
    """The lead page, when the leads pages are installed (they live in another module)."""
    try:
        return reverse("leads:detail", args=[pk])
    except NoReverseMatch:
        return None


def with_lead_urls(leads: list[Lead]) -> list[Lead]:
    for lead in leads:
        lead.page_url = lead_url(lead.pk)  # type: ignore[attr-defined]
    return leads


def customer_search(query: str) -> Q:
    """Name or email containing the text, or a phone containing its digits."""
    condition = Q(name__icontains=query) | Q(email__icontains=query)
    digits = normalise_phone(query)
    if len(digits) >= 3:
        condition |= Q(phone_normalised__contains=digits)
    return condition


# --- List ----------------------------------------------------------------------------


@login_required
def customer_list(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    customers = customers_for_user(user=request.user).select_related("owner")
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    if query:
        customers = customers.filter(customer_search(query))
    page = Paginator(customers.order_by("name", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page(
        request,
        "leads/customer_list.html",
        {"form": form, "page_obj": page, "query": query},
    )


# --- Duplicates ----------------------------------------------------------------------

REASON_LABELS = {
    "email": gettext_lazy("the same email"),
    "phone": gettext_lazy("the same phone number"),
    "name": gettext_lazy("the same name"),
}
HIDDEN_MESSAGES = {
    "email": gettext_lazy("A customer with this email exists in another team."),
    "phone": gettext_lazy("A customer with this phone number exists in another team."),
    "name": gettext_lazy("A customer with this name exists in another team."),
}


@dataclass
class Duplicate:
    """An existing customer that looks like the one being saved.

    ``customer`` is None when the user may not see it: then only the fact is
    told, never the record.
    """

    customer: Customer | None
    reasons: list[str] = field(default_factory=list)

    @property
    def reason_labels(self) -> list[str]:
        return [str(REASON_LABELS[reason]) for reason in self.reasons]

    @property
    def hidden_message(self) -> str:
        return str(HIDDEN_MESSAGES[self.reasons[0]])


def find_duplicates(
    *, user: User, name: str, email: str, phone: str, exclude_pk: int | None = None
) -> list[Duplicate]:
    found = list(
        services.customer_duplicates(
            name=name, email=email, phone=phone, exclude_pk=exclude_pk
        ).order_by("name", "pk")[:10]
    )
    if not found:
        return []
    visible = set(
        customers_for_user(user=user)
        .filter(pk__in=[customer.pk for customer in found])
        .values_list("pk", flat=True)
    )
    duplicates = []
    for customer in found:
        reasons = []
        if email.strip() and customer.email.lower() == email.strip().lower():
            reasons.append("email")
        if normalise_phone(phone) and customer.phone_normalised == normalise_phone(phone):
            reasons.append("phone")
        if name.strip() and customer.name.casefold() == name.strip().casefold():
            reasons.append("name")
        duplicates.append(
            Duplicate(customer=customer if customer.pk in visible else None, reasons=reasons)
        )
    return duplicates


# --- Create and edit ----------------------------------------------------------------


@login_required
def customer_create(request: HttpRequest) -> HttpResponse:
    return _customer_form_page(request, customer=None)


@login_required
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = customer_get_for_user(user=request.user, pk=pk)
    return _customer_form_page(request, customer=customer)


def _customer_form_page(request: HttpRequest, *, customer: Customer | None) -> HttpResponse:
    user = request.user
    initial = model_to_dict(customer, fields=CustomerForm.Meta.fields) if customer else {}
    owner = customer.owner if customer else None
    duplicates: list[Duplicate] = []
    if request.method == "POST":
        form = CustomerForm(
            request.POST,
            user=user,
            owner=owner,
            initial=initial,
            show_create_anyway="create_anyway" in request.POST,
        )
        if form.is_valid():
            data = form.service_data()
            if not form.cleaned_data.get("create_anyway"):
                duplicates = _duplicates_for_form(user, data, customer)
            if duplicates:
                # Same data again, now with the "save anyway" box to tick.
                form = CustomerForm(
                    request.POST, user=user, owner=owner, initial=initial, show_create_anyway=True
                )
                form.is_valid()
            else:
                try:
                    if customer is None:
                        customer = services.customer_create(actor=user, **data)
                        messages.success(
                            request, _("Customer %(name)s created.") % {"name": customer}
                        )
                    else:
                        customer = services.customer_update(customer=customer, actor=user, **data)
                        messages.success(
                            request, _("Customer %(name)s saved.") % {"name": customer}
                        )
                except ValidationError as error:
                    add_service_errors(form, error)
                    if customer is not None:
                        customer.refresh_from_db()  # the service set the refused values on it
                else:
                    if customers_for_user(user=user).filter(pk=customer.pk).exists():
                        return redirect("leads:customer_detail", pk=customer.pk)
                    # Given to someone the user cannot see (an admin choosing another owner).
                    return redirect("leads:customer_list")
    else:
        form = CustomerForm(user=user, owner=owner, initial=initial)
    return render_page(
        request,
        "leads/customer_form.html",
        {"form": form, "customer": customer, "duplicates": duplicates},
    )


def _duplicates_for_form(
    user: User, data: dict[str, Any], customer: Customer | None
) -> list[Duplicate]:
    """On create: any match. On edit: only matches on what was changed, so a
    customer saved "anyway" once is not warned about at every edit."""
    fields = {"name": data["name"], "email": data["email"], "phone": data["phone"]}
    if customer is not None:
        if data["name"].strip().casefold() == customer.name.casefold():
            fields["name"] = ""
        if data["email"].strip().lower() == customer.email.lower():
            fields["email"] = ""
        if normalise_phone(data["phone"]) == customer.phone_normalised:
            fields["phone"] = ""
    return find_duplicates(user=user, exclude_pk=customer.pk if customer else None, **fields)


# --- The full view ---------------------------------------------------------------------


@login_required
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything about a customer the user may see, one capped list per kind.

    One query per list (rows and total together), so the page costs the same
    whatever the customer's history.
    """
    user = request.user
    customer = get_or_404(customers_for_user(user=user).select_related("owner", "territory"), pk=pk)
    show_sales = user.role in SALES_ROLES
    context: dict[str, Any] = {
        "customer": customer,
        "extra_items": list(customer.extra.items()) if isinstance(customer.extra, dict) else [],
        "show_sales": show_sales,
        "can_merge": user.role in MERGE_ROLES,
        "contacts": capped(customer.contacts.all()),
        "leads": capped(
            leads_for_user(user=user).filter(customer=customer).select_related("owner")
        ),
        "activities": capped(
            activities_for_user(user=user)
            .filter(customer=customer)
            .select_related("owner", "lead", "deal")
        ),
    }
    with_lead_urls(context["leads"].rows)
    if show_sales:
        context["estimates"] = capped(
            estimates_for_user(user=user)
            .filter(customer=customer)
            .select_related("product_line", "owner")
        )
        context["deals"] = capped(
            deals_for_user(user=user)
            .filter(customer=customer)
            .select_related("product_line", "owner")
        )
        context["feedback"] = customer_feedback(user=user, customer=customer)
    return render_page(request, "leads/customer_detail.html", context)


# --- Contacts ----------------------------------------------------------------------------


@login_required
def contact_add(request: HttpRequest, pk: int) -> HttpResponse:
    customer = customer_get_for_user(user=request.user, pk=pk)
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.contact_add(customer=customer, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Contact %(name)s added.") % {"name": contact})
            return redirect("leads:customer_detail", pk=customer.pk)
    return render_page(
        request, "leads/customer_contact_form.html", {"form": form, "customer": customer}
    )


# --- Merge -------------------------------------------------------------------------------


MERGED_FIELDS = ("email", "phone", "address", "city", "country", "notes")


def merge_preview(keep: Customer, merge: Customer) -> dict[str, Any]:
    """What customer_merge will do: the history that moves (all of it, whoever owns
    it, so only counts are shown) and the empty fields that get filled."""
    moves = [
        (Lead._meta.verbose_name_plural, Lead.objects.filter(customer=merge).count()),
        (Estimate._meta.verbose_name_plural, Estimate.objects.filter(customer=merge).count()),
        (Deal._meta.verbose_name_plural, Deal.objects.filter(customer=merge).count()),
        (Activity._meta.verbose_name_plural, Activity.objects.filter(customer=merge).count()),
        (Contact._meta.verbose_name_plural, Contact.objects.filter(customer=merge).count()),
    ]
    fills = [
        (Customer._meta.get_field(name).verbose_name, getattr(merge, name))
        for name in MERGED_FIELDS
        if not getattr(keep, name) and getattr(merge, name)
    ]
    if keep.territory_id is None and merge.territory_id is not None:
        fills.append((Customer._meta.get_field("territory").verbose_name, merge.territory))
    if keep.owner_id is None and merge.owner_id is not None:
        fills.append((Customer._meta.get_field("owner").verbose_name, merge.owner))
    keep_extra = keep.extra if isinstance(keep.extra, dict) else {}
    merge_extra = merge.extra if isinstance(merge.extra, dict) else {}
    new_extra = {key: value for key, value in merge_extra.items() if key not in keep_extra}
    if new_extra:
        fills.append((Customer._meta.get_field("extra").verbose_name, extra_to_text(new_extra)))
    return {"moves": moves, "fills": fills}


@login_required
def customer_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Fold another visible customer into this one (this one stays, the other goes)."""
    user = request.user
    customer = customer_get_for_user(user=user, pk=pk)
    if user.role not in MERGE_ROLES:
        return forbidden(request, _("Only managers and administrators can merge customers."))
    others = customers_for_user(user=user).exclude(pk=customer.pk)
    form = MergeForm(request.POST or None, candidates=others)
    if request.method == "POST" and form.is_valid():
        other = form.cleaned_data["other"]
        if not form.cleaned_data["confirm"]:
            return render_page(
                request,
                "leads/customer_merge_confirm.html",
                {"customer": customer, "other": other, **merge_preview(customer, other)},
            )
        try:
            services.customer_merge(keep=customer, merge=other, actor=user)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(
                request,
                _("%(other)s was merged into %(name)s: its history is now here.")
                % {"other": other.name, "name": customer.name},
            )
            return redirect("leads:customer_detail", pk=customer.pk)
    search = SearchForm(request.GET or None)
    query = search.cleaned_data["q"].strip() if search.is_valid() else ""
    found = (
        list(others.filter(customer_search(query)).select_related("owner").order_by("name")[:20])
        if query
        else []
    )
    suggested_ids = services.customer_duplicates(
        name=customer.name, email=customer.email, phone=customer.phone, exclude_pk=customer.pk
    ).values("pk")
    suggested = list(others.filter(pk__in=suggested_ids).select_related("owner")[:10])
    return render_page(
        request,
        "leads/customer_merge.html",
        {
            "customer": customer,
            "form": form,
            "search": search,
            "query": query,
            "found": found,
            "suggested": suggested,
        },
    )
