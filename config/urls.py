from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("dashboard.urls")),
    path("", include("core.urls")),
    path("datasets/", include("datasets.urls")),
    path("jobs/", include("jobs.urls")),
    path("evaluations/", include("evals.urls")),
    # Signed provider webhooks (jobs app): /webhooks/<connection id>/.
    path("webhooks/", include("jobs.urls_webhooks")),
    path("admin/", admin.site.urls),
    # REST API v1 (token auth): dashboard/api/.
    path("api/v1/", include("dashboard.api.urls")),
]
if settings.SANDBOX_ENABLED:
    # Its fault injection and its outgoing webhooks have no place on a production install.
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

# A database that went away mid-request answers 503, not 500 (core.middleware).
handler500 = "core.views.server_error"

admin.site.site_header = "Tuneboard administration"
admin.site.site_title = "Tuneboard admin"
