"""Pages of recognition: forecast accuracy, awards (and their candidates), the scorecard.

For sales only (reps, managers, admins; marketing gets 403). Every team and
person comes from ``accounts.access``: a team or rep not visible is a 404. A
rep sees their own row and their team's total or average, never a teammate's
figures.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.access import team_get_for_user, teams_for_user, user_get_for_user, users_for_user
from accounts.models import Role, Team, User
from goals import recognition
from goals.forecast import forecast_accuracy_for_team
from goals.forms_recognition import (
    AccuracyForm,
    AwardFilterForm,
    AwardForm,
    TeamPeriodForm,
    named_period,
)
from goals.recognition import (
    PARTS,
    award_candidates,
    award_recipients,
    awards_for_user,
    scorecard_for_team,
    team_members,
)
from leads.forms_sales import add_service_errors
from leads.views_customers import PAGE_SIZE, SALES_ROLES, forbidden, render_page

GIVERS = (Role.MANAGER, Role.ADMIN)
CANDIDATE_PERIODS = ["last_month", "this_month", "last_quarter", "this_quarter", "this_year"]
SCORECARD_PERIODS = ["this_month", "this_quarter", "this_year"]
PART_LABELS = {
    "volume": gettext_lazy("Sales volume"),
    "conversion": gettext_lazy("Win rate %"),
    "average_ticket": gettext_lazy("Average ticket"),
    "cycle_time": gettext_lazy("Sales cycle (days, median)"),
    "repeat_business": gettext_lazy("Repeat business %"),
    "satisfaction": gettext_lazy("CSAT"),
}


def _not_sales(user: User) -> bool:
    return user.role not in SALES_ROLES


def _chosen_team(request: HttpRequest, teams: QuerySet[Team]) -> Team | None:
    """The team in ``?team=`` (404 if not visible), else the first the user may see."""
    pk = request.GET.get("team")
    if pk:
        return team_get_for_user(user=request.user, pk=pk)
    return teams.first()


# --- Forecast accuracy ---------------------------------------------------------------------


@login_required
def forecast_accuracy(request: HttpRequest) -> HttpResponse:
    """Forecast at period start vs revenue won, per rep and team, for the last periods."""
    user = request.user
    if _not_sales(user):
        return forbidden(request, _("Forecasts are for the sales team."))
    teams = teams_for_user(user=user)
    team = _chosen_team(request, teams)
    form = AccuracyForm(request.GET or None, teams=teams, initial={"team": team})
    table = None
    if team is not None:
        period_kind, count = form.choice()
        table = forecast_accuracy_for_team(
            team=team,
            members=team_members(team),
            period_kind=period_kind,
            count=count,
            today=timezone.localdate(),
        )
        if user.role == Role.REP:
            # A rep's own row and the team's total only (DESIGN.md, visibility).
            table = replace(table, rows=[row for row in table.rows if row.rep == user])
    return render_page(
        request, "goals/forecast_accuracy.html", {"form": form, "team": team, "table": table}
    )


# --- Awards -------------------------------------------------------------------------------


@login_required
def award_list(request: HttpRequest) -> HttpResponse:
    """The awards the user may see (filtered, paginated) and, for givers, the candidates."""
    user = request.user
    if _not_sales(user):
        return forbidden(request, _("Awards are for the sales team."))
    today = timezone.localdate()
    reps = users_for_user(user=user).filter(role__in=(Role.REP, Role.MANAGER))
    form = AwardFilterForm(request.GET or None, reps=reps.order_by("display_name"))
    awards = awards_for_user(user=user).select_related("rep", "awarded_by")
    filters = form.filters()
    if filters.get("rep"):
        awards = awards.filter(rep=filters["rep"])
    if filters.get("kind"):
        awards = awards.filter(kind=filters["kind"])
    if filters.get("start"):
        awards = awards.filter(period_end__gte=filters["start"])
    if filters.get("end"):
        awards = awards.filter(period_start__lte=filters["end"])
    page = Paginator(awards.order_by("-awarded_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context: dict[str, Any] = {"form": form, "page_obj": page, "can_give": user.role in GIVERS}
    if user.role in GIVERS:
        teams = teams_for_user(user=user)
        team = _chosen_team(request, teams)
        picker = TeamPeriodForm(
            request.GET or None,
            teams=teams,
            periods=CANDIDATE_PERIODS,
            default="last_month",
            initial={"team": team, "period": "last_month"},
        )
        start, end = named_period(picker.chosen_period(), today)
        context.update(
            picker=picker,
            team=team,
            start=start,
            end=end,
            candidates=award_candidates(team=team, start=start, end=end) if team else None,
        )
    return render_page(request, "goals/award_list.html", context)


@login_required
def award_create(request: HttpRequest) -> HttpResponse:
    """GET shows the form (prefilled from ``?rep=&start=&end=&title=``); POST gives the award."""
    user = request.user
    if user.role not in GIVERS:
        return forbidden(request, _("Only managers and administrators give awards."))
    recipients = award_recipients(actor=user)
    initial = {
        "rep": request.GET.get("rep"),
        "period_start": request.GET.get("start"),
        "period_end": request.GET.get("end"),
        "title": request.GET.get("title", ""),
    }
    form = AwardForm(request.POST or None, recipients=recipients, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            award = recognition.award_create(
                actor=user,
                rep=data["rep"],
                title=data["title"],
                kind=data["kind"],
                value=data.get("value"),
                period_start=data.get("period_start"),
                period_end=data.get("period_end"),
                reason=data["reason"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Award “%(title)s” given to %(rep)s.")
                % {"title": award.title, "rep": award.rep.display_name},
            )
            return redirect("goals:award_history", pk=award.rep_id)
    return render_page(
        request, "goals/award_form.html", {"form": form, "has_recipients": recipients.exists()}
    )


@login_required
def award_history(request: HttpRequest, pk: int) -> HttpResponse:
    """One person's awards: the person, their manager, an admin (others: 404)."""
    user = request.user
    if _not_sales(user):
        return forbidden(request, _("Awards are for the sales team."))
    rep = user_get_for_user(user=user, pk=pk)
    awards = awards_for_user(user=user).filter(rep=rep)
    page = Paginator(
        awards.select_related("awarded_by").order_by("-period_end", "-awarded_at", "-pk"),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    return render_page(
        request,
        "goals/award_history.html",
        {
            "rep": rep,
            "page_obj": page,
            "total_value": awards.aggregate(total=Sum("value"))["total"],
            "can_give": user.role in GIVERS and user != rep,
        },
    )


# --- Balanced scorecard ------------------------------------------------------------------


@login_required
def scorecard(request: HttpRequest) -> HttpResponse:
    """Each rep's scorecard against their team; a rep sees their row and the team average."""
    user = request.user
    if _not_sales(user):
        return forbidden(request, _("The scorecard is for the sales team."))
    teams = teams_for_user(user=user)
    team = _chosen_team(request, teams)
    picker = TeamPeriodForm(
        request.GET or None,
        teams=teams,
        periods=SCORECARD_PERIODS,
        default="this_month",
        initial={"team": team, "period": "this_month"},
    )
    start, end = named_period(picker.chosen_period(), timezone.localdate())
    card = scorecard_for_team(team=team, start=start, end=end) if team else None
    lines = []
    if card is not None and card.rows:
        lines = [
            {"label": row.rep.display_name, "row": row, "testid": "rep"}
            for row in card.rows
            if user.role != Role.REP or row.rep == user
        ]
        lines.append(
            {"label": _("Team average"), "row": card.average, "testid": "average", "strong": True}
        )
    return render_page(
        request,
        "goals/scorecard.html",
        {
            "picker": picker,
            "team": team,
            "card": card,
            "lines": lines,
            "parts": [
                {"label": PART_LABELS[part], "weight": card.weights.get(part) if card else None}
                for part in PARTS
            ],
            "start": start,
            "end": end,
        },
    )
