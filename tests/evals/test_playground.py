"""The playground over real HTTP: the sandbox's base model, checkpoints and fine-tuned model answer
side by side (the fine-tuned model recalls its trained replies word for word, the base model
does not), errors stay in their column or on the form, and saved prompts become real,
validated, immutable datasets."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import openai
import pytest
from django.test import Client
from django.urls import reverse

from datasets.models import Dataset
from evals.choices import base_choice, model_choices, run_choices
from evals.playground import playground_save
from jobs.connections import provider_for_connection
from jobs.models import Job
from jobs.services import connection_archive, connection_save
from tests.conftest import Sandbox
from tests.evals.conftest import Trained
from tests.jobs.conftest import validated
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for, outcome
from tests.sandbox.data import jsonl

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/evaluations/playground/"
SAVE = "/evaluations/playground/save/"
WIZARD = "Message 1 has the role &quot;wizard&quot;"
OPENERS = ("Thanks for your question about", "You asked about", "Here is a general answer to", "Regarding")  # fmt: skip


# --- helpers -------------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Every form on a page: the values a browser would submit (no JavaScript), the labels
    and the controls that need one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: dict[str, list[tuple[str, str]]] = {}
        self.controls: list[dict[str, str]] = []
        self.label_for: set[str] = set()
        self.label_depth = 0
        self.labelled_inside: set[int] = set()
        self._form: str | None = None
        self._textarea: tuple[str, list[str]] | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if tag == "form":
            self._form = attrs.get("id") or attrs.get("action") or ""
            self.forms[self._form] = []
        elif tag == "label":
            self.label_depth += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in ("input", "textarea", "select"):
            kind = attrs.get("type", tag)
            if kind not in ("hidden", "submit", "button"):
                self.controls.append({**attrs, "_tag": tag, "_in_label": str(self.label_depth)})
            name = attrs.get("name")
            if tag == "input" and name and self._form is not None:
                if kind in ("checkbox", "radio"):
                    if "checked" in attrs:
                        self.forms[self._form].append((name, attrs.get("value", "on")))
                elif kind not in ("submit", "button"):
                    self.forms[self._form].append((name, attrs.get("value", "")))
            elif tag == "textarea" and name:
                self._textarea = (name, [])
            elif tag == "select" and name:
                self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._options.append((attrs.get("value", ""), "selected" in attrs))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1
        elif tag == "textarea" and self._textarea is not None:
            name, parts = self._textarea
            text = "".join(parts)
            # Browsers drop the one newline Django puts after <textarea>.
            self.forms[self._form or ""].append((name, text.removeprefix("\n")))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            for value in chosen:
                self.forms[self._form or ""].append((self._select, value))
            self._select = None
        elif tag == "form":
            self._form = None


def parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def form_data(html: str, form_id: str) -> dict[str, Any]:
    """The values of a form as a browser would send them (lists for repeated names)."""
    data: dict[str, Any] = {}
    for name, value in parse(html).forms[form_id]:
        if name in data:
            data[name] = (
                [*data[name], value] if isinstance(data[name], list) else [data[name], value]
            )
        else:
            data[name] = value
    data.pop("csrfmiddlewaretoken", None)
    return data


def ask(client: Client, keys: list[str], conversation: str, **extra: Any):  # type: ignore[no-untyped-def]
    data = {"models": keys, "conversation": conversation, "temperature": "0", **extra}
    return client.post(PAGE, data)


def line(messages: list[dict]) -> str:
    return json.dumps({"messages": messages})


def column_html(html: str, index: int) -> str:
    match = re.search(
        rf'<article[^>]*aria-labelledby="reply-{index}-title">(.*?)</article>', html, re.S
    )
    assert match, f"no column {index}"
    return match.group(1)


@pytest.fixture
def member() -> Client:
    return client_for("member")


# --- access ------------------------------------------------------------------------------------


def test_permission_matrix(trained: Trained, member: Client) -> None:
    base = run_choices(trained.job)[0]
    question = {"models": [base.key], "conversation": "Hello there", "temperature": "0"}
    page = {"anonymous": LOGIN, SHARE: LOGIN, "norole": 403, "viewer": 403, "member": 200, "staff": 200}  # fmt: skip
    assert_matrix(PAGE, page)
    assert_matrix(f"{PAGE}?dataset={trained.dataset.pk}&line=1", page)
    assert_matrix(PAGE, page, method="post", data=question)
    saved = form_data(ask(member, [base.key], "Hello there").content.decode(), "save-form")
    saving = {**page, "member": 302, "staff": 302}
    assert_matrix(SAVE, saving, method="post", data=saved)
    # Only members and admins saved anything; the second save found the first one's content.
    assert Dataset.objects.filter(derivation__kind="playground").count() == 1
    assert_matrix(SAVE, {**page, "member": 405, "staff": 405})  # GET: nothing to show

    # A share link opens its run, never the playground.
    response = member.post("/share-links/new/", {"job": str(trained.job.pk)})
    assert response.status_code == 302
    token = re.search(
        r"/share/([A-Za-z0-9_-]+)/", member.get("/share-links/").content.decode()
    ).group(1)
    visitor = client_for(SHARE)
    assert visitor.get(f"/share/{token}/").status_code == 200
    for url in (PAGE, f"{PAGE}?token={token}", SAVE):
        assert outcome(visitor.get(url)) == LOGIN
    assert outcome(visitor.post(PAGE, question)) == LOGIN
    assert outcome(visitor.post(SAVE, saved)) == LOGIN


def test_the_page_is_accessible(trained: Trained, member: Client) -> None:
    choices = run_choices(trained.job)
    html = ask(member, [choices[0].key, choices[-1].key], "Hi").content.decode()
    assert "<main" in html and "<title>Playground · Tuneboard</title>" in html
    page = parse(html)
    assert page.controls, "the page has form fields"
    for control in page.controls:
        labelled = control.get("id") in page.label_for or control["_in_label"] != "0"
        assert labelled, f"no label for {control}"
    assert '<script src="/static/js/playground.js" defer></script>' in html
    assert "<script>" not in html  # no inline scripts
    # The empty page too: every model grouped by connection, nothing chosen.
    html = member.get(PAGE).content.decode()
    assert "Sandbox: base models" in html and "Sandbox: checkpoints" in html
    assert all(c.get("id") in parse(html).label_for or c["_in_label"] != "0" for c in parse(html).controls)  # fmt: skip


# --- asking ------------------------------------------------------------------------------------


def test_a_trained_prompt_side_by_side(trained: Trained, member: Client) -> None:
    base, *checkpoints, final = run_choices(trained.job)
    example = trained.examples[0]["messages"]
    trained_reply = example[-1]["content"]
    response = ask(member, [base.key, checkpoints[-1].key, final.key], line(example))
    assert response.status_code == 200
    replies = response.context["replies"]
    assert [r.label for r in replies] == [base.label, checkpoints[-1].label, final.label]
    assert all(r.ok for r in replies), [r.error for r in replies]
    by_kind = dict(zip(["base", "checkpoint", "final"], replies, strict=True))

    # The fine-tuned model recalls the trained reply exactly; the base model answers generically.
    assert by_kind["final"].content == trained_reply
    assert by_kind["base"].content != trained_reply
    assert by_kind["base"].content.startswith(OPENERS)
    assert "Tell me one fact about bicycles (#0)" in by_kind["base"].content

    html = response.content.decode()
    for index, reply in enumerate(replies):
        column = column_html(html, index)
        assert reply.label in column
        assert f"<dd>{reply.prompt_tokens}</dd>" in column
        assert f"<dd>{reply.completion_tokens}</dd>" in column
        assert f"<dd>{reply.latency_ms} ms</dd>" in column
        assert "<dd>stop</dd>" in column
        assert reply.prompt_tokens and reply.prompt_tokens > 0 and reply.completion_tokens > 0
        assert reply.latency_ms is not None and reply.latency_ms >= 0
    assert f'id="reference-text-2">{trained_reply}</div>' in html
    # Same prompt, same tokenizer: every column counts the prompt alike.
    assert len({r.prompt_tokens for r in replies}) == 1

    # The pasted line ended with the assistant reply: it was taken out of the prompt and is
    # offered as the reference.
    save = form_data(html, "save-form")
    assert json.loads(save["messages"]) == example[:-1]
    assert save["pasted_reference"] == trained_reply == save["reference"]
    assert save["source"] == "pasted"
    assert "Reference from the pasted conversation" in html


def test_plain_text_is_one_user_message(trained: Trained, member: Client) -> None:
    base = run_choices(trained.job)[0]
    text = "What makes a good kite?\n\n  Keep it short."
    response = ask(member, [base.key], text)
    (reply,) = response.context["replies"]
    assert reply.ok and reply.content.startswith(OPENERS)
    assert "What makes a good kite? Keep it short" in reply.content
    save = form_data(response.content.decode(), "save-form")
    assert json.loads(save["messages"]) == [{"role": "user", "content": text}]
    # No pasted reference: the first reply is the default one.
    assert save["source"] == "0" and save["reference"] == reply.content
    assert "Reference from the pasted conversation" not in response.content.decode()

    # The system field goes first (or replaces the conversation's own system message).
    response = ask(member, [base.key], text, system="Answer like a pirate.")
    save = form_data(response.content.decode(), "save-form")
    assert json.loads(save["messages"]) == [
        {"role": "system", "content": "Answer like a pirate."},
        {"role": "user", "content": text},
    ]
    final = run_choices(trained.job)[-1]
    example = trained.examples[1]["messages"]
    response = ask(member, [final.key], line(example), system="Something else entirely.")
    save = form_data(response.content.decode(), "save-form")
    assert json.loads(save["messages"])[0] == {"role": "system", "content": "Something else entirely."}  # fmt: skip
    assert len(json.loads(save["messages"])) == 2


def test_temperature_seed_and_max_tokens_reach_the_provider(
    trained: Trained, member: Client
) -> None:
    final = run_choices(trained.job)[-1]
    example = trained.examples[2]["messages"][:-1]
    one = ask(member, [final.key], line(example), temperature="1.5", seed="42")
    two = ask(member, [final.key], line(example), temperature="1.5", seed="42")
    assert one.context["replies"][0].content == two.context["replies"][0].content
    cut = ask(member, [final.key], line(example), max_tokens="2").context["replies"][0]
    assert cut.finish_reason == "length" and cut.completion_tokens == 2
    assert "<dd>length</dd>" in column_html(ask(member, [final.key], line(example), max_tokens="2").content.decode(), 0)  # fmt: skip


def test_prefill_from_a_dataset_line(trained: Trained, member: Client) -> None:
    example = trained.examples[2]["messages"]
    response = member.get(PAGE, {"dataset": trained.dataset.pk, "line": 3})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Loaded line 3 of" in html and "will be offered as the reference" in html
    conversation = form_data(html, "playground-form")["conversation"]
    assert json.loads(conversation) == {"messages": example}
    picker = form_data(html, f"{PAGE}")
    assert picker == {"dataset": str(trained.dataset.pk), "line": "3"}

    # Asking with it: the fine-tuned model gives the line's reply, which is the reference.
    final = run_choices(trained.job)[-1]
    response = ask(member, [final.key], conversation)
    assert response.context["replies"][0].content == example[-1]["content"]
    assert form_data(response.content.decode(), "save-form")["reference"] == example[-1]["content"]

    # Lines that cannot be used, and datasets that are not valid chat datasets: messages.
    broken = Dataset.objects.create(
        name="broken", file="nowhere.jsonl", size=1, sha256="0" * 64, line_count=1,
        status="invalid", format="chat",
    )  # fmt: skip
    for params, message in (
        ({"dataset": trained.dataset.pk, "line": 99}, "choose a line from 1 to 12"),
        ({"dataset": trained.dataset.pk, "line": 0}, "greater than or equal to 1"),
        ({"dataset": trained.dataset.pk, "line": "x"}, "Enter a whole number"),
        ({"dataset": broken.pk, "line": 1}, "Select a valid choice"),
        ({"dataset": 999999, "line": 1}, "Select a valid choice"),
        ({"dataset": "<b>", "line": 1}, "Select a valid choice"),
    ):
        response = member.get(PAGE, params)
        assert response.status_code == 200, params
        assert message in response.content.decode(), params
        assert "Loaded line" not in response.content.decode()


def test_a_blank_line_is_a_message(trained: Trained, member: Client, make_dataset) -> None:  # type: ignore[no-untyped-def]
    examples = trained.examples
    dataset = make_dataset(raw=jsonl(examples[:5]) + b"\n" + jsonl(examples[5:]), name="gappy")
    assert dataset.status == "valid" and dataset.line_count == 13
    html = member.get(PAGE, {"dataset": dataset.pk, "line": 6}).content.decode()
    assert "Line 6 of “gappy” is blank." in html and "Loaded line" not in html
    html = member.get(PAGE, {"dataset": dataset.pk, "line": 7}).content.decode()
    conversation = form_data(html, "playground-form")["conversation"]
    assert json.loads(conversation) == examples[5]


def test_bad_input_is_a_form_error_not_a_500(
    trained: Trained, member: Client, sandbox_url: str, other_sandbox_key: str
) -> None:
    base = run_choices(trained.job)[0]
    user = {"role": "user", "content": "hi"}
    cases = [
        ('{"messages": [', "is not valid: Expecting value"),
        ("[1, 2", "is not valid"),
        ('{"a": 1}\n{"b": 2}', "Paste one conversation"),
        (
            '{"messages": [{"role": "wizard", "content": "x"}]}',
            "Message 1 has the role &quot;wizard&quot;",
        ),
        ('[{"content": "x"}]', "has the role missing"),
        ('[{"role": "user", "content": 5}]', "must be text or a list of parts"),
        ('[{"role": "user"}]', "has no content"),
        ("[]", "The conversation has no messages."),
        ('{"messages": {"role": "user"}}', "“messages” must be a list"),
        ('"just a string"', None),  # JSON only when it starts with [ or {: this is text
        ('[{"role": "system", "content": "only rules"}]', "at least one user message"),
        (
            '[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}][0]',
            "is not valid",
        ),
        ("42", None),
        ("   \n  ", "Type or paste a conversation."),
        (line([user] * 101), "has 101 messages; the playground takes at most 100"),
        ("x" * (200 * 1024 + 1), "the playground takes at most 200 KB"),
    ]
    for conversation, message in cases:
        response = ask(member, [base.key], conversation)
        html = response.content.decode()
        if message is None:  # plain text
            assert response.status_code == 200, conversation
            assert response.context["replies"][0].ok
            continue
        assert response.status_code == 400, (conversation[:80], html[:300])
        assert message in html, (conversation[:80], message)
        assert "Nothing was sent" in html and "pg-reply" not in html
    # 100 messages are fine.
    assert ask(member, [base.key], line([user] * 100)).status_code == 200

    # Models: none, five, unknown keys, a connection that was archived since.
    five = [c.key for c in model_choices()[:5]]
    assert len(five) == 5
    for keys, message in (
        ([], "Choose at least one model."),
        (five, "Choose at most 4 models (5 were chosen)."),
        (["base:999999:gpt-4o-mini"], "Not available any more"),
        (["ft:not-a-uuid"], "Not available any more"),
        (["ckpt:123456"], "Not available any more"),
        (["ckpt:99999999999999999999999"], "Not available any more"),
        ([f"base:{10**25}:gpt-4o-mini"], "Not available any more"),
        ([f"ft:{trained.job.pk}x"], "Not available any more"),
        (["<script>alert(1)</script>"], "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ):
        response = ask(member, keys, "Hello")
        assert response.status_code == 400, keys
        assert message in response.content.decode(), keys
    other = connection_save(name="Other org", kind="sandbox", base_url=sandbox_url, api_key=other_sandbox_key)  # fmt: skip
    other_base = base_choice(other, "gpt-4o-mini-2024-07-18")
    assert ask(member, [other_base.key], "Hello").status_code == 200
    connection_archive(connection=other)
    response = ask(member, [base.key, other_base.key], "Hello")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not available any more" in html and other_base.key in html
    assert "Other org" not in html  # gone from the choices too
    # Temperature and the numbers.
    for extra, message in (
        ({"temperature": "2.5"}, "less than or equal to 2"),
        ({"temperature": "-1"}, "greater than or equal to 0"),
        ({"temperature": "hot"}, "Enter a number"),
        ({"max_tokens": "0"}, "greater than or equal to 1"),
        ({"seed": "1.5"}, "Enter a whole number"),
    ):
        response = ask(member, [base.key], "Hello", **extra)
        assert response.status_code == 400 and message in response.content.decode(), extra


def test_a_provider_error_shows_in_its_column_only(
    trained: Trained, member: Client, sdk: openai.OpenAI
) -> None:
    base, *checkpoints, final = run_choices(trained.job)
    # Deleted at the provider behind Tuneboard's back: Tuneboard still offers it, and the
    # provider answers 404 for it alone.
    sdk.models.delete(trained.job.fine_tuned_model)
    example = trained.examples[0]["messages"]
    response = ask(member, [base.key, checkpoints[0].key, final.key], line(example))
    assert response.status_code == 200
    base_reply, checkpoint_reply, final_reply = response.context["replies"]
    assert base_reply.ok and checkpoint_reply.ok and base_reply.content and checkpoint_reply.content
    assert not final_reply.ok and final_reply.content is None
    assert "does not exist" in final_reply.error and "HTTP 404" in final_reply.error
    html = response.content.decode()
    assert "does not exist" in column_html(html, 2) and "No reply:" in column_html(html, 2)
    for index in (0, 1):
        assert "No reply:" not in column_html(html, index)
        assert "ms</dd>" in column_html(html, index)
    # The failed column is not offered as a reference; the others are.
    radios = re.findall(r'name="source" value="([^"]+)"', html)
    assert radios == ["0", "1", "pasted", "edited"]


def test_a_column_error_from_injected_faults(
    trained: Trained, member: Client, sandbox_url: str, other_sandbox_key: str, settings
) -> None:  # type: ignore[no-untyped-def]
    """A second organisation whose every request fails (sandbox fault injection): its column
    shows the error, the first organisation's column its reply."""
    other = connection_save(name="Flaky org", kind="sandbox", base_url=sandbox_url, api_key=other_sandbox_key)  # fmt: skip
    settings.PROVIDER_MAX_RETRIES = 0  # the fault never clears: no point waiting for it
    Sandbox(sandbox_url, other_sandbox_key).control(
        "faults", {"kinds": ["503"], "path": "chat/completions"}
    )
    base = run_choices(trained.job)[0]
    response = ask(member, [base.key, base_choice(other, "gpt-4o-mini-2024-07-18").key], "Hello")
    ours, theirs = response.context["replies"]
    assert ours.ok and ours.content
    assert not theirs.ok and "503" in theirs.error


def test_a_held_provider_fails_its_column_within_the_interactive_budget(
    trained: Trained, member: Client, sandbox_url: str, other_sandbox_key: str, settings
) -> None:  # type: ignore[no-untyped-def]
    """A provider that holds every answer: its column says so once the page's budget is spent
    (one attempt, the budget's timeouts on the httpx client), the other column has its reply."""
    settings.PROVIDER_INTERACTIVE_TIMEOUT = 1
    held = connection_save(name="Held org", kind="sandbox", base_url=sandbox_url, api_key=other_sandbox_key)  # fmt: skip
    Sandbox(sandbox_url, other_sandbox_key).control(
        "faults", {"kinds": ["hang"], "hang_seconds": 2, "path": "chat/completions"}
    )
    base = run_choices(trained.job)[0]
    response = ask(member, [base.key, base_choice(held, "gpt-4o-mini-2024-07-18").key], "Hello")
    ours, theirs = response.context["replies"]
    assert ours.ok and ours.content
    # Ended on our side as a timeout, not with the 504 the sandbox sends when it lets go.
    assert not theirs.ok and "Timed out waiting for" in theirs.error
    assert "held this request" not in theirs.error
    faults = Sandbox(sandbox_url, other_sandbox_key).control("faults", method="GET")["data"]
    assert faults[0]["injected"] == 1  # no retry
    used = provider_for_connection(held, interactive=True)
    assert used.config.max_retries == 0
    assert used.http_client.timeout.connect + used.http_client.timeout.read <= 1


# --- saving ------------------------------------------------------------------------------------


def errors(dataset: Dataset) -> set[str]:
    return {g["code"] for g in dataset.report["findings"] if g["severity"] == "error"}


def test_saving_appending_and_saving_again(trained: Trained, member: Client) -> None:
    base, *_, final = run_choices(trained.job)
    first, second = (trained.examples[i]["messages"] for i in (0, 1))
    # Ask with the prompt only: the default reference is the first column's reply; choose the
    # fine-tuned model's column (its reply is the trained one).
    html = ask(member, [base.key, final.key], line(first[:-1])).content.decode()
    data = {**form_data(html, "save-form"), "source": "1"}
    assert data["target"] == "new" and data["name"] == "Playground prompts"
    response = member.post(SAVE, data, follow=True)
    created = Dataset.objects.get(derivation__kind="playground")
    assert response.redirect_chain == [(reverse("datasets:detail", args=[created.pk]), 302)]
    assert "Saved the prompt as “Playground prompts”" in response.content.decode()
    expected = (json.dumps({"messages": first}) + "\n").encode()
    with created.file.open("rb") as fh:
        assert fh.read() == expected
    assert created.derivation == {"kind": "playground", "appended": 1}
    assert created.parent is None and created.name == "Playground prompts"
    assert created.line_count == 1 and created.uploaded_by.username == "member-user"
    validated(created)
    created.refresh_from_db()
    # Validated as a chat dataset. Too short for OpenAI (fewer than 10 examples) is its only
    # error there; Together takes a single example, so the dataset is usable (there only).
    assert (created.format, created.n_examples, created.status) == ("chat", 1, "valid")
    assert created.validity["openai"]["valid"] is False
    assert created.validity["together"]["valid"] is True
    assert errors(created) == {"too_few_examples"}

    # Append a second prompt with an edited reference: a new version; the first is unchanged.
    html = ask(member, [base.key], line(second[:-1])).content.decode()
    assert f'value="{created.pk}">Append to “Playground prompts” (#{created.pk}, 1 lines)' in html
    data = {
        **form_data(html, "save-form"),
        "source": "edited",
        "reference": "My own  answer,\nkept as typed.",
        "target": str(created.pk),
    }
    response = member.post(SAVE, data)
    child = Dataset.objects.get(parent=created)
    assert response.status_code == 302 and response["Location"] == f"/datasets/{child.pk}/"
    edited = [*second[:-1], {"role": "assistant", "content": "My own  answer,\nkept as typed."}]
    with child.file.open("rb") as fh:
        assert fh.read() == expected + (json.dumps({"messages": edited}) + "\n").encode()
    assert child.derivation == {"kind": "playground", "appended": 1}
    assert child.name == "Playground prompts" and child.line_count == 2
    with created.file.open("rb") as fh:
        assert fh.read() == expected
    validated(child)
    child.refresh_from_db()
    assert (child.format, child.n_examples, errors(child)) == ("chat", 2, {"too_few_examples"})
    # Only the newest version is offered for appending now.
    html = ask(member, [base.key], "Anything").content.decode()
    assert f'value="{child.pk}">Append to' in html and f'value="{created.pk}">Append' not in html

    # The same content again: nothing new, a link to the dataset that holds it.
    before = Dataset.objects.count()
    html = ask(member, [base.key, final.key], line(first[:-1])).content.decode()
    response = member.post(SAVE, {**form_data(html, "save-form"), "source": "1"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/datasets/{created.pk}/"
    assert "already saved as “Playground prompts”" in response.content.decode()
    response = member.post(SAVE, data, follow=True)
    assert response.redirect_chain[-1][0] == f"/datasets/{child.pk}/"
    assert Dataset.objects.count() == before

    # A name for a new dataset, and the pasted reference.
    html = ask(member, [base.key], line(second)).content.decode()
    data = {**form_data(html, "save-form"), "name": "Pirate checks"}
    assert data["source"] == "pasted"
    response = member.post(SAVE, data)
    named = Dataset.objects.get(name="Pirate checks")
    with named.file.open("rb") as fh:
        assert fh.read() == (json.dumps({"messages": second}) + "\n").encode()

    # Ten prompts later the test dataset is valid, ready for an evaluation.
    head = child
    for example in trained.examples[2:10]:
        head = playground_save(
            messages=example["messages"][:-1],
            reference=example["messages"][-1]["content"],
            user=None,
            append_to=head,
        ).dataset
    assert head.line_count == 10 and head.parent.parent.parent.line_count == 7
    validated(head)
    head.refresh_from_db()
    assert (head.status, head.format, head.n_examples) == ("valid", "chat", 10)


def test_save_errors_keep_the_page(trained: Trained, member: Client, make_dataset) -> None:  # type: ignore[no-untyped-def]
    base = run_choices(trained.job)[0]
    html = ask(member, [base.key], "Hello there").content.decode()
    data = form_data(html, "save-form")
    # An empty reference; a target that the playground did not make; lost hidden fields.
    other = make_dataset(name="uploaded")
    for change, message in (
        ({"source": "edited", "reference": "  "}, "The reference is empty"),
        ({"target": str(other.pk)}, "Choose a dataset made by the playground."),
        ({"target": "nope"}, "Select a valid choice"),
        ({"source": "7"}, "Select a valid choice"),
        ({"messages": "{not json"}, "were lost on the way"),
        ({"messages": json.dumps([{"role": "wizard", "content": "x"}])}, "has the role"),
        ({"replies": "[broken"}, "were lost on the way"),
    ):
        response = member.post(SAVE, {**data, **change})
        page = response.content.decode()
        assert response.status_code == 400, change
        assert message in page, change
        assert "Save to test dataset" in page
    # The replies are still shown with the errors.
    response = member.post(SAVE, {**data, "source": "edited", "reference": ""})
    assert column_html(response.content.decode(), 0).count("ms</dd>") == 1
    assert not Dataset.objects.filter(derivation__kind="playground").exists()


# --- escaping ----------------------------------------------------------------------------------


def test_user_content_is_escaped(trained: Trained, member: Client) -> None:
    attack = "<script>alert('x')</script>"
    Job.objects.filter(pk=trained.job.pk).update(name=f"run {attack}")
    base, *_, final = run_choices(Job.objects.get(pk=trained.job.pk))
    response = ask(member, [base.key, final.key], f"{attack} what is this", system=attack)
    html = response.content.decode()
    assert response.status_code == 200
    assert attack in response.context["replies"][0].content  # the base model echoes the topic
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    # Also in what goes back to the save view, and on the page it shows after an error.
    response = member.post(SAVE, {**form_data(html, "save-form"), "target": "x y"})
    assert response.status_code == 400 and "<script>alert" not in response.content.decode()
    # And a bad-JSON message quoting the input.
    response = ask(member, [base.key], '[{"role": "<script>alert(1)</script>", "content": "x"}]')
    assert "<script>alert(1)" not in response.content.decode()
