"""The navigation: which sections a role sees in the menu.

The menu only mirrors the access rules; every page checks access itself.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Role

# (url name, label, roles that see it). Later issues add their sections here.
NAVIGATION: list[tuple[str, Any, set[str]]] = [
    ("home", _("Home"), {Role.REP, Role.MANAGER, Role.MARKETING, Role.ADMIN}),
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
        items.append({"url": url, "label": label, "active": request.path == url})
    return {"nav_items": items}
