"""Forms of the goal pages: filters, create, revise, split, review.

Forms only check input and turn it into Python values; the views pass
``cleaned_data`` to ``goals.services``, which apply the rules and save (their
refusals come back on the fields through ``leads.forms_sales.add_service_errors``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout, Submit
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from accounts.access import teams_for_user, users_for_user
from accounts.models import ProductLine, Role, Team, Territory, User
from goals.models import Metric, OwnerKind, PeriodKind, ReviewCause, RevisionReason
from goals.services import SPLIT_BY_SHARE, SPLIT_EVENLY
from leads.models import ActivityKind

DATE_INPUT = {"type": "date"}
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")

PERIOD_CURRENT, PERIOD_PAST, PERIOD_FUTURE, PERIOD_ALL = "current", "past", "future", "all"
PERIOD_FILTERS = (
    (PERIOD_CURRENT, _("In force now")),
    (PERIOD_PAST, _("Past")),
    (PERIOD_FUTURE, _("Future")),
    (PERIOD_ALL, _("All periods")),
)


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d")


def goal_owners(user: User) -> QuerySet[User]:
    """Who the user may give a goal to: visible active reps and managers."""
    return (
        users_for_user(user=user)
        .filter(role__in=(Role.REP, Role.MANAGER), is_active=True)
        .order_by("display_name", "pk")
    )


def goal_teams(user: User) -> QuerySet[Team]:
    return teams_for_user(user=user).filter(is_active=True).order_by("name", "pk")


def submit_helper(label: Any) -> FormHelper:
    helper = FormHelper()
    helper.add_input(Submit("submit", label))
    return helper


class GoalFilterForm(forms.Form):
    """The filters above the goal list. Reps filter by period, kind and metric only."""

    period = forms.ChoiceField(label=_("Period"), choices=PERIOD_FILTERS, required=False)
    month = forms.CharField(
        label=_("Month"),
        required=False,
        widget=forms.DateInput(attrs={"type": "month", "placeholder": "2026-03"}),
        help_text=None,
    )
    owner_kind = forms.ChoiceField(
        label=_("For"), choices=[("", _("Anyone")), *OwnerKind.choices], required=False
    )
    metric = forms.ChoiceField(
        label=_("Metric"), choices=[("", _("Any metric")), *Metric.choices], required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user.role in (Role.MANAGER, Role.ADMIN):
            self.fields["rep"] = forms.ModelChoiceField(
                label=_("Sales rep"),
                queryset=goal_owners(user),
                required=False,
                empty_label=_("Any rep"),
            )
            self.fields["team"] = forms.ModelChoiceField(
                label=_("Team"),
                queryset=goal_teams(user),
                required=False,
                empty_label=_("Any team"),
            )
        helper = FormHelper()
        helper.form_method = "get"
        helper.form_class = "row g-2 align-items-end mb-3"
        helper.disable_csrf = True
        helper.layout = Layout(
            *(Div(Field(name), css_class="col-6 col-md") for name in self.fields),
            Div(Submit("", _("Show"), css_class="mb-3"), css_class="col-12 col-md-auto"),
        )
        self.helper = helper

    def clean_month(self) -> date | None:
        text = (self.cleaned_data.get("month") or "").strip()
        if not text:
            return None
        match = MONTH_PATTERN.match(text)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise forms.ValidationError(_("Give a month as YYYY-MM, e.g. 2026-03."))
        return date(int(match.group(1)), int(match.group(2)), 1)


class GoalForm(forms.Form):
    """A new goal. For a month, quarter or year any day in it is enough."""

    owner_kind = forms.ChoiceField(label=_("For"), choices=OwnerKind.choices)
    rep = forms.ModelChoiceField(label=_("Sales rep"), queryset=User.objects.none(), required=False)
    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.none(), required=False)
    metric = forms.ChoiceField(label=_("Metric"), choices=Metric.choices)
    activity_kind = forms.ChoiceField(
        label=_("Activity type"),
        choices=[("", _("Every type")), *ActivityKind.choices],
        required=False,
        help_text=_("Only for the activities metric."),
    )
    period_kind = forms.ChoiceField(
        label=_("Period"), choices=PeriodKind.choices, initial=PeriodKind.MONTH
    )
    start = forms.DateField(
        label=_("A day in the period"),
        widget=_date_widget(),
        help_text=_("For a custom period: its first day."),
    )
    end = forms.DateField(
        label=_("Last day (custom period)"), widget=_date_widget(), required=False
    )
    product_line = forms.ModelChoiceField(
        label=_("Product line"),
        queryset=ProductLine.objects.filter(is_active=True).order_by("name"),
        required=False,
        empty_label=_("All product lines"),
    )
    territory = forms.ModelChoiceField(
        label=_("Territory"),
        queryset=Territory.objects.filter(is_active=True).order_by("name"),
        required=False,
        empty_label=_("All territories"),
    )
    target = forms.DecimalField(label=_("Target"), max_digits=14, decimal_places=2)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rep"].queryset = goal_owners(user)
        self.fields["team"].queryset = goal_teams(user)
        if user.role != Role.ADMIN:
            # Company goals are set by admins (goals.services._check_may_set).
            self.fields["owner_kind"].choices = [
                choice for choice in OwnerKind.choices if choice[0] != OwnerKind.COMPANY
            ]
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Div(
                Div(Field("owner_kind"), css_class="col-md-4"),
                Div(Field("rep"), css_class="col-md-4"),
                Div(Field("team"), css_class="col-md-4"),
                css_class="row",
            ),
            Div(
                Div(Field("metric"), css_class="col-md-6"),
                Div(Field("activity_kind"), css_class="col-md-6"),
                css_class="row",
            ),
            Div(
                Div(Field("period_kind"), css_class="col-md-4"),
                Div(Field("start"), css_class="col-md-4"),
                Div(Field("end"), css_class="col-md-4"),
                css_class="row",
            ),
            Div(
                Div(Field("product_line"), css_class="col-md-6"),
                Div(Field("territory"), css_class="col-md-6"),
                css_class="row",
            ),
            Field("target"),
        )
        self.helper.add_input(Submit("submit", _("Create the goal")))


class GoalReviseForm(forms.Form):
    new_target = forms.DecimalField(label=_("New target"), max_digits=14, decimal_places=2)
    reason = forms.ChoiceField(label=_("Reason"), choices=RevisionReason.choices)
    comment = forms.CharField(
        label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    effective_from = forms.DateField(label=_("In force from"), widget=_date_widget())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = submit_helper(_("Revise the target"))


class SplitMethodForm(forms.Form):
    """GET: how to prefill the split (evenly or by last period's share)."""

    method = forms.ChoiceField(
        label=_("Suggest"),
        choices=(
            (SPLIT_EVENLY, _("Evenly")),
            (SPLIT_BY_SHARE, _("By last period's share")),
        ),
        required=False,
    )


class GoalSplitForm(forms.Form):
    """One target per rep; an empty one gives that rep no share."""

    def __init__(
        self,
        *args: Any,
        reps: Sequence[User],
        suggestion: dict[int, Decimal],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.reps = list(reps)
        for rep in self.reps:
            self.fields[self.field_name(rep)] = forms.DecimalField(
                label=rep.display_name,
                max_digits=14,
                decimal_places=2,
                required=False,
                initial=suggestion.get(rep.pk),
            )
        self.helper = submit_helper(_("Split the goal"))

    @staticmethod
    def field_name(rep: User) -> str:
        return f"target_{rep.pk}"

    def targets(self) -> dict[User, Decimal]:
        return {
            rep: self.cleaned_data[self.field_name(rep)]
            for rep in self.reps
            if self.cleaned_data.get(self.field_name(rep)) is not None
        }


class GoalReviewForm(forms.Form):
    cause = forms.ChoiceField(label=_("Cause"), choices=ReviewCause.choices)
    findings = forms.CharField(
        label=_("Findings"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    corrective_action = forms.CharField(
        label=_("Corrective action"), widget=forms.Textarea(attrs={"rows": 3})
    )
    action_owner = forms.ModelChoiceField(label=_("Action owner"), queryset=User.objects.none())
    due_on = forms.DateField(label=_("Due"), widget=_date_widget())

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action_owner"].queryset = (
            users_for_user(user=user).filter(is_active=True).order_by("display_name", "pk")
        )
        self.helper = submit_helper(_("Record the review"))


class TargetOnForm(forms.Form):
    on = forms.DateField(label=_("Target in force on"), widget=_date_widget(), required=False)
