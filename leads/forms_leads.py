"""Forms of the lead pages: create/edit, the actions on one lead, and the list's bulk actions.

Forms only validate input and build choices from scoped querysets; the services
save (and re-check every rule), so a forged POST gets the same refusal as a form.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from accounts.models import ProductLine, Role, Team, Territory, User
from leads.filters import PlainSelect, owner_choices_for
from leads.models import (
    MONEY,
    OPEN_STAGES,
    Customer,
    Lead,
    LeadSource,
    LostReason,
    Stage,
    Temperature,
)
from leads.selectors import AnyUser, customers_for_user
from leads.services import allowed_stages

# Above this many visible customers the customer field is a number box, not a select
# of thousands of options (an admin of a large installation).
CUSTOMER_SELECT_LIMIT = 300
CLOSING_STAGES = (Stage.LOST, Stage.DISQUALIFIED)


def may_assign(user: AnyUser) -> bool:
    return getattr(user, "role", None) in (Role.MANAGER, Role.ADMIN)


def may_hand_to_team(user: AnyUser) -> bool:
    return getattr(user, "role", None) in (Role.MARKETING, Role.ADMIN)


def assignable_owners(user: AnyUser) -> QuerySet[User]:
    """Active reps and managers the user may give a lead to (the service checks again)."""
    return owner_choices_for(user).filter(is_active=True)


def active_teams() -> QuerySet[Team]:
    # Team names are not scoped data: marketing hands leads to any active sales team.
    return Team.objects.filter(is_active=True).order_by("name")


def add_service_errors(
    form: forms.Form, error: ValidationError, field_map: dict[str, str] | None = None
) -> None:
    """Show a service's refusal on the form: field messages on their field, the rest on top."""
    field_map = field_map or {}
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            target = field_map.get(field, field)
            form.add_error(target if target in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def service_error_text(error: ValidationError) -> str:
    """A refusal as one line, for a message or a report of a bulk action."""
    return " ".join(str(message) for message in error.messages)


class LeadForm(forms.Form):
    """Create (with stage and, for managers and admins, owner) or edit a lead's data."""

    contact_name = forms.CharField(label=_("Contact name"), required=False, max_length=200)
    company_name = forms.CharField(label=_("Company"), required=False, max_length=200)
    email = forms.EmailField(label=_("Email"), required=False)
    phone = forms.CharField(label=_("Phone"), required=False, max_length=40)
    customer = forms.ModelChoiceField(
        label=_("Customer"),
        required=False,
        queryset=Customer.objects.none(),
        help_text=_("An existing customer, instead of (or besides) the contact data."),
        error_messages={"invalid_choice": _("Choose one of your customers.")},
    )
    source = forms.ChoiceField(label=_("Source"), choices=[("", "---------"), *LeadSource.choices])
    product_lines = forms.ModelMultipleChoiceField(
        label=_("Product lines"),
        required=False,
        queryset=ProductLine.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    territory = forms.ModelChoiceField(
        label=_("Territory"), required=False, queryset=Territory.objects.none()
    )
    timeframe = forms.DateField(
        label=_("Buying timeframe"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("When the prospect expects to decide; empty: no timeframe."),
    )
    estimated_value = forms.DecimalField(
        label=_("Estimated value"), required=False, min_value=0, **MONEY
    )
    stage = forms.ChoiceField(
        label=_("Stage"),
        choices=[(stage, Stage(stage).label) for stage in OPEN_STAGES],
        initial=Stage.SUSPECT,
    )
    owner = forms.ModelChoiceField(
        label=_("Owner"),
        required=False,
        queryset=User.objects.none(),
        widget=PlainSelect,
        help_text=_("Empty: the lead is routed automatically when it becomes SQL."),
        error_messages={"invalid_choice": _("Choose an owner from your teams.")},
    )

    def __init__(self, *args: Any, user: AnyUser, lead: Lead | None = None, **kwargs: Any) -> None:
        if lead is not None:
            kwargs.setdefault("initial", self.initial_for(lead))
        super().__init__(*args, **kwargs)
        self.user = user
        self.lead = lead
        customers = customers_for_user(user=user)
        if lead is not None and lead.customer_id is not None:
            # The lead's own customer stays a choice even when someone else owns it.
            customers = Customer.objects.filter(
                Q(pk__in=customers.values("pk")) | Q(pk=lead.customer_id)
            )
        customers = customers.only("pk", "name").order_by("name", "pk")
        self.fields["customer"].queryset = customers
        if len(customers[: CUSTOMER_SELECT_LIMIT + 1]) > CUSTOMER_SELECT_LIMIT:
            self.fields["customer"].widget = forms.NumberInput(attrs={"min": 1})
            self.fields["customer"].help_text = _(
                "The customer's number, shown on the customer's page."
            )
        current_lines = lead.product_lines.all() if lead is not None else ProductLine.objects.none()
        self.fields["product_lines"].queryset = ProductLine.objects.filter(
            Q(is_active=True) | Q(pk__in=current_lines.values("pk"))
        ).order_by("name")
        current_territory = lead.territory_id if lead is not None else None
        self.fields["territory"].queryset = Territory.objects.filter(
            Q(is_active=True) | Q(pk=current_territory)
        ).order_by("name")
        if lead is not None:
            # The source is where the lead came from: shown, not edited (lead_update does
            # not take it; recycling sets it). Stage and owner change through their own
            # actions, with history.
            self.fields["source"].disabled = True
            del self.fields["stage"]
            del self.fields["owner"]
        elif may_assign(user):
            self.fields["owner"].queryset = assignable_owners(user)
        else:
            del self.fields["owner"]

    @staticmethod
    def initial_for(lead: Lead) -> dict[str, Any]:
        return {
            "contact_name": lead.contact_name,
            "company_name": lead.company_name,
            "email": lead.email,
            "phone": lead.phone,
            "customer": lead.customer_id,
            "source": lead.source,
            "product_lines": list(lead.product_lines.all()),
            "territory": lead.territory_id,
            "timeframe": lead.timeframe,
            "estimated_value": lead.estimated_value,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        who = ("contact_name", "company_name", "email", "phone", "customer")
        if not any(data.get(name) for name in who) and not any(name in self.errors for name in who):
            raise ValidationError(
                _("Give at least a name, a company, an email, a phone or a customer.")
            )
        return data


class MoveStageForm(forms.Form):
    to = forms.ChoiceField(label=_("Move to"))
    lost_reason = forms.ChoiceField(
        label=_("Reason (lost or disqualified)"),
        required=False,
        choices=[("", "---------"), *LostReason.choices],
    )
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=200,
        help_text=_("Needed when a temperature differs from the buying timeframe."),
    )
    comment = forms.CharField(
        label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, lead: Lead, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # No stage preselected: a click on "Move" must never close a lead by accident.
        self.fields["to"].choices = [
            ("", "---------"),
            *((stage, Stage(stage).label) for stage in allowed_stages(lead)),
        ]
        self.fields["to"].error_messages["invalid_choice"] = _(
            "This lead cannot move to that stage from where it is."
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("to") in CLOSING_STAGES and not data.get("lost_reason"):
            self.add_error("lost_reason", _("Choose the reason from the list."))
        return data

    def service_reason(self) -> str:
        """What ``lead_move_stage`` takes as its reason: the listed one when closing."""
        if self.cleaned_data["to"] in CLOSING_STAGES:
            return self.cleaned_data["lost_reason"]
        return self.cleaned_data["reason"]

    def field_map(self) -> dict[str, str]:
        closing = self.cleaned_data.get("to") in CLOSING_STAGES
        return {"reason": "lost_reason" if closing else "reason", "stage": "to"}


class TemperatureForm(forms.Form):
    temperature = forms.ChoiceField(label=_("Temperature"), choices=Temperature.choices)
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=200,
        help_text=_("Needed when it differs from the buying timeframe."),
    )


class AssignForm(forms.Form):
    owner = forms.ModelChoiceField(
        label=_("Owner"),
        queryset=User.objects.none(),
        widget=PlainSelect,
        error_messages={"invalid_choice": _("Choose an owner from your teams.")},
    )

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = assignable_owners(user)


class HandToTeamForm(forms.Form):
    team = forms.ModelChoiceField(
        label=_("Team"),
        queryset=Team.objects.none(),
        error_messages={"invalid_choice": _("Choose an active team from the list.")},
    )
    comment = forms.CharField(
        label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = active_teams()


class BulkAction:
    ASSIGN = "assign"
    STAGE = "stage"
    HAND = "hand"


# Most leads one bulk action touches: a few pages' worth, each its own transaction.
BULK_MAX = 500


class BulkActionForm(forms.Form):
    """An action on the leads ticked in the list; the ids are read and scoped by the view."""

    action = forms.ChoiceField(label=_("Action"))
    owner = forms.ModelChoiceField(
        label=_("Assign to"),
        required=False,
        queryset=User.objects.none(),
        widget=PlainSelect,
        error_messages={"invalid_choice": _("Choose an owner from your teams.")},
    )
    to = forms.ChoiceField(
        label=_("Move to"),
        required=False,
        choices=[
            ("", "---------"),
            *((stage, label) for stage, label in Stage.choices if stage != Stage.WON),
        ],
    )
    lost_reason = forms.ChoiceField(
        label=_("Reason (lost or disqualified)"),
        required=False,
        choices=[("", "---------"), *LostReason.choices],
    )
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)
    team = forms.ModelChoiceField(
        label=_("Hand to team"),
        required=False,
        queryset=Team.objects.none(),
        error_messages={"invalid_choice": _("Choose an active team from the list.")},
    )

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions = [(BulkAction.STAGE, _("Change stage"))]
        if may_assign(user):
            actions.insert(0, (BulkAction.ASSIGN, _("Assign to an owner")))
            self.fields["owner"].queryset = assignable_owners(user)
        else:
            del self.fields["owner"]
        if may_hand_to_team(user):
            actions.append((BulkAction.HAND, _("Hand to a team (MQL)")))
            self.fields["team"].queryset = active_teams()
        else:
            del self.fields["team"]
        self.fields["action"].choices = actions
        self.fields["action"].error_messages["invalid_choice"] = _(
            "That action is not available to you."
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action")
        if action == BulkAction.ASSIGN and not data.get("owner") and "owner" not in self.errors:
            self.add_error("owner", _("Choose who gets the leads."))
        if action == BulkAction.STAGE:
            if not data.get("to"):
                self.add_error("to", _("Choose the stage to move the leads to."))
            elif data["to"] in CLOSING_STAGES and not data.get("lost_reason"):
                self.add_error("lost_reason", _("Choose the reason from the list."))
        if action == BulkAction.HAND and not data.get("team") and "team" not in self.errors:
            self.add_error("team", _("Choose the team to hand the leads to."))
        return data

    def service_reason(self) -> str:
        if self.cleaned_data["to"] in CLOSING_STAGES:
            return self.cleaned_data["lost_reason"]
        return self.cleaned_data["reason"]
