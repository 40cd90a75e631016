"""Forms of the feedback app: the customer's survey, and the staff's case and range forms."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from feedback.models import CaseStatus, FollowUpCase
from feedback.services import FREE_TEXT_MAX
from leads.models import Deal

CSAT_CHOICES = [(str(score), str(score)) for score in range(1, 6)]
NPS_CHOICES = [(str(score), str(score)) for score in range(0, 11)]
CONTACT_CHOICES = [("yes", _("Yes")), ("no", _("No"))]


class SurveyAnswerForm(forms.Form):
    """The customer's answer.

    Rendered by hand in ``feedback/survey_form.html`` with the template's texts in
    the customer's language (score buttons that fit a phone), not with crispy:
    see the template's comment. A question the template does not ask is ignored
    by ``survey_answer``.
    """

    csat = forms.TypedChoiceField(
        choices=CSAT_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose a score from 1 to 5.")},
    )
    nps = forms.TypedChoiceField(
        choices=NPS_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose a score from 0 to 10.")},
    )
    free_text = forms.CharField(
        required=False, max_length=FREE_TEXT_MAX, widget=forms.Textarea(attrs={"rows": 4})
    )
    may_contact = forms.ChoiceField(
        choices=CONTACT_CHOICES, required=False, widget=forms.RadioSelect
    )

    def answer(self) -> dict[str, Any]:
        """The cleaned answer as the keyword arguments of ``services.survey_answer``."""
        data = self.cleaned_data
        contact = data.get("may_contact") or ""
        return {
            "csat": data["csat"],
            "nps": data["nps"],
            "free_text": data.get("free_text", ""),
            "may_contact": {"yes": True, "no": False}.get(contact),
        }


class CaseOpenForm(forms.Form):
    summary = forms.CharField(
        label=_("Summary"),
        max_length=300,
        help_text=_("In a few words, e.g. “Called: the delivery was two weeks late”."),
    )
    description = forms.CharField(
        label=_("Details"), required=False, widget=forms.Textarea(attrs={"rows": 5})
    )
    deal = forms.ModelChoiceField(
        label=_("Deal"),
        queryset=Deal.objects.none(),
        required=False,
        help_text=_("Optional: the deal the complaint is about."),
    )

    def __init__(self, *args: Any, deals: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["deal"].queryset = deals
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.add_input(Submit("submit", _("Open case")))


class CaseStatusForm(forms.Form):
    to_status = forms.ChoiceField(label=_("New status"), choices=())
    note = forms.CharField(
        label=_("Note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required to resolve (how) or to close without action (why)."),
    )

    def __init__(self, *args: Any, case: FollowUpCase, allowed: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_status"].choices = [
            (status, CaseStatus(status).label) for status in allowed
        ]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.add_input(Submit("submit", _("Save")))


class RangeForm(forms.Form):
    """A date range for the satisfaction figures; default: the last 90 days."""

    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput({"type": "date"})
    )
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput({"type": "date"}))

    DEFAULT_DAYS = 90
    MAX_DAYS = 3 * 366

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise ValidationError(_("The end of the range is before its start."))
        if start and end and (end - start).days > self.MAX_DAYS:
            raise ValidationError(_("Choose a range of three years at most."))
        return data

    def range(self, today: date) -> tuple[date, date]:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=self.DEFAULT_DAYS - 1)
        return start, end
