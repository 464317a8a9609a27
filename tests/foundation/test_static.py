from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path
from typing import Any

import brotli
import plotly
import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from tests.conftest import BASE_DIR, PRODUCTION_STATIC_STORAGE
from tests.permissions import client_for

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def test_plotly_js_comes_from_the_installed_package() -> None:
    found = finders.find("vendor/plotly.min.js")
    assert Path(found).resolve() == PLOTLY_JS.resolve()  # .venv may be a symlink


def test_production_collects_with_the_compressing_storage() -> None:
    import config.settings as project

    assert not project.DEBUG  # the suite runs the production configuration
    assert project.STORAGES["staticfiles"] == PRODUCTION_STATIC_STORAGE


def plotly_url() -> str:
    from django.templatetags.static import static

    return static("vendor/plotly.min.js")


@pytest.mark.django_db
def test_collected_plotly_has_a_hashed_name_cached_for_good(production_static: Path) -> None:
    url = plotly_url()
    assert re.fullmatch(r"/static/vendor/plotly\.min\.[0-9a-f]{12}\.js", url), url
    response = Client().get(url)  # public: static files need no login
    assert response.status_code == 200
    # Ten years, and never revalidated: the name changes whenever the content does.
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert "Content-Encoding" not in response  # asked for nothing else
    assert b"".join(response.streaming_content) == PLOTLY_JS.read_bytes()


@pytest.mark.django_db
def test_plotly_is_sent_compressed_when_the_browser_accepts_it(production_static: Path) -> None:
    original = PLOTLY_JS.read_bytes()
    client = Client()
    sent = {}
    for accepted, expected in (("gzip, deflate", "gzip"), ("gzip, deflate, br, zstd", "br")):
        response = client.get(plotly_url(), headers={"Accept-Encoding": accepted})
        assert response.status_code == 200
        assert response["Content-Encoding"] == expected, accepted
        assert response["Vary"] == "Accept-Encoding"  # caches keep one copy per encoding
        assert "immutable" in response["Cache-Control"]
        body = b"".join(response.streaming_content)
        assert int(response["Content-Length"]) == len(body)
        decompress = gzip.decompress if expected == "gzip" else brotli.decompress
        assert decompress(body) == original
        sent[expected] = len(body)
    assert sent["br"] < sent["gzip"] < 0.35 * len(original), sent


def test_collectstatic_compresses_only_what_changed(
    collected_static: Path, tmp_path: Path, settings: Any
) -> None:
    root = tmp_path / "static"
    shutil.copytree(collected_static, root)
    manifest = json.loads((root / "staticfiles.json").read_text())["paths"]

    def copy(name: str, suffix: str) -> Path:
        source = root / manifest[name]
        return source.with_name(source.name + suffix)

    def content(name: str) -> bytes:
        return (root / manifest[name]).read_bytes()

    # Current copies, packed differently from WhiteNoise's own (other compression levels): a
    # copy made again would have WhiteNoise's bytes instead.
    plotly_br = brotli.compress(content("vendor/plotly.min.js"), quality=1)
    copy("vendor/plotly.min.js", ".br").write_bytes(plotly_br)
    nav_gz = gzip.compress(content("js/nav.js"), compresslevel=1)
    copy("js/nav.js", ".gz").write_bytes(nav_gz)
    # Cut short (a start interrupted while writing it), of an older version, missing.
    cut = copy("js/charts_common.js", ".gz")
    cut.write_bytes(cut.read_bytes()[:20])
    old = copy("js/run_charts.js", ".br")
    old.write_bytes(brotli.compress(b"an older run_charts.js"))
    missing = copy("js/compare_page.js", ".gz")
    missing.unlink()

    settings.STATIC_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "staticfiles": PRODUCTION_STATIC_STORAGE}
    call_command("collectstatic", "--noinput", "-v", "0")

    assert copy("vendor/plotly.min.js", ".br").read_bytes() == plotly_br
    assert copy("js/nav.js", ".gz").read_bytes() == nav_gz
    assert gzip.decompress(cut.read_bytes()) == content("js/charts_common.js")
    assert brotli.decompress(old.read_bytes()) == content("js/run_charts.js")
    assert gzip.decompress(missing.read_bytes()) == content("js/compare_page.js")
    # Each has its source's time (WhiteNoise's ETags come from it), to WhiteNoise's precision.
    for name, suffix in (("vendor/plotly.min.js", ".br"), ("js/charts_common.js", ".gz")):
        made = (root / manifest[name]).stat().st_mtime
        assert copy(name, suffix).stat().st_mtime == pytest.approx(made, abs=1e-3)


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


def test_the_api_docs_assets_are_collected_and_nothing_no_page_loads(
    production_static: Path,
) -> None:
    names = sorted(p.name for p in (production_static / "ninja").iterdir())
    assert any(re.fullmatch(r"swagger-ui-bundle\.[0-9a-f]{12}\.js", n) for n in names), names
    assert not [n for n in names if n.startswith("redoc") or n.endswith(".js.map")], names
