"""Pages of the feedback app.

The customer's survey page (``survey``) is public: no login, no session, no
cookie. Everything else is for sales (reps, managers, admins); every object
comes from a scoped selector, so "not yours" and "not there" are both 404.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import get_or_404, users_for_user
from accounts.models import Role
from feedback import conf, services
from feedback.forms import CaseOpenForm, CaseStatusForm, RangeForm, SurveyAnswerForm
from feedback.models import OPEN_CASE_STATUSES, CaseStatus
from feedback.selectors import (
    answer_get_for_user,
    answers_for_user,
    case_alerts_for_user,
    case_get_for_user,
    cases_for_user,
    invitation_for_token,
    satisfaction_table,
    survey_texts_cached,
)
from leads.selectors import customer_get_for_user, deals_for_user

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
SCORES_CSAT = [str(score) for score in range(1, 6)]
SCORES_NPS = [str(score) for score in range(0, 11)]
SALES_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)


# --- The public survey page --------------------------------------------------------------


def _rate_limited(request: HttpRequest) -> bool:
    """More than SURVEY_RATE_LIMIT requests from this IP address in the current window.

    A counter per (IP, window) in the shared cache (Redis): ``incr`` is atomic and
    ``add`` creates it only if missing, so every worker process counts into the
    same number. If
    the cache is down the page stays up (a survey must not fail because of it).
    The address is REMOTE_ADDR: behind a proxy, the proxy must set it right.
    """
    limit, window = conf.rate_limit()
    key = f"feedback:survey-rate:{request.META.get('REMOTE_ADDR', '')}:{int(time.time()) // window}"
    try:
        try:
            count = cache.incr(key)
        except ValueError:  # the window's first request (or the key just expired)
            count = 1 if cache.add(key, 1, timeout=window + 1) else cache.incr(key)
    except Exception:  # the cache being down must not take the page down
        logger.warning("Survey rate limit not checked: cache unavailable", exc_info=True)
        return False
    return count > limit


def _public(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    response = render(request, template, context, status=status)
    # The URL holds the token: never cached, indexed, or sent on as a Referer.
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Language"] = translation.get_language()
    return response


def _chosen(request: HttpRequest) -> dict[str, str]:
    """What the customer had entered, to show again next to the form's errors."""
    data = request.POST if request.method == "POST" else {}
    return {name: data.get(name, "") for name in ("csat", "nps", "free_text", "may_contact")}


# Status codes of the friendly pages: what each situation is, in HTTP terms.
MESSAGE_STATUS = {
    services.SurveyUnavailable.INVALID: 404,
    services.SurveyUnavailable.EXPIRED: 410,
    services.SurveyUnavailable.ANSWERED: 409,
}


def _message(request: HttpRequest, kind: str, *, status: int) -> HttpResponse:
    return _public(request, "feedback/survey_message.html", {"kind": kind}, status=status)


# The token in the URL is what authorises the POST: it is a 256-bit secret that
# only the customer's email holds, and there is no session, login or other
# ambient authority a forged cross-site request could borrow. A CSRF cookie would
# only add ways to fail for a customer (in-app mail browsers, blocked cookies)
# and cost the page its cookie-free speed; so this view does not use one.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def survey(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the form and changes nothing (a mail server's link scanner may open
    it); POST stores the answer, once.

    A GET is one query (the link with its invitation, template and rep), plus one
    the first time a process shows a template version in a language (its texts).
    A valid POST goes straight to ``survey_answer``, which finds and locks the
    invitation by the token itself; the page is only read again to show a message
    or the form's errors.
    """
    if _rate_limited(request):
        return _message(request, "rate_limited", status=429)
    now = timezone.now()
    form = None
    if request.method == "POST":
        form = SurveyAnswerForm(request.POST)
        if form.is_valid():
            try:
                services.survey_answer(token=token, now=now, **form.answer())
            except services.SurveyUnavailable as closed:
                found = invitation_for_token(token)
                language = translation.override(found.language) if found else nullcontext()
                with language:
                    return _message(request, closed.reason, status=MESSAGE_STATUS[closed.reason])
            response = HttpResponseRedirect(request.path)
            response.status_code = 303  # See Other: the reload of the thanks page is a GET
            return response
    invitation = invitation_for_token(token)
    if invitation is None:
        return _message(request, "invalid", status=404)
    with translation.override(invitation.language):
        if invitation.answered_at is not None:
            # After the answer (and its redirect), the page says thank you.
            status = 409 if request.method == "POST" else 200
            return _message(request, "answered", status=status)
        if invitation.expires_at is None or invitation.expires_at <= now:
            return _message(request, "expired", status=410)
        return _public(
            request,
            "feedback/survey_form.html",
            {
                "invitation": invitation,
                "texts": survey_texts_cached(invitation),
                # None on a GET: building a form only to show empty fields costs
                # more than the rest of the page (the template needs no form then).
                "form": form,
                "chosen": _chosen(request),
                "company": conf.company_name(),
                "csat_scores": SCORES_CSAT,
                "nps_scores": SCORES_NPS,
            },
        )


# --- Staff pages: helpers ----------------------------------------------------------------


def _forbidden(request: HttpRequest) -> HttpResponse:
    messages.error(
        request, _("Customer satisfaction is for sales reps, managers and administrators.")
    )
    return render(request, "403.html", status=403)


def _not_sales(user: Any) -> bool:
    return user.role not in SALES_ROLES


# --- Follow-up cases ----------------------------------------------------------------------

CASE_FILTERS = {
    "open": ("open", OPEN_CASE_STATUSES),
    "overdue": ("overdue", OPEN_CASE_STATUSES),
    "resolved": ("resolved", (CaseStatus.RESOLVED,)),
    "closed": ("closed", (CaseStatus.CLOSED,)),
    "all": ("all", tuple(CaseStatus.values)),
}


@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    """The user's cases (a manager: the teams'), open ones first by deadline; overdue flagged."""
    if _not_sales(request.user):
        return _forbidden(request)
    now = timezone.now()
    show = request.GET.get("show", "open")
    show = show if show in CASE_FILTERS else "open"
    cases = cases_for_user(user=request.user).filter(status__in=CASE_FILTERS[show][1])
    if show == "overdue":
        cases = cases.filter(deadline__lt=now)
    ordering = ["deadline", "pk"] if show in ("open", "overdue") else ["-opened_at", "-pk"]
    page = Paginator(
        cases.select_related("customer", "rep").order_by(*ordering), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "feedback/case_list.html",
        {
            "page_obj": page,
            "show": show,
            "filters": list(CASE_FILTERS),
            "alerts": case_alerts_for_user(user=request.user, now=now),
            "now": now,
        },
    )


@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(user=request.user, pk=pk)
    return _case_page(request, case, form=None)


def _case_page(
    request: HttpRequest, case: Any, *, form: CaseStatusForm | None, status: int = 200
) -> HttpResponse:
    allowed = services.allowed_case_statuses(case)
    if form is None and allowed:
        form = CaseStatusForm(case=case, allowed=allowed)
    return render(
        request,
        "feedback/case_detail.html",
        {
            "case": case,
            "events": case.events.select_related("actor"),
            "form": form,
            "now": timezone.now(),
            "can_work": not _not_sales(request.user),
        },
        status=status,
    )


@login_required
@require_POST
def case_status(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(user=request.user, pk=pk)
    if _not_sales(request.user):
        return _forbidden(request)
    form = CaseStatusForm(request.POST, case=case, allowed=services.allowed_case_statuses(case))
    if form.is_valid():
        try:
            services.case_change_status(
                case=case,
                actor=request.user,
                to_status=form.cleaned_data["to_status"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("The case was updated."))
            return redirect("feedback:case_detail", pk=case.pk)
    return _case_page(request, case, form=form, status=400)


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            for message in errors:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in error.messages:
            form.add_error(None, message)


@login_required
def case_create(request: HttpRequest) -> HttpResponse:
    """Open a case by hand (a complaint by phone) for a customer: ``?customer=<id>``."""
    if _not_sales(request.user):
        return _forbidden(request)
    customer = customer_get_for_user(user=request.user, pk=request.GET.get("customer"))
    deals = deals_for_user(user=request.user).filter(customer=customer).select_related("owner")
    initial = {}
    if request.GET.get("deal"):
        initial["deal"] = get_or_404(deals, pk=request.GET["deal"])
    form = CaseOpenForm(request.POST or None, deals=deals, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            case = services.case_open(
                actor=request.user,
                customer=customer,
                deal=form.cleaned_data["deal"],
                summary=form.cleaned_data["summary"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("The case was opened."))
            return redirect("feedback:case_detail", pk=case.pk)
    return render(request, "feedback/case_form.html", {"form": form, "customer": customer})


# --- Answers -------------------------------------------------------------------------------


@login_required
def answer_list(request: HttpRequest) -> HttpResponse:
    if _not_sales(request.user):
        return _forbidden(request)
    answers = answers_for_user(user=request.user).select_related("customer", "rep", "case")
    page = Paginator(answers.order_by("-answered_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "feedback/answer_list.html", {"page_obj": page})


@login_required
def answer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    answer = answer_get_for_user(user=request.user, pk=pk)
    return render(request, "feedback/answer_detail.html", {"answer": answer})


# --- Sending a survey on request ---------------------------------------------------------------


def _request_survey(request: HttpRequest, *, customer: Any, deal: Any, back: str) -> HttpResponse:
    try:
        services.invitation_request(actor=request.user, customer=customer, deal=deal)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(
            request, _("A survey is on its way to %(email)s.") % {"email": customer.email}
        )
    return redirect(back)


@login_required
@require_POST
def survey_send_customer(request: HttpRequest, pk: int) -> HttpResponse:
    if _not_sales(request.user):
        return _forbidden(request)
    customer = customer_get_for_user(user=request.user, pk=pk)
    return _request_survey(
        request,
        customer=customer,
        deal=None,
        back=reverse("leads:customer_detail", args=[customer.pk]),
    )


@login_required
@require_POST
def survey_send_deal(request: HttpRequest, pk: int) -> HttpResponse:
    if _not_sales(request.user):
        return _forbidden(request)
    deal = get_or_404(deals_for_user(user=request.user).select_related("customer", "owner"), pk=pk)
    return _request_survey(
        request,
        customer=deal.customer,
        deal=deal,
        back=reverse("leads:deal_detail", args=[deal.pk]),
    )


# --- Satisfaction figures -----------------------------------------------------------------------


@login_required
def satisfaction(request: HttpRequest) -> HttpResponse:
    """CSAT, NPS, response rate and case figures per rep and team the user may see."""
    if _not_sales(request.user):
        return _forbidden(request)
    form = RangeForm(request.GET or None)
    start, end = form.range(timezone.localdate())
    reps = list(
        users_for_user(user=request.user)
        .filter(role__in=(Role.REP, Role.MANAGER))
        .select_related("team")
        .order_by("team__name", "display_name", "pk")
    )
    table = satisfaction_table(
        rep_ids=[rep.pk for rep in reps], start=start, end=end, now=timezone.now()
    )
    teams: dict[Any, dict[str, Any]] = {}
    for rep in reps:
        group = teams.setdefault(
            rep.team_id, {"team": rep.team, "figures": table.for_team(rep.team_id), "rows": []}
        )
        group["rows"].append({"rep": rep, "figures": table.for_rep(rep.pk)})
    return render(
        request,
        "feedback/satisfaction.html",
        {
            "form": form,
            "start": start,
            "end": end,
            "teams": list(teams.values()),
            "total": table.total,
            "show_total": len(teams) > 1,
        },
    )
