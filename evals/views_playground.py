"""The playground page: ask up to four models the same conversation and compare their replies
side by side; save the prompt with a reference into a test dataset. Members only: every
question costs money."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.permissions import member_required
from evals import playground as pg
from evals.forms_playground import ExamplePickerForm, PlaygroundForm, SaveForm
from evals.playground import Conversation, PlaygroundError, Reply

TEMPLATE = "evals/playground.html"


def _page(
    request: HttpRequest,
    form: PlaygroundForm,
    *,
    picker: ExamplePickerForm | None = None,
    replies: list[Reply] | None = None,
    save_form: SaveForm | None = None,
    pasted_reference: str | None = None,
    example: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "picker": picker or ExamplePickerForm(),
        "replies": replies or [],
        "save_form": save_form,
        "pasted_reference": pasted_reference,
        "example": example,
        "max_models": pg.MAX_MODELS,
    }
    return render(request, TEMPLATE, context, status=status)


def _save_form(conversation: Conversation, replies: list[Reply]) -> SaveForm:
    answered = [str(i) for i, r in enumerate(replies) if r.content]
    if conversation.reference:
        source, text = SaveForm.PASTED, conversation.reference
    elif answered:
        source, text = answered[0], replies[int(answered[0])].content or ""
    else:
        source, text = SaveForm.EDITED, ""
    initial = {
        "messages": json.dumps(conversation.messages, ensure_ascii=False),
        "replies": json.dumps([r.to_json() for r in replies], ensure_ascii=False),
        "pasted_reference": conversation.reference or "",
        "source": source,
        "reference": text,
        "target": SaveForm.NEW,
        "name": pg.DEFAULT_DATASET_NAME,
    }
    return SaveForm(initial=initial, replies=replies)


@member_required
@require_http_methods(["GET", "POST"])
def playground(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PlaygroundForm(request.POST)
        if not form.is_valid():
            return _page(request, form, status=400)
        data = form.cleaned_data
        conversation = form.conversation
        assert conversation is not None
        replies = pg.playground_ask(
            choices=data["models"],
            messages=conversation.messages,
            temperature=data["temperature"],
            max_tokens=data["max_tokens"],
            seed=data["seed"],
        )
        return _page(
            request,
            form,
            replies=replies,
            save_form=_save_form(conversation, replies),
            pasted_reference=conversation.reference,
        )

    initial: dict[str, Any] = {"models": request.GET.getlist("models")[: pg.MAX_MODELS]}
    picker = None
    example = None
    if "dataset" in request.GET or "line" in request.GET:
        picker = ExamplePickerForm(request.GET)
        if picker.is_valid() and picker.example is not None and picker.source is not None:
            initial["conversation"] = pg.conversation_text(
                picker.example.messages, picker.example.reference
            )
            example = {
                "dataset": picker.source,
                "line": picker.cleaned_data["line"],
                "has_reference": picker.example.reference is not None,
            }
    form = PlaygroundForm(initial=initial)
    return _page(request, form, picker=picker, example=example, status=200)


def _prompt_of(raw: str) -> list[dict[str, Any]]:
    try:
        return pg.parse_conversation(raw).messages
    except PlaygroundError:
        return []


@member_required
@require_POST
def playground_save(request: HttpRequest) -> HttpResponse:
    save_form = SaveForm(request.POST)
    if save_form.is_valid():
        data = save_form.cleaned_data
        try:
            outcome = pg.playground_save(
                messages=data["messages"],
                reference=data["reference_text"],
                user=request.user,
                name=data["name"],
                append_to=save_form.append_to,
            )
        except PlaygroundError as exc:
            save_form.add_error(None, exc.message)
        else:
            dataset = outcome.dataset
            if not outcome.created:
                messages.info(
                    request,
                    f"This content is already saved as “{dataset.name}” (#{dataset.pk}); "
                    "nothing was stored again.",
                )
            elif save_form.append_to is not None:
                messages.success(
                    request,
                    f"Saved a new version of “{dataset.name}” with {dataset.line_count:,} "
                    f"prompts (the previous one, #{save_form.append_to.pk}, stays as it was); "
                    "validation has started.",
                )
            else:
                messages.success(
                    request, f"Saved the prompt as “{dataset.name}”; validation has started."
                )
            return redirect("datasets:detail", dataset.pk)
    # Show the page again, with the replies that came back in the form and its errors.
    prompt = _prompt_of(request.POST.get("messages", ""))
    pasted = request.POST.get("pasted_reference") or None
    replies = save_form.reply_list
    form = PlaygroundForm(
        initial={
            "conversation": pg.conversation_text(prompt, pasted) if prompt else "",
            "models": [r.key for r in replies],
        }
    )
    return _page(
        request,
        form,
        replies=replies,
        save_form=save_form,
        pasted_reference=pasted,
        status=400,
    )
