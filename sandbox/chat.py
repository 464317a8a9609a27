"""Chat completions whose replies reflect training: a fine-tuned model or checkpoint answers a
trained prompt with (a version of) the trained reply, more faithfully the further training got."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sandbox import engine, ids, replies, training_data
from sandbox.api import ApiError, Caller, model_not_found, reject_unknown
from sandbox.catalog import base_model, base_of
from sandbox.models import SandboxCheckpoint, SandboxFile, SandboxModel

ALLOWED = (
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed",
    "n", "stop", "logprobs", "top_logprobs", "response_format", "tools", "tool_choice",
    "parallel_tool_calls", "stream", "stream_options", "metadata", "store", "user",
    "frequency_penalty", "presence_penalty", "logit_bias", "service_tier", "modalities",
    "safety_identifier", "prompt_cache_key",
)  # fmt: skip
FINGERPRINT = "fp_tuneboard_sandbox"


@dataclass(frozen=True)
class Target:
    name: str
    base: str
    trained: dict[str, str] | None
    fidelity: float


def _trained_for(job_id: str, step: int | None) -> tuple[dict[str, str], float]:
    from sandbox.models import SandboxJob

    job = SandboxJob.objects.get(pk=job_id)
    run = engine.training_run(job)
    file = SandboxFile.objects.filter(pk=job.training_file).first()
    trained = training_data.trained_pairs(file) if file else {}
    return trained, run.fidelity(step if step is not None else job.total_steps)


def resolve_target(caller: Caller, name: Any) -> Target:
    if not isinstance(name, str) or not name:
        raise ApiError(
            400,
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    base = base_model(name)
    if base is not None:
        return Target(name, base.id, None, 0.0)
    tuned = SandboxModel.objects.filter(pk=name, owner=caller.owner, deleted=False).first()
    if tuned is not None:
        trained, fidelity = _trained_for(tuned.job_id, None)
        return Target(name, base_of(name), trained, fidelity)
    checkpoint = SandboxCheckpoint.objects.filter(
        fine_tuned_model_checkpoint=name, job__owner=caller.owner
    ).first()
    if checkpoint is not None:
        trained, fidelity = _trained_for(checkpoint.job_id, checkpoint.step_number)
        return Target(name, base_of(name), trained, fidelity)
    raise model_not_found(name)


def _validated(body: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(body, ALLOWED)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system", "developer", "user", "assistant", "tool", "function",
        ):  # fmt: skip
            raise ApiError(
                400, f"Invalid value for 'messages[{index}].role'.", param=f"messages[{index}].role"
            )
    temperature = body.get("temperature", 1)
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise ApiError(400, "Invalid 'temperature': must be between 0 and 2.", param="temperature")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ApiError(400, "Invalid 'max_tokens': must be a positive integer.", param="max_tokens")
    n = body.get("n", 1) or 1
    if not isinstance(n, int) or not 1 <= n <= 8:
        raise ApiError(400, "Invalid 'n': must be between 1 and 8 in the sandbox.", param="n")
    return {
        "messages": messages,
        "temperature": temperature or 0.0,
        "max_tokens": max_tokens,
        "n": n,
    }


def completion(caller: Caller, body: dict[str, Any]) -> tuple[dict[str, Any], Target]:
    target = resolve_target(caller, body.get("model"))
    params = _validated(body)
    choices = []
    completion_tokens = 0
    for index in range(params["n"]):
        seed = body.get("seed")
        content, finish = replies.generate_reply(
            params["messages"], model=target.base, trained=target.trained, fidelity=target.fidelity,
            seed=(seed + index) if isinstance(seed, int) else None,
            temperature=float(params["temperature"]), max_tokens=params["max_tokens"],
        )  # fmt: skip
        completion_tokens += replies.count_tokens(content, model=target.base)
        choices.append(
            {
                "index": index,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": [],
                },
                "finish_reason": finish,
                "logprobs": None,
            }
        )
    prompt_tokens = replies.count_message_tokens(params["messages"], model=target.base)
    return (
        {
            "id": ids.completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": target.name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "system_fingerprint": FINGERPRINT,
            "service_tier": "default",
        },
        target,
    )


def stream_events(result: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    base = {
        "id": result["id"],
        "object": "chat.completion.chunk",
        "created": result["created"],
        "model": result["model"],
        "system_fingerprint": FINGERPRINT,
        "service_tier": "default",
    }

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        body = {**base, "choices": choices}
        if include_usage:
            body["usage"] = usage
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    for choice in result["choices"]:
        index = choice["index"]
        yield chunk(
            [
                {
                    "index": index,
                    "delta": {"role": "assistant", "content": "", "refusal": None},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )
        words = choice["message"]["content"].split(" ")
        for position, word in enumerate(words):
            piece = word if position == 0 else " " + word
            yield chunk(
                [
                    {
                        "index": index,
                        "delta": {"content": piece},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        yield chunk(
            [
                {
                    "index": index,
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": choice["finish_reason"],
                }
            ]
        )
    if include_usage:
        yield chunk([], result["usage"])
    yield b"data: [DONE]\n\n"
