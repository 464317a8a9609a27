"""Signed webhooks from providers, mounted at /webhooks/ (public: the signature protects them)."""

from django.urls import path

from jobs import views_history

urlpatterns = [
    path("<int:connection_id>/", views_history.webhook_receive, name="webhook"),
]
