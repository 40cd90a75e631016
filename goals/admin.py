from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from goals.models import Award, DailyRepFact, ForecastSnapshot, Goal, GoalReview, GoalRevision


class GoalRevisionInline(admin.TabularInline):
    """Revisions are history: shown, never edited here (goals.services.goal_revise adds them)."""

    model = GoalRevision
    extra = 0
    can_delete = False
    fields = (
        "effective_from",
        "old_target",
        "new_target",
        "reason",
        "comment",
        "revised_by",
        "revised_at",
    )
    readonly_fields = fields
    ordering = ("effective_from", "revised_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "owner_kind",
        "metric",
        "period_kind",
        "start",
        "end",
        "target",
        "product_line",
        "territory",
    )
    list_filter = ("owner_kind", "metric", "period_kind", "product_line", "territory")
    search_fields = ("rep__display_name", "rep__email", "team__name")
    list_select_related = ("rep", "team", "product_line", "territory")
    autocomplete_fields = ("rep", "team", "product_line", "territory", "parent")
    readonly_fields = ("created_by", "created_at")
    date_hierarchy = "start"
    inlines = [GoalRevisionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Goal | None = None) -> list[str]:
        # A target changes only through a revision (goals.services.goal_revise), which
        # keeps the old target, the reason and the day it counts from.
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "target"] if obj is not None else readonly

    def save_model(self, request: HttpRequest, obj: Goal, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(GoalRevision)
class GoalRevisionAdmin(admin.ModelAdmin):
    list_display = (
        "goal",
        "effective_from",
        "old_target",
        "new_target",
        "reason",
        "revised_by",
        "revised_at",
    )
    list_filter = ("reason",)
    list_select_related = ("goal", "goal__rep", "goal__team", "revised_by")
    search_fields = ("goal__rep__display_name", "goal__team__name", "comment")
    date_hierarchy = "revised_at"

    # History: read-only here; the service records revisions with their old target.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DailyRepFact)
class DailyRepFactAdmin(admin.ModelAdmin):
    """Computed by the nightly job (goals.kpis): read-only."""

    list_display = (
        "day",
        "rep",
        "product_line",
        "territory",
        "revenue_won",
        "deals_won",
        "deals_lost",
        "leads_created",
        "leads_decided",
        "estimate_value_issued",
    )
    list_filter = ("product_line", "territory")
    list_select_related = ("rep", "product_line", "territory")
    search_fields = ("rep__display_name", "rep__email")
    date_hierarchy = "day"
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in DailyRepFact._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GoalReview)
class GoalReviewAdmin(admin.ModelAdmin):
    list_display = ("goal", "cause", "action_owner", "due_on", "status", "created_by", "created_at")
    list_filter = ("status", "cause")
    list_select_related = ("goal", "goal__rep", "goal__team", "action_owner", "created_by")
    search_fields = ("goal__rep__display_name", "goal__team__name", "corrective_action", "findings")
    autocomplete_fields = ("action_owner",)
    raw_id_fields = ("goal",)
    readonly_fields = ("created_by", "created_at", "done_at")
    date_hierarchy = "due_on"

    def save_model(self, request: HttpRequest, obj: GoalReview, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Award)
class AwardAdmin(admin.ModelAdmin):
    list_display = ("rep", "title", "kind", "value", "period_start", "period_end", "awarded_by")
    list_filter = ("kind",)
    list_select_related = ("rep", "awarded_by")
    search_fields = ("rep__display_name", "rep__email", "title", "reason")
    autocomplete_fields = ("rep",)
    readonly_fields = ("awarded_by", "awarded_at")
    date_hierarchy = "period_start"

    def save_model(self, request: HttpRequest, obj: Award, form: Any, change: bool) -> None:
        if not change:
            obj.awarded_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ForecastSnapshot)
class ForecastSnapshotAdmin(admin.ModelAdmin):
    """Frozen on the day taken (goals.forecast): a read-only list."""

    list_display = (
        "rep",
        "team",
        "period_kind",
        "period_start",
        "kind",
        "taken_on",
        "won_to_date",
        "weighted_pipeline",
        "forecast",
    )
    list_filter = ("period_kind", "kind")
    list_select_related = ("rep", "team")
    search_fields = ("rep__display_name", "rep__email")
    date_hierarchy = "period_start"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in ForecastSnapshot._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
