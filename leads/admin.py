from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from leads.api_admin import WebLeadKeyAdmin
from leads.models import (
    Activity,
    Contact,
    Customer,
    Deal,
    Estimate,
    ImportJob,
    Lead,
    LeadEvent,
    RoutingRule,
    WebLeadKey,
    WinModel,
)


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ("name", "title", "email", "phone", "language", "is_primary")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "email", "phone", "city", "owner", "language", "created_at")
    list_filter = ("kind", "language", "territory", "country")
    search_fields = ("name", "email", "phone", "phone_normalised", "city")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner", "territory")
    readonly_fields = ("created_by", "created_at", "updated_at")
    inlines = [ContactInline]


class LeadEventInline(admin.TabularInline):
    model = LeadEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "from_value", "to_value", "reason", "actor")
    readonly_fields = fields
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest, obj: Lead | None = None) -> bool:
        return False


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "contact_name",
        "stage",
        "temperature",
        "score",
        "source",
        "owner",
        "team",
        "created_at",
    )
    list_filter = ("stage", "temperature", "source", "team", "territory", "product_lines")
    search_fields = ("contact_name", "company_name", "email", "phone_normalised")
    list_select_related = ("owner", "team")
    autocomplete_fields = ("customer", "owner", "territory")
    readonly_fields = (
        "score",
        "score_breakdown",
        "win_probability",
        "reached_mql_at",
        "reached_sql_at",
        "decided_at",
        "assigned_by_rule",
        "created_by",
        "created_at",
        "updated_at",
    )
    filter_horizontal = ("product_lines",)
    date_hierarchy = "created_at"
    show_full_result_count = False  # a COUNT(*) over a million leads on every page is slow
    inlines = [LeadEventInline]


@admin.register(Estimate)
class EstimateAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "customer",
        "product_line",
        "amount",
        "status",
        "issued_on",
        "valid_until",
        "owner",
    )
    list_filter = ("status", "product_line")
    search_fields = ("title", "customer__name")
    list_select_related = ("customer", "product_line", "owner")
    autocomplete_fields = ("customer", "lead", "owner")
    date_hierarchy = "issued_on"
    show_full_result_count = False


@admin.register(Deal)
class DealAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "customer",
        "product_line",
        "amount",
        "status",
        "lost_reason",
        "close_date",
        "owner",
    )
    list_filter = ("status", "lost_reason", "product_line", "territory")
    search_fields = ("title", "customer__name")
    list_select_related = ("customer", "product_line", "owner")
    autocomplete_fields = ("customer", "lead", "estimate", "owner", "territory")
    date_hierarchy = "close_date"
    show_full_result_count = False


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("subject", "kind", "occurred_at", "due_at", "done_at", "owner")
    list_filter = ("kind",)
    search_fields = ("subject", "notes")
    list_select_related = ("owner",)
    autocomplete_fields = ("lead", "customer", "deal", "owner")
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "priority",
        "territory",
        "product_line",
        "source",
        "team",
        "strategy",
        "is_active",
    )
    list_editable = ("priority", "is_active")
    list_filter = ("is_active", "strategy", "team")
    search_fields = ("name",)
    readonly_fields = ("last_assigned",)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "file_name",
        "kind",
        "status",
        "total_rows",
        "valid_rows",
        "imported_rows",
        "uploaded_by",
        "created_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("file_name", "uploaded_by__email")
    exclude = ("content",)
    readonly_fields = (
        "kind",
        "uploaded_by",
        "file_name",
        "header",
        "mapping",
        "status",
        "total_rows",
        "processed_rows",
        "valid_rows",
        "duplicate_rows",
        "errors",
        "imported_rows",
        "failure",
        "finished_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # imports start from the import page, which validates the file


@admin.register(WinModel)
class WinModelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "won", "lost", "computed_at")
    readonly_fields = ("won", "lost", "counts", "computed_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


admin.site.register(WebLeadKey, WebLeadKeyAdmin)

admin.site.empty_value_display = _("—")
