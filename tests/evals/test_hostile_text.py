"""Lone surrogates (``"\\ud800"`` in a file or a pasted conversation) never reach a provider, a
database row or a page: the evaluation form skips those lines, the playground refuses them
with a message, and replies are shown safely whatever the provider sends. No 500 anywhere."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from datasets.models import Dataset
from evals.choices import base_choice
from evals.models import EvalExample, EvalOutput, Evaluation
from evals.services import EvaluationRequest, evaluation_create
from jobs.models import ProviderConnection
from jobs.services import connection_save
from tests.evals.test_run import EXACT, run_to_end
from tests.permissions import client_for
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "gpt-4o-mini-2024-07-18"
PLAYGROUND = "/evaluations/playground/"


def _content(examples: list[dict[str, Any]]) -> bytes:
    # json.dumps escapes a lone surrogate as "\ud800", as the hostile files do.
    return b"".join(json.dumps(e).encode() + b"\n" for e in examples)


def _hostile_examples() -> list[dict[str, Any]]:
    examples = chat_examples(12, seed=7)
    examples[2] = {"messages": [{"role": "user", "content": "bad \ud800 prompt"}, {"role": "assistant", "content": "ok"}]}  # fmt: skip
    examples[5] = {"messages": [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "bad \udc00 reference"}]}  # fmt: skip
    return examples


@pytest.fixture
def member() -> Client:
    return client_for("member")


@pytest.fixture
def hostile(make_dataset: Callable[..., Dataset]) -> Dataset:
    dataset = make_dataset(raw=_content(_hostile_examples()), name="hostile")
    assert dataset.status == Dataset.Status.INVALID  # lone_surrogate on lines 3 and 6
    return dataset


@pytest.fixture
def validated_before(hostile: Dataset) -> Dataset:
    """The same file as validated before lone surrogates were an error: still "valid"."""
    Dataset.objects.filter(pk=hostile.pk).update(status=Dataset.Status.VALID)
    hostile.refresh_from_db()
    return hostile


def test_the_evaluation_form_skips_lone_surrogate_lines(
    sandbox_connection: ProviderConnection, validated_before: Dataset, member: Client
) -> None:
    choice = base_choice(sandbox_connection, MODEL)
    data = {
        "dataset": validated_before.pk, "models": [choice.key], "temperature": "0",
        "exact_match": "on", "token_f1": "on", "judge_prompt": "", "judge_pairwise_prompt": "",
    }  # fmt: skip
    estimate = member.post("/evaluations/new/", {**data, "action": "estimate"})
    assert estimate.status_code == 200
    assert "10 examples" in estimate.content.decode()
    response = member.post("/evaluations/new/", {**data, "action": "start"})
    assert response.status_code == 302, response.content.decode()[:2000]
    evaluation = Evaluation.objects.get()
    assert evaluation.examples_skipped == 2 and evaluation.cells_total == 10
    lines = list(EvalExample.objects.filter(evaluation=evaluation).values_list("line_number", flat=True))  # fmt: skip
    assert 3 not in lines and 6 not in lines
    evaluation = run_to_end(evaluation)
    assert evaluation.status == Evaluation.Status.SUCCEEDED
    for url in (f"/evaluations/{evaluation.pk}/", f"/evaluations/{evaluation.pk}/export.csv"):
        assert member.get(url).status_code == 200, url


def test_the_playground_refuses_lone_surrogates_with_a_message(
    sandbox_connection: ProviderConnection, validated_before: Dataset, member: Client
) -> None:
    key = base_choice(sandbox_connection, MODEL).key
    # Picking the line from a dataset: a message on the picker, not a 500.
    response = member.get(PLAYGROUND, {"dataset": validated_before.pk, "line": 3})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Line 3 of “hostile”: Message 1 holds a lone surrogate (\\ud800) in content" in html
    assert "Loaded line" not in html
    assert member.get(PLAYGROUND, {"dataset": validated_before.pk, "line": 6}).status_code == 200
    assert "Loaded line 1" in member.get(PLAYGROUND, {"dataset": validated_before.pk, "line": 1}).content.decode()  # fmt: skip
    # Pasting it: a form error, and nothing is sent.
    for conversation in (
        json.dumps([{"role": "user", "content": "hi \ud800"}]),
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "\udfff"}]}),
        json.dumps([{"role": "user", "content": [{"type": "text", "text": "\ud800"}]}]),
        json.dumps([{"role": "user", "content": "q", "name": "\ud800"}]),
    ):  # fmt: skip
        response = member.post(
            PLAYGROUND, {"models": [key], "conversation": conversation, "temperature": "0"}
        )
        assert response.status_code == 400, conversation
        assert "holds a lone surrogate" in response.content.decode(), conversation
    response = member.post(
        PLAYGROUND, {"models": [key], "conversation": "hi", "system": "\\ud800", "temperature": "0"}
    )
    assert response.status_code == 200  # typed text: the six characters, not an escape
    # Saving a prompt posted back with one: a form error too.
    save = {
        "messages": json.dumps([{"role": "user", "content": "\ud800"}]), "replies": "[]",
        "source": "edited", "reference": "ok", "target": "new", "name": "x",
    }  # fmt: skip
    response = member.post(f"{PLAYGROUND}save/", save)
    assert response.status_code == 400
    assert "holds a lone surrogate" in response.content.decode()


class _HostileProvider:
    """A chat-completions endpoint whose replies escape a lone surrogate and a NUL, as any
    JSON may (the sandbox cannot: it echoes prompts, and Tuneboard never sends one)."""

    BODY = (
        b'{"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini", '
        b'"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", '
        b'"content": "text \\ud800 and \\u0000 here"}}], '
        b'"usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}'
    )

    def __init__(self) -> None:
        body = self.BODY

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile_connection() -> Iterator[ProviderConnection]:
    provider = _HostileProvider()
    try:
        yield connection_save(
            name="Hostile", kind="sandbox", base_url=provider.url, api_key="k" * 24
        )
    finally:
        provider.close()


def test_replies_holding_lone_surrogates_or_nul_are_stored_and_shown_safely(
    hostile_connection: ProviderConnection, make_dataset: Callable[..., Dataset], member: Client
) -> None:
    key = base_choice(hostile_connection, MODEL).key
    response = member.post(PLAYGROUND, {"models": [key], "conversation": "hi", "temperature": "0"})
    assert response.status_code == 200
    assert response.context["replies"][0].content == "text \ufffd and \ufffd here"
    assert "text \ufffd and \ufffd here" in response.content.decode()

    dataset = make_dataset(chat_examples(12, seed=3), name="plain")
    evaluation = evaluation_create(
        request=EvaluationRequest(name="e", dataset=dataset, model_keys=[key], graders=[EXACT]),
        user=None,
        enqueue=False,
    )
    evaluation = run_to_end(evaluation)
    assert evaluation.status == Evaluation.Status.SUCCEEDED and evaluation.cells_failed == 0
    contents = set(EvalOutput.objects.filter(evaluation=evaluation).values_list("content", flat=True))  # fmt: skip
    assert contents == {"text \ufffd and \ufffd here"}
    page = member.get(f"/evaluations/{evaluation.pk}/")
    assert page.status_code == 200
    assert page.content.decode().count("\ufffd") >= 2  # shown as a diff against the reference


def test_results_show_a_bounded_part_of_huge_prompts(
    hostile_connection: ProviderConnection, make_dataset: Callable[..., Dataset], member: Client
) -> None:
    examples = chat_examples(12, seed=4)
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    examples[0] = {"messages": turns * 1500}
    examples[1] = {"messages": [{"role": "user", "content": "word " * 400_000}, turns[1]]}
    dataset = make_dataset(examples, name="huge prompts")
    key = base_choice(hostile_connection, MODEL).key
    evaluation = evaluation_create(
        request=EvaluationRequest(name="e", dataset=dataset, model_keys=[key], graders=[EXACT]),
        user=None,
        enqueue=False,
    )
    assert run_to_end(evaluation).status == Evaluation.Status.SUCCEEDED
    page = member.get(f"/evaluations/{evaluation.pk}/")
    assert page.status_code == 200
    assert len(page.content) < 500_000, len(page.content)
    html = page.content.decode()
    assert "2,979 earlier messages not shown" in html
    assert "(1,996,000 more characters)" in html
