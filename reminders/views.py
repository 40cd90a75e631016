"""Pages of the reminders app: the reminder list (with done / snooze / dismiss) and
the ops view of the email queues.

Reps, managers and admins have reminders; marketing gets 403 (reminders are
about the sales work, and none are ever made for marketing). Only the
recipient changes a reminder: anyone else's is 404, like something not there.
A manager sees their teams' reminders rolled up, read-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Role, User
from feedback.models import DeliveryState
from reminders import selectors, services
from reminders.models import EmailState
from reminders.selectors import subject_url

PAGE_SIZE = 25
SALES_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    return render(request, "403.html", status=403)


class RepFilterForm(forms.Form):
    rep = forms.ModelChoiceField(
        label=pgettext_lazy("team member", "Person"),
        queryset=User.objects.none(),
        required=False,
        empty_label=gettext_lazy("Everyone"),
    )

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["rep"].queryset = selectors.rep_choices_for(user=user)  # type: ignore[attr-defined]


@login_required
def reminder_list(request: HttpRequest) -> HttpResponse:
    """The user's open reminders (a manager: also the team's, by person; admin: all)."""
    user = request.user
    if user.role not in SALES_ROLES:
        return _forbidden(request, _("Reminders are for sales reps, managers and administrators."))
    today = timezone.localdate()
    sees_others = user.role in (Role.MANAGER, Role.ADMIN)
    form = RepFilterForm(request.GET or None, user=user) if sees_others else None
    rep = form.cleaned_data.get("rep") if form is not None and form.is_valid() else None
    reminders = selectors.open_reminders_for_user(user=user, today=today, rep=rep)
    page = Paginator(reminders.select_related("user"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(reminder, subject_url(reminder)) for reminder in page]
    rollup = selectors.rollup_by_rep(user=user, today=today) if sees_others else []
    return render(
        request,
        "reminders/reminder_list.html",
        {
            "page_obj": page,
            "rows": rows,
            "form": form,
            "rollup": rollup,
            "today": today,
            "snooze_days": services.SNOOZE_DAYS,
        },
    )


def _act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    reminder = selectors.reminder_get_own(user=request.user, pk=pk)
    try:
        if action == "done":
            services.reminder_done(reminder=reminder, user=request.user)
            messages.success(request, _("Marked done: %(title)s") % {"title": reminder.title})
        elif action == "dismiss":
            services.reminder_dismiss(reminder=reminder, user=request.user)
            messages.success(request, _("Dismissed: %(title)s") % {"title": reminder.title})
        else:
            try:
                days = int(request.POST.get("days", ""))
            except ValueError:
                days = 0
            reminder = services.reminder_snooze(
                reminder=reminder, user=request.user, days=days, today=timezone.localdate()
            )
            messages.success(
                request,
                _("Snoozed until %(day)s: %(title)s")
                % {
                    "day": formats.date_format(reminder.snoozed_until, "SHORT_DATE_FORMAT"),
                    "title": reminder.title,
                },
            )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("reminders:list")


@login_required
@require_POST
def reminder_done(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "done")


@login_required
@require_POST
def reminder_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "snooze")


@login_required
@require_POST
def reminder_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "dismiss")


@login_required
def ops(request: HttpRequest) -> HttpResponse:
    """Email queues at a glance (admin only): counts by state, oldest due, stuck claims, errors."""
    if request.user.role != Role.ADMIN:
        return _forbidden(request, _("The email queue is for administrators."))
    summary = selectors.ops_summary(now=timezone.now())
    email_states = dict(EmailState.choices)
    tables = [
        (_("Reminder emails"), [(email_states[k], v) for k, v in summary.reminders.items()]),
        (_("Daily digests"), [(email_states[k], v) for k, v in summary.digests.items()]),
        (
            _("Survey emails"),
            [(dict(DeliveryState.choices)[k], v) for k, v in summary.surveys.items()],
        ),
    ]
    return render(request, "reminders/ops.html", {"summary": summary, "tables": tables})
