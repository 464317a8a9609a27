from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import views

urlpatterns = [
    path("", views.home, name="home"),
    path("compare/", views.compare, name="compare"),
    path("system/", views.system, name="system"),
    path("system/probe/", views.probe_create, name="probe_create"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("datasets/", include("datasets.urls")),
    path("jobs/", include("jobs.urls")),
    path("sandbox/", include("sandbox.urls")),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "Tuneboard administration"
admin.site.site_title = "Tuneboard admin"
