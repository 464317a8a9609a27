"""The runs-list column choice in the admin: read, or reset to every column, never edited."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from dashboard import services
from dashboard.models import RunListPreference

pytestmark = pytest.mark.django_db


def test_admin_resets_a_users_columns_through_the_service() -> None:
    User = get_user_model()
    alice = User.objects.create_user("alice", password="unused")
    services.run_list_columns_set(user=alice, shown=["status", "cost"])
    preference = RunListPreference.objects.get(user=alice)
    assert "tags" in preference.hidden_columns

    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "unused"))
    changelist = reverse("admin:dashboard_runlistpreference_changelist")
    listed = admin.get(changelist)
    assert listed.status_code == 200 and "alice" in listed.content.decode()
    change = admin.get(reverse("admin:dashboard_runlistpreference_change", args=[preference.pk]))
    assert change.status_code == 200 and 'name="hidden_columns"' not in change.content.decode()
    assert admin.get(reverse("admin:dashboard_runlistpreference_add")).status_code == 403

    reset = admin.post(
        changelist, {"action": "reset_columns", "_selected_action": [str(preference.pk)]}
    )
    assert reset.status_code == 302
    preference.refresh_from_db()
    assert preference.hidden_columns == []
