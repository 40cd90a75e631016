"""Admin of the feedback app: survey templates are edited here; invitations, emails,
answers and cases are shown for support (answers and history are not edited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from feedback.models import (
    CaseEvent,
    FollowUpCase,
    SurveyAnswer,
    SurveyDelivery,
    SurveyInvitation,
    SurveyTemplate,
    SurveyTemplateText,
)


class TextFormSet(BaseInlineFormSet):
    """English is required: it is what a customer sees when their language has no text."""

    def clean(self) -> None:
        super().clean()
        languages = {
            form.cleaned_data.get("language")
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        }
        if "en" not in languages:
            raise ValidationError(
                _("Add the English texts: they are used for any language without its own.")
            )


class SurveyTemplateTextInline(admin.StackedInline):
    model = SurveyTemplateText
    formset = TextFormSet
    extra = 0
    min_num = 1


@admin.register(SurveyTemplate)
class SurveyTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "ask_free_text", "ask_contact", "updated_at"]
    inlines = [SurveyTemplateTextInline]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SurveyDeliveryInline(ReadOnlyInline):
    model = SurveyDelivery
    fields = ["kind", "state", "send_after", "claimed_at", "sent_at", "attempts", "last_error"]


@admin.register(SurveyInvitation)
class SurveyInvitationAdmin(admin.ModelAdmin):
    list_display = ["pk", "customer", "rep", "reason", "created_at", "sent_at", "answered_at"]
    list_filter = ["reason"]
    search_fields = ["customer__name", "email"]
    list_select_related = ["customer", "rep"]
    raw_id_fields = ["customer", "deal", "rep", "created_by"]
    readonly_fields = [
        "sent_at",
        "expires_at",
        "reminded_at",
        "answered_at",
        "failed_at",
        "failure",
    ]
    inlines = [SurveyDeliveryInline]


@admin.register(SurveyAnswer)
class SurveyAnswerAdmin(admin.ModelAdmin):
    list_display = ["pk", "customer", "rep", "csat", "nps", "has_concern", "answered_at"]
    list_filter = ["csat", "has_concern"]
    search_fields = ["customer__name"]
    list_select_related = ["customer", "rep"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CaseEventInline(ReadOnlyInline):
    model = CaseEvent
    fields = ["created_at", "from_status", "to_status", "note", "actor"]


@admin.register(FollowUpCase)
class FollowUpCaseAdmin(admin.ModelAdmin):
    """Status changes go through the case page (they need a note and are recorded)."""

    list_display = ["pk", "summary", "customer", "rep", "status", "deadline", "resolved_at"]
    list_filter = ["status", "source"]
    search_fields = ["summary", "customer__name"]
    list_select_related = ["customer", "rep"]
    raw_id_fields = ["customer", "deal", "answer", "rep", "opened_by"]
    readonly_fields = ["status", "resolved_at", "resolution_note", "close_reason"]
    inlines = [CaseEventInline]
