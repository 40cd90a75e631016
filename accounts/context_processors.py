"""The navigation: which sections a role sees in the menu.

The menu only mirrors the access rules; every page checks access itself.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Role

EVERYONE = {Role.REP, Role.MANAGER, Role.MARKETING, Role.ADMIN}
SALES = {Role.REP, Role.MANAGER, Role.ADMIN}

# (url name, label, roles that see it), in menu order.
NAVIGATION: list[tuple[str, Any, set[str]]] = [
    ("home", _("Home"), EVERYONE),
    ("goals:dashboard", _("Dashboard"), SALES),
    ("reminders:list", _("Reminders"), SALES),
    ("leads:list", _("Leads"), EVERYONE),
    ("leads:customer_list", _("Customers"), EVERYONE),
    ("leads:estimate_list", _("Estimates"), SALES),
    ("leads:deal_list", _("Deals"), SALES),
    ("leads:activity_list", _("Activities"), EVERYONE),
    ("goals:goal_list", _("Goals"), SALES),
    ("goals:leaderboard", _("Leaderboards"), SALES),
    ("goals:award_list", _("Awards"), SALES),
    ("feedback:satisfaction", _("Satisfaction"), SALES),
    ("feedback:case_list", _("Cases"), SALES),
    ("leads:import_upload", _("Import"), EVERYONE),
    ("admin:index", _("Administration"), {Role.ADMIN}),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    for url_name, label, roles in NAVIGATION:
        if user.role not in roles:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        active = request.path == url if url == "/" else request.path.startswith(url)
        items.append({"url": url, "label": label, "active": active})
    return {"nav_items": items}
