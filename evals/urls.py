from django.urls import path

from evals import views, views_playground

app_name = "evals"

urlpatterns = [
    path("", views.evaluation_list, name="list"),
    path("new/", views.evaluation_new, name="new"),
    path("<int:pk>/", views.evaluation_detail, name="detail"),
    path("<int:pk>/status.json", views.evaluation_status_json, name="status"),
    path("<int:pk>/export.csv", views.evaluation_export_csv, name="export_csv"),
    path("<int:pk>/cancel/", views.evaluation_cancel, name="cancel"),
    path("<int:pk>/rerun-failed/", views.evaluation_rerun_failed, name="rerun_failed"),
    path("<int:pk>/win-rate/", views.evaluation_win_grader, name="win_grader"),
    path("playground/", views_playground.playground, name="playground"),
    path("playground/save/", views_playground.playground_save, name="playground_save"),
]
