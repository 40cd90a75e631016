"""Forms of the customer and sales pages: customers, contacts, estimates, deals, activities.

Forms only check input and turn it into Python values; the views pass
``cleaned_data`` to the services, which validate the rules and save. Model
forms are used for their labels and field checks, never for ``save()``.
"""

from __future__ import annotations

import calendar
import json
from datetime import date, timedelta
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout, Submit
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.access import users_for_user
from accounts.models import ProductLine, Role, Territory, User
from leads.models import (
    Activity,
    Contact,
    Customer,
    Deal,
    DealStatus,
    Estimate,
    EstimateStatus,
)
from leads.services import CUSTOMER_FIELDS

DATE_INPUT = {"type": "date"}
DATETIME_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


def filter_helper(*fields: str, button: Any = None) -> FormHelper:
    """A one-row GET form above a list: the fields side by side, then the button."""
    helper = FormHelper()
    helper.form_method = "get"
    helper.form_class = "row g-2 align-items-end mb-3"
    helper.disable_csrf = True
    helper.layout = Layout(
        *(Div(Field(name), css_class="col-12 col-sm-6 col-lg") for name in fields),
        Div(
            Submit("", button or _("Show"), css_class="mb-3"),
            css_class="col-12 col-sm-auto",
        ),
    )
    return helper


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d")


def _datetime_widget() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_INPUT_FORMAT)


def possible_owners(user: User) -> QuerySet[User]:
    """People ``user`` may give a customer, estimate or deal to: visible active reps/managers."""
    return (
        users_for_user(user=user)
        .filter(role__in=(Role.REP, Role.MANAGER), is_active=True)
        .order_by("display_name")
    )


def _add_owner_field(
    form: forms.BaseForm, user: User, *, initial: User | None, always_owned: bool = False
) -> None:
    """Managers and admins choose the owner; reps own what they create (no field).

    ``always_owned``: estimates and deals must have an owner (an admin cannot own one).
    """
    if user.role not in (Role.MANAGER, Role.ADMIN):
        return
    form.fields["owner"] = forms.ModelChoiceField(
        label=_("Owner"),
        queryset=possible_owners(user),
        # A manager's customer without an owner would vanish from their own view.
        required=always_owned or user.role == Role.MANAGER,
        initial=initial.pk if initial else (user.pk if user.role == Role.MANAGER else None),
        empty_label=_("Nobody yet"),
    )


# --- The "extra" fields: a textarea of "name: value" lines ----------------------


def extra_to_text(extra: Any) -> str:
    if not isinstance(extra, dict):
        return ""
    lines = []
    for key, value in extra.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {shown}".replace("\n", " "))
    return "\n".join(lines)


class ExtraFieldsField(forms.CharField):
    """Any other facts about a customer, one ``name: value`` per line (stored as JSON).

    Values are kept as text: what a rep types is what they get back.
    """

    widget = forms.Textarea(attrs={"rows": 4, "placeholder": "VAT number: SE556677889901"})
    max_key_length = 100

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return extra_to_text(value) if isinstance(value, dict) else value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        result: dict[str, str] = {}
        seen: set[str] = set()
        errors: list[ValidationError] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, separator, content = line.partition(":")
            key = key.strip()
            if not separator or not key:
                errors.append(
                    ValidationError(
                        _("Line %(number)s: write it as name: value (for example “VAT: 123”)."),
                        code="extra_format",
                        params={"number": number},
                    )
                )
            elif len(key) > self.max_key_length:
                errors.append(
                    ValidationError(
                        _("Line %(number)s: the name is longer than %(limit)s characters."),
                        code="extra_key_length",
                        params={"number": number, "limit": self.max_key_length},
                    )
                )
            elif key.casefold() in seen:
                errors.append(
                    ValidationError(
                        _("Line %(number)s: “%(name)s” is given twice."),
                        code="extra_duplicate",
                        params={"number": number, "name": key},
                    )
                )
            else:
                seen.add(key.casefold())
                result[key] = content.strip()
        if errors:
            raise ValidationError(errors)
        return result

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != (initial or {})
        except ValidationError:
            return True


# --- Customers and contacts ----------------------------------------------------


class CustomerForm(forms.ModelForm):
    extra = ExtraFieldsField(
        label=_("Extra fields"),
        help_text=_("Anything else worth keeping, one “name: value” per line."),
    )

    class Meta:
        model = Customer
        fields = list(CUSTOMER_FIELDS)  # what customer_create / customer_update accept
        widgets = {
            "address": forms.Textarea(attrs={"rows": 2}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(
        self,
        *args: Any,
        user: User,
        owner: User | None = None,
        show_create_anyway: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["territory"].queryset = Territory.objects.filter(is_active=True)
        _add_owner_field(self, user, initial=owner)
        if show_create_anyway:
            self.fields["create_anyway"] = forms.BooleanField(
                label=_("Save anyway: this is not the same customer"), required=False
            )

    def service_data(self) -> dict[str, Any]:
        """What customer_create / customer_update take (owner only when the form asks it)."""
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        if "owner" in self.fields:
            data["owner"] = self.cleaned_data.get("owner")
        return data


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "title", "email", "phone", "language", "is_primary"]


class MergeForm(forms.Form):
    """The customer folded into this one; only customers the user sees are accepted."""

    other = forms.ModelChoiceField(
        queryset=Customer.objects.none(),
        widget=forms.HiddenInput,
        error_messages={
            "required": _("Choose the customer to merge into this one."),
            "invalid_choice": _("Choose a customer you can see, other than this one."),
        },
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, candidates: QuerySet[Customer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["other"].queryset = candidates


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Name, email or phone"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = filter_helper("q", button=_("Search"))


# --- Estimates ---------------------------------------------------------------------


class EstimateForm(forms.ModelForm):
    class Meta:
        model = Estimate
        fields = ["product_line", "title", "amount", "valid_until"]
        localized_fields = ["amount"]
        widgets = {"valid_until": _date_widget()}

    def __init__(self, *args: Any, user: User, owner: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product_line"].queryset = ProductLine.objects.filter(is_active=True)
        if not self.is_bound and "valid_until" not in self.initial:
            self.initial["valid_until"] = timezone.localdate() + timedelta(days=30)
        _add_owner_field(self, user, initial=owner, always_owned=True)


class EstimateAcceptForm(forms.Form):
    close_date = forms.DateField(
        label=_("Close date"),
        widget=_date_widget(),
        help_text=_("The day the customer accepted: the won deal closes on it."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["close_date"].initial = timezone.localdate()


class EstimateFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *EstimateStatus.choices],
    )
    product_line = forms.ModelChoiceField(
        label=_("Product line"),
        required=False,
        queryset=ProductLine.objects.all(),
        empty_label=_("Any product line"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = filter_helper("status", "product_line")


# --- Deals ---------------------------------------------------------------------------


class DealForm(forms.ModelForm):
    class Meta:
        model = Deal
        fields = ["status", "lost_reason", "product_line", "amount", "close_date", "title"]
        localized_fields = ["amount"]
        widgets = {"status": forms.RadioSelect, "close_date": _date_widget()}

    def __init__(self, *args: Any, user: User, owner: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = DealStatus.choices
        self.fields["lost_reason"].help_text = _("Required when the deal is lost.")
        self.fields["product_line"].queryset = ProductLine.objects.filter(is_active=True)
        if not self.is_bound and "close_date" not in self.initial:
            self.initial["close_date"] = timezone.localdate()
        _add_owner_field(self, user, initial=owner, always_owned=True)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("status") == DealStatus.WON:
            cleaned["lost_reason"] = ""
        elif cleaned.get("status") == DealStatus.LOST and not cleaned.get("lost_reason"):
            # Checked here too (the service checks it again) so the message sits by the field.
            self.add_error("lost_reason", _("Choose why the deal was lost."))
        return cleaned


PERIODS = {
    "this_month": _("This month"),
    "last_month": _("Last month"),
    "this_quarter": _("This quarter"),
    "this_year": _("This year"),
    "last_year": _("Last year"),
}


def period_range(period: str, today: date) -> tuple[date, date] | None:
    """First and last day of a named period around ``today``."""
    if period == "this_month":
        return today.replace(day=1), today.replace(
            day=calendar.monthrange(today.year, today.month)[1]
        )
    if period == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if period == "this_quarter":
        first_month = 3 * ((today.month - 1) // 3) + 1
        last_month = first_month + 2
        return date(today.year, first_month, 1), date(
            today.year, last_month, calendar.monthrange(today.year, last_month)[1]
        )
    if period == "this_year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    if period == "last_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    return None


class DealFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Outcome"), required=False, choices=[("", _("Won and lost")), *DealStatus.choices]
    )
    period = forms.ChoiceField(
        label=_("Period"),
        required=False,
        choices=[("", _("Any time")), *PERIODS.items()],
    )
    start = forms.DateField(label=_("Closed from"), required=False, widget=_date_widget())
    end = forms.DateField(label=_("Closed until"), required=False, widget=_date_widget())
    product_line = forms.ModelChoiceField(
        label=_("Product line"),
        required=False,
        queryset=ProductLine.objects.all(),
        empty_label=_("Any product line"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = filter_helper("status", "period", "start", "end", "product_line")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("end", _("The end of the period is before its start."))
        return cleaned

    def close_range(self, today: date) -> tuple[date | None, date | None]:
        """The close dates asked for: explicit dates win over a named period."""
        data = self.cleaned_data if self.is_valid() else {}
        named = period_range(data.get("period", ""), today) or (None, None)
        return data.get("start") or named[0], data.get("end") or named[1]


# --- Activities --------------------------------------------------------------------


class ActivityForm(forms.ModelForm):
    class Meta:
        model = Activity
        fields = ["kind", "subject", "occurred_at", "due_at", "notes", "outcome"]
        widgets = {
            "occurred_at": _datetime_widget(),
            "due_at": _datetime_widget(),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "due_at": _(
                "Set a due date to make it a to-do: it counts as a contact when you mark it done."
            )
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and "occurred_at" not in self.initial:
            self.initial["occurred_at"] = timezone.localtime().replace(second=0, microsecond=0)


class ActivityCompleteForm(forms.Form):
    outcome = forms.CharField(label=_("Outcome"), required=False, max_length=200)


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's refusal on the form: by the field it names, else at the top."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)
