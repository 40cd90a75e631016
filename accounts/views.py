from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import services
from accounts.forms import ProfileForm
from accounts.models import Role
from accounts.selectors import home_for_user
from feedback.selectors import case_alerts_for_user
from reminders.selectors import reminder_panel_for

SALES_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    summary = home_for_user(user=request.user)
    now = timezone.now()
    alerts = case_alerts_for_user(user=request.user, now=now)
    context = {"summary": summary, "case_alerts": alerts}
    if request.user.role in SALES_ROLES:
        # What is due first thing in the morning: the user's own open reminders.
        context["reminder_panel"] = reminder_panel_for(
            user=request.user, today=timezone.localdate(now)
        )
    return render(request, "accounts/home.html", context)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm.for_user(request.user, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.user_update_profile(user=request.user, **form.cleaned_data)
        messages.success(request, _("Your profile was saved."))
        return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form})


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language switcher: remembered in a cookie, and in the profile when logged in."""
    language = request.POST.get("language", "")
    next_url = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if language not in dict(settings.LANGUAGES):
        messages.error(request, _("That language is not available."))
        return response
    if request.user.is_authenticated:
        services.user_set_language(user=request.user, language=language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 60 * 60,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response
