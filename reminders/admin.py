"""Reminders and digests in the Django admin: filters to find a stuck or failed email."""

from __future__ import annotations

from django.contrib import admin

from reminders.models import Digest, Reminder


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "kind",
        "user",
        "due_on",
        "status",
        "email_state",
        "attempts",
        "sent_at",
    )
    list_filter = ("kind", "status", "email_state", "due_on")
    search_fields = ("title", "user__email", "user__display_name")
    date_hierarchy = "due_on"
    list_select_related = ("user",)
    raw_id_fields = ("user", "lead", "customer", "deal", "estimate", "activity", "goal", "case")
    readonly_fields = (
        "created_at",
        "claimed_at",
        "sent_at",
        "enqueued_at",
        "attempts",
        "last_error",
    )


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ("user", "local_date", "state", "item_count", "attempts", "sent_at")
    list_filter = ("state", "local_date")
    search_fields = ("user__email", "user__display_name")
    date_hierarchy = "local_date"
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = (
        "claimed_at",
        "sent_at",
        "enqueued_at",
        "attempts",
        "last_error",
        "item_count",
    )
