"""URLs of the pipeline, one module per area (each owned by its views module)."""

from leads import urls_api, urls_customers, urls_import, urls_leads, urls_sales

app_name = "leads"
urlpatterns = [
    *urls_leads.urlpatterns,
    *urls_customers.urlpatterns,
    *urls_sales.urlpatterns,
    *urls_import.urlpatterns,
    *urls_api.urlpatterns,
]
