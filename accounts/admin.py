from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import ProductLine, Team, Territory, User


class UserCreateForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "display_name", "role", "team")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserCreateForm
    form = UserEditForm
    ordering = ("display_name",)
    list_display = ("display_name", "email", "role", "team", "is_active", "last_login")
    list_filter = ("role", "team", "is_active", "is_staff", "territories", "language")
    search_fields = ("display_name", "email", "team__name")
    list_select_related = ("team",)
    filter_horizontal = ("territories", "groups", "user_permissions")
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Person"), {"fields": ("display_name", "language", "time_zone")}),
        (_("Organisation"), {"fields": ("role", "team", "territories", "lead_capacity")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "display_name", "role", "team", "password1", "password2"),
            },
        ),
    )


class MemberInline(admin.TabularInline):
    model = User
    fk_name = "team"
    fields = ("display_name", "email", "role", "is_active")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = _("member")
    verbose_name_plural = _("members")

    def has_add_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "manager_names", "member_count", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "managers__display_name", "managers__email")
    filter_horizontal = ("managers",)
    inlines = [MemberInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(member_total=Count("members", distinct=True))
            .prefetch_related("managers")
        )

    @admin.display(description=_("managers"))
    def manager_names(self, team: Team) -> str:
        return ", ".join(str(manager) for manager in team.managers.all())

    @admin.display(description=_("members"), ordering="member_total")
    def member_count(self, team: Team) -> int:
        return team.member_total  # type: ignore[attr-defined]


@admin.register(Territory)
class TerritoryAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "rep_count", "is_active")
    ordering = ("name",)
    list_filter = ("is_active",)
    search_fields = ("name", "code", "description")
    prepopulated_fields = {"code": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Territory]:
        return super().get_queryset(request).annotate(rep_total=Count("reps"))

    @admin.display(description=_("reps"), ordering="rep_total")
    def rep_count(self, territory: Territory) -> int:
        return territory.rep_total  # type: ignore[attr-defined]


@admin.register(ProductLine)
class ProductLineAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "description")
