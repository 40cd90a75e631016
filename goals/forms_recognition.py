"""Forms of the recognition pages: awards, candidates, forecasts and the scorecard.

The pickers are GET forms: an invalid or missing choice falls back to the
default, so a stale link still shows a page.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout, Submit
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User
from goals.models import AwardKind, PeriodKind
from goals.services import period_bounds

DATE_INPUT = {"type": "date"}


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d")


def picker_helper(*fields: str, button_id: str = "show") -> FormHelper:
    """A one-row GET form above a page: the fields side by side, then the button.

    ``button_id`` tells two pickers on one page apart (HTML ids are unique).
    """
    helper = FormHelper()
    helper.form_method = "get"
    helper.form_class = "row g-2 align-items-end mb-3"
    helper.disable_csrf = True
    helper.layout = Layout(
        *(Div(Field(name), css_class="col-12 col-sm-6 col-lg") for name in fields),
        Div(
            Submit("", _("Show"), css_class="mb-3", css_id=button_id),
            css_class="col-12 col-sm-auto",
        ),
    )
    return helper


# --- Named periods ------------------------------------------------------------------------

PERIODS = {
    "this_month": _("This month"),
    "last_month": _("Last month"),
    "this_quarter": _("This quarter"),
    "last_quarter": _("Last quarter"),
    "this_year": _("This year"),
    "last_year": _("Last year"),
}


def named_period(name: str, today: date) -> tuple[date, date]:
    """First and last day of a named period around ``today`` (unknown names: this month)."""
    kind = {"month": PeriodKind.MONTH, "quarter": PeriodKind.QUARTER, "year": PeriodKind.YEAR}
    which, _sep, unit = name.partition("_")
    if unit not in kind:
        return period_bounds(PeriodKind.MONTH, today)
    start, end = period_bounds(kind[unit], today)
    if which == "last":
        start, end = period_bounds(kind[unit], start - timedelta(days=1))
    return start, end


class TeamPeriodForm(forms.Form):
    """Team and period of the scorecard and the award candidates."""

    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.none(), required=False)
    period = forms.ChoiceField(label=_("Period"), required=False)

    def __init__(
        self, *args: Any, teams: QuerySet[Team], periods: list[str], default: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.default = default
        self.fields["team"].queryset = teams
        self.fields["team"].empty_label = None
        self.fields["period"].choices = [(name, PERIODS[name]) for name in periods]
        self.helper = picker_helper("team", "period", button_id="show-team-period")

    def chosen_period(self) -> str:
        data = self.cleaned_data if self.is_valid() else {}
        return data.get("period") or self.default


class AccuracyForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.none(), required=False)
    period_kind = forms.ChoiceField(
        label=_("Periods"),
        required=False,
        choices=[(PeriodKind.MONTH, _("Months")), (PeriodKind.QUARTER, _("Quarters"))],
    )
    count = forms.TypedChoiceField(
        label=_("How many"),
        required=False,
        coerce=int,
        empty_value=6,
        choices=[(n, str(n)) for n in (3, 6, 12)],
    )

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["team"].empty_label = None
        self.helper = picker_helper("team", "period_kind", "count")

    def choice(self) -> tuple[str, int]:
        data = self.cleaned_data if self.is_valid() else {}
        return data.get("period_kind") or PeriodKind.MONTH, data.get("count") or 6


# --- Awards -------------------------------------------------------------------------------


class AwardFilterForm(forms.Form):
    rep = forms.ModelChoiceField(
        label=_("Rep"), queryset=User.objects.none(), required=False, empty_label=_("Everyone")
    )
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("Any kind")), *AwardKind.choices]
    )
    start = forms.DateField(label=_("Period from"), required=False, widget=_date_widget())
    end = forms.DateField(label=_("Period to"), required=False, widget=_date_widget())

    def __init__(self, *args: Any, reps: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rep"].queryset = reps
        self.helper = picker_helper("rep", "kind", "start", "end", button_id="show-awards")

    def filters(self) -> dict[str, Any]:
        return self.cleaned_data if self.is_valid() else {}


class AwardForm(forms.Form):
    rep = forms.ModelChoiceField(label=_("Rep"), queryset=User.objects.none())
    title = forms.CharField(
        label=_("Title"),
        max_length=150,
        help_text=_("For example “Top seller of March”."),
        required=False,
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=AwardKind.choices)
    value = forms.DecimalField(
        label=_("Value"),
        required=False,
        max_digits=14,
        decimal_places=2,
        help_text=_("Money value, if any."),
    )
    period_start = forms.DateField(label=_("Period from"), widget=_date_widget(), required=False)
    period_end = forms.DateField(label=_("Period to"), widget=_date_widget(), required=False)
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 4}), required=False
    )

    # Title, period and reason are checked by award_create, so its messages are
    # the only ones: the form only parses.

    def __init__(self, *args: Any, recipients: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rep"].queryset = recipients
        self.helper = FormHelper()
        self.helper.add_input(Submit("save", _("Give the award")))
