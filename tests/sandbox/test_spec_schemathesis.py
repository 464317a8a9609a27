"""Property-based fuzzing of the sandbox from OpenAI's own OpenAPI description (schemathesis,
an external checker): no 5xx anywhere, and every 200 body conforms to the spec. Status-code
conformance is excluded because the spec declares only 200 responses."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.conftest import BASE_DIR
from tests.sandbox.data import chat_examples, jsonl

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SPEC = BASE_DIR.parent / "shared" / "openai-openapi" / "openapi.yaml"
# Time-boxed so that the whole suite stays within its 15 minutes on 2 cores.
BUDGET_SECONDS = 32


def schemathesis(url: str, key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return schemathesis_run(SPEC, url, key, r"^/(files|uploads|fine_tuning/jobs|models)", *extra)


def schemathesis_run(
    spec: Path, url: str, key: str, paths: str, *extra: str, budget: int = BUDGET_SECONDS
) -> subprocess.CompletedProcess[str]:
    """schemathesis over ``spec``'s paths matching ``paths``, served at ``url``.

    Run again (up to twice) when the checker itself hit CPython 3.11's "AST constructor recursion
    depth mismatch" SystemError while generating a request (an interpreter bug in the test
    tool, reported as a runtime error with no request sent for it): the server had no part."""
    result = _schemathesis_once(spec, url, key, paths, *extra, budget=budget)
    for _ in range(2):  # it has struck twice in a row
        if result.returncode == 0 or not _interpreter_bug_only(result.stdout):
            break
        result = _schemathesis_once(spec, url, key, paths, *extra, budget=budget)
    return result


def _interpreter_bug_only(report: str) -> bool:
    failures = ("Response violates", "Server error", "Undocumented", "failed")
    return "AST constructor recursion depth mismatch" in report and not any(
        word in report.split("SUMMARY")[-1] for word in failures
    )


# One worker: CPython 3.11's AST constructor keeps its recursion depth in state the threads
# share (gh-106905), so hypothesis parsing lambdas in two worker threads at once sometimes
# ends in "AST constructor recursion depth mismatch".
def _schemathesis_once(
    spec: Path, url: str, key: str, paths: str, *extra: str, budget: int
) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [
            str(executable), "run", str(spec), "--url", url,
            "--include-path-regex", paths,
            "--checks", "not_a_server_error,response_schema_conformance",
            "--header", f"Authorization: Bearer {key}",
            "--max-time", str(budget), "--workers", "1",
            "--phases", "examples,coverage,fuzzing", "--warnings", "off",
            "--generation-deterministic", "--no-color", *extra,
        ],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=budget + 120,
    )  # fmt: skip


@pytest.mark.skipif(not SPEC.exists(), reason=f"OpenAPI spec not found at {SPEC}")
def test_sandbox_conforms_to_the_openapi_spec(
    sandbox_url: str, sandbox_key: str, sdk: openai.OpenAI
) -> None:
    # Real objects to find, so that not every request is a 404 on a random id.
    file_id = sdk.files.create(
        file=("seed.jsonl", io.BytesIO(jsonl(chat_examples(12)))), purpose="fine-tune"
    ).id
    sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    result = schemathesis(sandbox_url, sandbox_key)
    report = result.stdout[-20000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "passed" in result.stdout.lower(), report
