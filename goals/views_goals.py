"""Goal pages: the list, create, the goal with its revisions, splits and reviews,
revise, split to reps, root cause, and reviews.

Every goal comes from ``goals.selectors.goal_get_for_user`` (another team's goal:
404). Marketing may open no goal page (403). Seeing a goal is not setting it:
revise, split and review are for who may set it (``goals.services.goal_may_set``);
anyone else who can see the goal gets 403 on those pages, GET or POST.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import get_or_404
from accounts.models import Role, User
from goals import rootcause, services
from goals.forms import (
    PERIOD_ALL,
    PERIOD_CURRENT,
    PERIOD_FUTURE,
    PERIOD_PAST,
    GoalFilterForm,
    GoalForm,
    GoalReviewForm,
    GoalReviseForm,
    GoalSplitForm,
    SplitMethodForm,
    TargetOnForm,
)
from goals.models import Goal, GoalReview, OwnerKind, ReviewStatus
from goals.selectors import goal_get_for_user, goal_progress, goal_target_on, goals_for_user
from leads.forms_sales import add_service_errors

PAGE_SIZE = 25
GOAL_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)
SETTER_ROLES = (Role.MANAGER, Role.ADMIN)


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """render() with what every goal page shows: the base currency of money targets."""
    return render(request, template, {"base_currency": settings.BASE_CURRENCY, **context})


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """A role that may not use a page at all: 403 with the reason on top."""
    messages.error(request, message)
    return render(request, "403.html", status=403)


def _no_goals_for(request: HttpRequest) -> HttpResponse | None:
    if request.user.role not in GOAL_ROLES:
        return _forbidden(request, _("Goals are for the sales team."))
    return None


def _not_yours_to_set(request: HttpRequest) -> HttpResponse:
    return _forbidden(request, _("Only their manager or an administrator changes this goal."))


# --- List ---------------------------------------------------------------------------


def _filtered(goals: QuerySet[Goal], data: dict[str, Any], today: date) -> QuerySet[Goal]:
    month = data.get("month")
    if month is not None:
        month_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        goals = goals.filter(start__lte=month_end, end__gte=month)
    else:
        period = data.get("period") or PERIOD_CURRENT
        if period == PERIOD_CURRENT:
            goals = goals.filter(start__lte=today, end__gte=today)
        elif period == PERIOD_PAST:
            goals = goals.filter(end__lt=today)
        elif period == PERIOD_FUTURE:
            goals = goals.filter(start__gt=today)
    if data.get("owner_kind"):
        goals = goals.filter(owner_kind=data["owner_kind"])
    if data.get("metric"):
        goals = goals.filter(metric=data["metric"])
    if data.get("rep"):
        goals = goals.filter(rep=data["rep"])
    if data.get("team"):
        goals = goals.filter(Q(team=data["team"]) | Q(rep__team=data["team"]))
    return goals


@login_required
def goal_list(request: HttpRequest) -> HttpResponse:
    if refused := _no_goals_for(request):
        return refused
    user = request.user
    today = timezone.localdate()
    form = GoalFilterForm(request.GET or None, user=user)
    data = form.cleaned_data if form.is_valid() else {}
    goals = _filtered(
        goals_for_user(user=user).select_related("rep", "team", "product_line", "territory"),
        data,
        today,
    )
    page = Paginator(goals.order_by("-start", "owner_kind", "pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = goal_progress(list(page.object_list), today=today)
    return _render(
        request,
        "goals/goal_list.html",
        {
            "form": form,
            "page_obj": page,
            "rows": rows,
            "figures_up_to": today - timedelta(days=1),
            "may_create": user.role in SETTER_ROLES,
            "filtered": bool(request.GET.get("month"))
            or (request.GET.get("period") or PERIOD_CURRENT) != PERIOD_ALL,
        },
    )


# --- Create ---------------------------------------------------------------------------


@login_required
def goal_create(request: HttpRequest) -> HttpResponse:
    if refused := _no_goals_for(request):
        return refused
    user = request.user
    if user.role not in SETTER_ROLES:
        return _forbidden(request, _("Goals are set by managers and administrators."))
    form = GoalForm(request.POST or None, user=user, initial={"start": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            goal = services.goal_create(
                actor=user,
                owner_kind=data["owner_kind"],
                rep=data.get("rep"),
                team=data.get("team"),
                metric=data["metric"],
                activity_kind=data.get("activity_kind") or "",
                period_kind=data["period_kind"],
                start=data["start"],
                end=data.get("end"),
                product_line=data.get("product_line"),
                territory=data.get("territory"),
                target=data["target"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Goal created."))
            return redirect("goals:goal_detail", pk=goal.pk)
    return _render(request, "goals/goal_form.html", {"form": form})


# --- Detail ---------------------------------------------------------------------------


@login_required
def goal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if refused := _no_goals_for(request):
        return refused
    user = request.user
    goal = goal_get_for_user(user=user, pk=pk)
    today = timezone.localdate()
    may_set = services.goal_may_set(actor=user, goal=goal)
    revisions = list(goal.revisions.select_related("revised_by"))
    on_form = TargetOnForm(request.GET or None)
    on_day = on_form.cleaned_data.get("on") if on_form.is_valid() else None
    children = list(
        goals_for_user(user=user)
        .filter(parent=goal)
        .select_related("rep")
        .order_by("rep__display_name", "pk")
    )
    progress = goal_progress([goal, *children], today=today)
    children_total = sum((child.target for child in children), goal.target * 0)
    reviews = list(goal.reviews.select_related("action_owner", "created_by"))
    context = {
        "goal": goal,
        "progress": progress[0],
        "children": progress[1:],
        "children_total": children_total,
        "split_difference": goal.target - children_total if children and may_set else None,
        "split_gap": abs(goal.target - children_total),
        "revisions": revisions,
        "on_form": on_form,
        "on_day": on_day,
        "target_on": goal_target_on(goal, on_day, revisions) if on_day else None,
        "reviews": reviews,
        "may_set": may_set,
        "may_split": may_set and goal.owner_kind != OwnerKind.REP,
        "may_see_root_cause": _may_see_root_cause(user, goal, may_set),
        "review_form": GoalReviewForm(user=user, initial={"due_on": today + timedelta(days=14)})
        if may_set
        else None,
        "figures_up_to": today - timedelta(days=1),
        "today": today,
    }
    return _render(request, "goals/goal_detail.html", context)


def _may_see_root_cause(user: User, goal: Goal, may_set: bool) -> bool:
    """Who may set the goal, and a rep on their own goal: the page names deals and
    cases of the whole scope, which a rep may not see for a team goal."""
    return may_set or (goal.owner_kind == OwnerKind.REP and goal.rep_id == user.pk)


def _goal_to_set(request: HttpRequest, pk: int) -> tuple[Goal | None, HttpResponse | None]:
    """The goal (404 if not visible) and, when the user may not set it, the 403 page."""
    if refused := _no_goals_for(request):
        return None, refused
    goal = goal_get_for_user(user=request.user, pk=pk)
    if not services.goal_may_set(actor=request.user, goal=goal):
        return goal, _not_yours_to_set(request)
    return goal, None


# --- Revise -------------------------------------------------------------------------------


@login_required
def goal_revise(request: HttpRequest, pk: int) -> HttpResponse:
    goal, refused = _goal_to_set(request, pk)
    if refused:
        return refused
    assert goal is not None
    today = timezone.localdate()
    form = GoalReviseForm(
        request.POST or None,
        initial={
            "new_target": goal.target,
            "effective_from": max(goal.start, min(today, goal.end)),
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.goal_revise(
                goal=goal,
                actor=request.user,
                new_target=data["new_target"],
                reason=data["reason"],
                comment=data.get("comment") or "",
                effective_from=data["effective_from"],
                today=today,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Target revised."))
            return redirect("goals:goal_detail", pk=goal.pk)
    return _render(request, "goals/goal_revise.html", {"goal": goal, "form": form})


# --- Split ----------------------------------------------------------------------------------


def _split_candidates(goal: Goal) -> list[User]:
    """Who may get a share: the team's active reps and managers (a company goal: everyone's),
    without those who already have one."""
    people = User.objects.filter(role__in=(Role.REP, Role.MANAGER), is_active=True)
    if goal.owner_kind == OwnerKind.TEAM:
        people = people.filter(team=goal.team_id)
    else:
        people = people.filter(team__isnull=False)
    return list(people.exclude(pk__in=goal.splits.values("rep")).order_by("display_name", "pk"))


@login_required
def goal_split(request: HttpRequest, pk: int) -> HttpResponse:
    goal, refused = _goal_to_set(request, pk)
    if refused:
        return refused
    assert goal is not None
    if goal.owner_kind == OwnerKind.REP:
        messages.error(request, _("A rep's goal cannot be split further."))
        return redirect("goals:goal_detail", pk=goal.pk)
    reps = _split_candidates(goal)
    method_form = SplitMethodForm(request.GET or None)
    method = (method_form.cleaned_data.get("method") if method_form.is_valid() else "") or (
        services.SPLIT_EVENLY
    )
    suggestion = services.goal_split_suggestion(goal=goal, reps=reps, method=method)
    form = GoalSplitForm(request.POST or None, reps=reps, suggestion=suggestion)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.goal_split(goal=goal, actor=request.user, targets=form.targets())
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Goal split among %(count)s reps.") % {"count": len(created)},
            )
            return redirect("goals:goal_detail", pk=goal.pk)
    return _render(
        request,
        "goals/goal_split.html",
        {
            "goal": goal,
            "form": form,
            "method_form": method_form,
            "method": method,
            "reps": reps,
            "suggested_total": sum(suggestion.values(), goal.target * 0),
        },
    )


# --- Root cause -------------------------------------------------------------------------------


@login_required
def goal_root_cause(request: HttpRequest, pk: int) -> HttpResponse:
    if refused := _no_goals_for(request):
        return refused
    user = request.user
    goal = goal_get_for_user(user=user, pk=pk)
    may_set = services.goal_may_set(actor=user, goal=goal)
    if not _may_see_root_cause(user, goal, may_set):
        return _not_yours_to_set(request)
    analysis = rootcause.root_cause(goal=goal, today=timezone.localdate())
    return _render(
        request,
        "goals/goal_root_cause.html",
        {"goal": goal, "analysis": analysis, "may_set": may_set},
    )


# --- Reviews ------------------------------------------------------------------------------------


@login_required
def goal_review_create(request: HttpRequest, pk: int) -> HttpResponse:
    goal, refused = _goal_to_set(request, pk)
    if refused:
        return refused
    assert goal is not None
    today = timezone.localdate()
    form = GoalReviewForm(
        request.POST or None, user=request.user, initial={"due_on": today + timedelta(days=14)}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.goal_review_create(
                goal=goal,
                actor=request.user,
                cause=data["cause"],
                findings=data.get("findings") or "",
                corrective_action=data["corrective_action"],
                action_owner=data["action_owner"],
                due_on=data["due_on"],
                today=today,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Review recorded."))
            return redirect("goals:goal_detail", pk=goal.pk)
    return _render(request, "goals/goal_review_form.html", {"goal": goal, "form": form})


@login_required
@require_POST
def goal_review_done(request: HttpRequest, pk: int) -> HttpResponse:
    if refused := _no_goals_for(request):
        return refused
    user = request.user
    review = get_or_404(
        GoalReview.objects.filter(goal__in=goals_for_user(user=user)).select_related("goal"),
        pk=pk,
    )
    if review.status == ReviewStatus.DONE:
        messages.info(request, _("This action was already done."))
        return redirect("goals:goal_detail", pk=review.goal_id)
    try:
        services.goal_review_done(review=review, actor=user)
    except ValidationError:
        return _not_yours_to_set(request)
    messages.success(request, _("Corrective action marked done."))
    return redirect("goals:goal_detail", pk=review.goal_id)
