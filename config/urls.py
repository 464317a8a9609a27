from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("dashboard.urls")),
    path("", include("core.urls")),
    path("datasets/", include("datasets.urls")),
    path("jobs/", include("jobs.urls")),
    path("evaluations/", include("evals.urls")),
    path("sandbox/", include("sandbox.urls")),
    # Signed provider webhooks (jobs app): /webhooks/<connection id>/.
    path("webhooks/", include("jobs.urls_webhooks")),
    path("admin/", admin.site.urls),
]

# A database that went away mid-request answers 503, not 500 (core.middleware).
handler500 = "core.views.server_error"

admin.site.site_header = "Tuneboard administration"
admin.site.site_title = "Tuneboard admin"
