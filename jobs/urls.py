from django.urls import path

from jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_new, name="new"),
    path("connections/", views.connection_list, name="connections"),
    path("connections/new/", views.connection_new, name="connection_new"),
    path("connections/<int:pk>/", views.connection_edit, name="connection_edit"),
    path("connections/<int:pk>/test/", views.connection_test, name="connection_test"),
    path("<uuid:pk>/", views.job_detail, name="detail"),
    path("<uuid:pk>/live.json", views.job_live, name="live"),
    path("<uuid:pk>/cancel/", views.job_cancel, name="cancel"),
    path("<uuid:pk>/pause/", views.job_pause, name="pause"),
    path("<uuid:pk>/resume/", views.job_resume, name="resume"),
    path("<uuid:pk>/sync/", views.job_sync, name="sync"),
    path("<uuid:pk>/delete-model/", views.job_delete_model, name="delete_model"),
    path("<uuid:pk>/archive/", views.job_archive, name="archive"),
    path("<uuid:pk>/unarchive/", views.job_unarchive, name="unarchive"),
    path("<uuid:pk>/edit/", views.job_edit, name="edit"),
]
