"""schemathesis fuzzes the whole REST API from the OpenAPI description the app serves, with a
member's read-write token: no 5xx, and every answer conforms to the description."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.services import api_token_create
from tests.permissions import make_user
from tests.sandbox.test_spec_schemathesis import schemathesis_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_api_conforms_to_its_own_description(
    live_server: Any, tmp_path: Path, make_dataset: Any
) -> None:
    token = api_token_create(user=make_user("member"), name="fuzz", scope="write")[1]
    auth = {"Authorization": f"Bearer {token}"}
    make_dataset(name="seed")
    # Real objects, so that not every request is a 404 on a random id.
    run = httpx.post(live_server.url + "/api/v1/runs", headers=auth,
                     json={"external_id": "seed", "name": "seed"}).json()  # fmt: skip
    httpx.post(live_server.url + f"/api/v1/runs/{run['id']}/metrics", headers=auth,
               json={"points": [{"step": 1, "values": {"loss": 1.0}}]})  # fmt: skip
    from dashboard.api.api import api

    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(api.get_openapi_schema()))
    result = schemathesis_run(spec, live_server.url, token, r"^/api/v1/", budget=16)
    report = result.stdout[-20000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "Tested: 20" in result.stdout and "passed" in result.stdout.lower(), report
