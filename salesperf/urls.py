from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

admin.site.site_header = _("salesperf administration")
admin.site.site_title = _("salesperf admin")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("leads.urls")),
    path("", include("feedback.urls")),
    path("", include("goals.urls")),
    path("", include("reminders.urls")),
]
