from django.urls import path

from dashboard import views, views_sweeps

urlpatterns = [
    path("", views.home, name="home"),
    path("compare/", views.compare, name="compare"),
    path("compare/figures.json", views.compare_figures_json, name="compare_figures"),
    path("compare/export.csv", views.compare_export_csv, name="compare_export_csv"),
    path("runs/<uuid:pk>/figures.json", views.run_figures_json, name="run_figures"),
    path("runs/<uuid:pk>/metrics.json", views.run_metrics_json, name="run_metrics"),
    path("runs/<uuid:pk>/export.csv", views.run_export_csv, name="run_export_csv"),
    path("runs/<uuid:pk>/export.json", views.run_export_json, name="run_export_json"),
    path("runs/columns/", views.run_list_columns, name="run_list_columns"),
    path("runs/<uuid:pk>/tags/", views.run_tags, name="run_tags"),
    path("runs/<uuid:pk>/notes/", views.run_notes, name="run_notes"),
    path("share-links/", views.share_link_list, name="share_links"),
    path("share-links/new/", views.share_link_create, name="share_link_create"),
    path(
        "evaluations/<int:pk>/share/",
        views.evaluation_share_create,
        name="evaluation_share_create",
    ),
    path("share-links/<int:pk>/revoke/", views.share_link_revoke, name="share_link_revoke"),
    path("share/<str:token>/", views.share_page, name="share_page"),
    path("share/<str:token>/metrics.json", views.share_metrics_json, name="share_metrics"),
    path("sweeps/", views_sweeps.sweep_list, name="sweeps"),
    path("sweeps/new/", views_sweeps.sweep_new, name="sweep_new"),
    path("sweeps/<int:pk>/", views_sweeps.sweep_detail, name="sweep_detail"),
    path("sweeps/<int:pk>/live.json", views_sweeps.sweep_live, name="sweep_live"),
    path("sweeps/<int:pk>/export.csv", views_sweeps.sweep_export_csv, name="sweep_export_csv"),
    path("sweeps/<int:pk>/cancel/", views_sweeps.sweep_cancel_view, name="sweep_cancel"),
    path("share/<str:token>/figures.json", views.share_figures_json, name="share_figures"),
]
