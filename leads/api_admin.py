"""Admin of web-to-lead keys: keys are made by ``leads.api``, and shown once.

Not registered here: ``leads/admin.py`` registers it
(``admin.site.register(WebLeadKey, WebLeadKeyAdmin)``).

Adding a key, or issuing a new secret for one (an action), answers with a page
showing the raw key; it is not put in a message (messages travel in a cookie or
the session table) and is never stored: only its hash is.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leads.api import web_lead_key_issue
from leads.models import WebLeadKey

ISSUED_TEMPLATE = "leads/weblead_key_issued.html"


class WebLeadKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "source", "is_active", "created_at", "last_used_at")
    list_filter = ("is_active", "source")
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    actions = ["issue_new_secret"]

    def get_fields(self, request: HttpRequest, obj: WebLeadKey | None = None) -> Any:
        if obj is None:
            return ("name", "source", "is_active")
        return ("name", "source", "is_active", "prefix", "created_at", "last_used_at")

    def save_model(
        self, request: HttpRequest, obj: WebLeadKey, form: ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)  # name, source, active only
            return
        # Kept on the instance for response_add, which shows it; never saved.
        obj.raw_key_once = web_lead_key_issue(key=obj)  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: WebLeadKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        raw = getattr(obj, "raw_key_once", None)
        if raw is None:  # pragma: no cover - save_model always sets it
            return super().response_add(request, obj, post_url_continue)
        return self._show_key(request, obj, raw, created=True)

    @admin.action(
        description=gettext_lazy("Issue a new secret (the current key stops working)"),
        permissions=["change"],
    )
    def issue_new_secret(
        self, request: HttpRequest, queryset: QuerySet[WebLeadKey]
    ) -> HttpResponse | None:
        keys = list(queryset[:2])
        if len(keys) != 1:
            self.message_user(
                request, _("Choose exactly one key to issue a new secret for."), messages.ERROR
            )
            return None
        key = keys[0]
        raw = web_lead_key_issue(key=key)
        self.log_change(request, key, _("Issued a new secret."))
        return self._show_key(request, key, raw, created=False)

    def _show_key(
        self, request: HttpRequest, key: WebLeadKey, raw: str, *, created: bool
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": _("Copy the key now"),
            "opts": self.model._meta,
            "key": key,
            "raw_key": raw,
            "created": created,
            "endpoint": settings.SITE_URL + reverse("leads:web_lead_create"),
            "change_url": reverse("admin:leads_webleadkey_change", args=[key.pk]),
            "changelist_url": reverse("admin:leads_webleadkey_changelist"),
        }
        response = TemplateResponse(request, ISSUED_TEMPLATE, context)
        add_never_cache_headers(response)
        return response
