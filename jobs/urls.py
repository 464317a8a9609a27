from django.urls import path

from jobs import views, views_history, views_launch

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_new, name="new"),
    path("new/estimate/", views.launch_estimate, name="estimate"),
    path("new/quote/", views_launch.price_quote_ask, name="price_quote_ask"),
    path("new/quote/<int:pk>.json", views_launch.price_quote, name="price_quote"),
    path(
        "connections/<int:pk>/models/refresh/",
        views_launch.catalog_refresh,
        name="catalog_refresh",
    ),
    path("connections/", views.connection_list, name="connections"),
    path("connections/new/", views.connection_new, name="connection_new"),
    path("connections/<int:pk>/", views.connection_edit, name="connection_edit"),
    path("connections/<int:pk>/test/", views.connection_test, name="connection_test"),
    path(
        "connections/<int:pk>/history/",
        views_history.connection_detail,
        name="connection_detail",
    ),
    path("connections/<int:pk>/import/", views_history.connection_import, name="connection_import"),
    path(
        "connections/<int:pk>/archive/",
        views_history.connection_archive,
        name="connection_archive",
    ),
    path("connections/<int:pk>/export/", views_history.connection_export, name="connection_export"),
    path("imports/<int:pk>/status.json", views_history.import_status, name="import_status"),
    path("export/", views_history.runs_export, name="export"),
    path("bundles/import/", views_history.bundle_import, name="bundle_import"),
    path("audit/", views_history.audit_log, name="audit"),
    path("notifications/", views_history.notification_settings, name="notifications"),
    path("<uuid:pk>/", views.job_detail, name="detail"),
    path("<uuid:pk>/live.json", views.job_live, name="live"),
    path("<uuid:pk>/events/", views.job_events, name="events"),
    path("<uuid:pk>/sections.html", views.job_sections, name="sections"),
    path("<uuid:pk>/cancel/", views.job_cancel, name="cancel"),
    path("<uuid:pk>/pause/", views.job_pause, name="pause"),
    path("<uuid:pk>/resume/", views.job_resume, name="resume"),
    path("<uuid:pk>/sync/", views.job_sync, name="sync"),
    path("<uuid:pk>/delete-model/", views.job_delete_model, name="delete_model"),
    path("<uuid:pk>/archive/", views.job_archive, name="archive"),
    path("<uuid:pk>/guardrails/", views.job_guardrail_save, name="guardrail_save"),
    path("<uuid:pk>/stop/", views.job_stop, name="stop"),
    path("<uuid:pk>/unarchive/", views.job_unarchive, name="unarchive"),
    path("<uuid:pk>/edit/", views.job_edit, name="edit"),
]
