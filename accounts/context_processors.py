"""The navigation: which sections a role sees in the menu.

The menu only mirrors the access rules; every page checks access itself.
Sections used every day are links of their own; the others are grouped in a
few menus so the bar fits on one line.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Role

EVERYONE = {Role.REP, Role.MANAGER, Role.MARKETING, Role.ADMIN}
SALES = {Role.REP, Role.MANAGER, Role.ADMIN}

PIPELINE = _("Pipeline")
PERFORMANCE = _("Performance")
SATISFACTION = _("Satisfaction")

# (url name, label, roles that see it, menu it sits in or None), in menu order.
NAVIGATION: list[tuple[str, Any, set[str], Any]] = [
    ("home", _("Home"), EVERYONE, None),
    ("goals:dashboard", _("Dashboard"), SALES, None),
    ("leads:list", _("Leads"), EVERYONE, None),
    ("leads:customer_list", _("Customers"), EVERYONE, None),
    ("reminders:list", _("Reminders"), SALES, None),
    ("leads:estimate_list", _("Estimates"), SALES, PIPELINE),
    ("leads:deal_list", _("Deals"), SALES, PIPELINE),
    ("leads:activity_list", _("Activities"), EVERYONE, PIPELINE),
    ("leads:import_upload", _("Import"), EVERYONE, PIPELINE),
    ("goals:goal_list", _("Goals"), SALES, PERFORMANCE),
    ("goals:leaderboard", _("Leaderboards"), SALES, PERFORMANCE),
    ("goals:scorecard", _("Scorecard"), SALES, PERFORMANCE),
    ("goals:forecast_accuracy", _("Forecasts"), SALES, PERFORMANCE),
    ("goals:award_list", _("Awards"), SALES, PERFORMANCE),
    ("feedback:satisfaction", _("Customer satisfaction"), SALES, SATISFACTION),
    ("feedback:case_list", _("Cases"), SALES, SATISFACTION),
    ("reminders:ops", _("Email queue"), {Role.ADMIN}, None),
    ("admin:index", _("Administration"), {Role.ADMIN}, None),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    """``nav_items``: links, and menus (``children``) holding the grouped links."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items: list[dict[str, Any]] = []
    menus: dict[str, dict[str, Any]] = {}
    for url_name, label, roles, group in NAVIGATION:
        if user.role not in roles:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        active = request.path == url if url == "/" else request.path.startswith(url)
        link = {"url": url, "label": label, "active": active}
        if group is None:
            items.append(link)
            continue
        key = str(group)
        if key not in menus:
            menus[key] = {"label": group, "children": [], "active": False}
            items.append(menus[key])
        menus[key]["children"].append(link)
        menus[key]["active"] = menus[key]["active"] or active
    return {"nav_items": items}
