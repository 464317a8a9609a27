from __future__ import annotations

import re
from pathlib import Path

import plotly
import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from tests.conftest import BASE_DIR
from tests.permissions import client_for

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def test_plotly_js_comes_from_the_installed_package() -> None:
    found = finders.find("vendor/plotly.min.js")
    assert Path(found).resolve() == PLOTLY_JS.resolve()  # .venv may be a symlink


@pytest.mark.django_db
def test_collected_plotly_is_served_with_far_future_cache(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", "-v", "0")
    from django.templatetags.static import static

    url = static("vendor/plotly.min.js")
    assert re.fullmatch(r"/static/vendor/plotly\.min\.[0-9a-f]{12}\.js", url), url
    response = Client().get(url)  # public: static files need no login
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    assert "max-age=315360000" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body == PLOTLY_JS.read_bytes()


@pytest.mark.django_db
def test_pages_without_charts_do_not_load_plotly() -> None:
    page = client_for("viewer").get("/")
    assert page.status_code == 200
    assert b"plotly" not in page.content


def test_no_cdn_or_remote_assets_in_templates_and_static() -> None:
    remote = re.compile(rb"""(src|href)=["']?(https?:)?//""", re.IGNORECASE)
    offenders = []
    for folder in ("templates", "static"):
        for path in (BASE_DIR / folder).rglob("*"):
            is_asset = path.is_file() and path.suffix in {".html", ".js", ".css"}
            if is_asset and remote.search(path.read_bytes()):
                offenders.append(str(path.relative_to(BASE_DIR)))
    assert offenders == []
