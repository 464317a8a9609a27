"""Request validation for job creation, with the real API's messages and ``param`` values."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datasets.validation import provider_limits as limits
from sandbox.api import ApiError, reject_unknown

JOB_FIELDS = (
    "model",
    "training_file",
    "validation_file",
    "method",
    "hyperparameters",
    "suffix",
    "seed",
    "metadata",
    "integrations",
)
SUPERVISED_KEYS = ("batch_size", "learning_rate_multiplier", "n_epochs")
DPO_KEYS = (*SUPERVISED_KEYS, "beta")
MAX_SEED = 2_147_483_647


@dataclass(frozen=True)
class JobRequest:
    model: str
    training_file: str
    validation_file: str | None
    method: str
    hyperparameters: dict[str, Any]  # each "auto" or a number, as requested
    suffix: str | None
    seed: int | None
    metadata: dict[str, str] | None
    integrations: list[dict[str, Any]] | None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any, param: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"invalid {param}: expected 'auto' or an integer", param=param)
    if not low <= value <= high:
        raise ApiError(
            400, f"invalid {param}: must be between {low} and {high}, got {value}", param=param
        )
    return value


def _hyperparameters(raw: Any, keys: tuple[str, ...], prefix: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, f"invalid {prefix}: expected an object", param=prefix)
    reject_unknown(raw, keys, prefix=f"{prefix}.")
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        param = f"{prefix}.{key}"
        if value == "auto" or value is None:
            clean[key] = "auto"
        elif key == "n_epochs":
            clean[key] = _integer(value, param, *limits.N_EPOCHS)
        elif key == "batch_size":
            clean[key] = _integer(value, param, *limits.BATCH_SIZE)
        elif key == "learning_rate_multiplier":
            # A multiplier of 1e308 once turned every loss into NaN and broke the job list.
            if not _is_number(value) or not limits.learning_rate_multiplier_allowed(value):
                low, high = limits.LEARNING_RATE_MULTIPLIER
                raise ApiError(
                    400,
                    f"invalid {param}: must be 'auto' or a number from {limits.plain(low)} to {limits.plain(high)}",
                    param=param,
                )
            clean[key] = float(value)
        elif key == "beta":
            if not _is_number(value) or not 0 < value <= limits.BETA_MAX:
                raise ApiError(
                    400, f"invalid {param}: must be 'auto' or a number in (0, 2]", param=param
                )
            clean[key] = float(value)
    return clean


def _method(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = body.get("method")
    legacy = _hyperparameters(body.get("hyperparameters"), SUPERVISED_KEYS, "hyperparameters")
    if method is None:
        return "supervised", legacy
    if not isinstance(method, dict):
        raise ApiError(400, "invalid method: expected an object", param="method")
    reject_unknown(method, ("type", "supervised", "dpo", "reinforcement"), prefix="method.")
    kind = method.get("type")
    if kind == "reinforcement":
        raise ApiError(
            400, "Reinforcement fine-tuning is not available in the sandbox.", param="method.type"
        )
    if kind not in ("supervised", "dpo"):
        raise ApiError(
            400,
            "invalid method.type: expected 'supervised', 'dpo' or 'reinforcement'",
            param="method.type",
        )
    section = method.get(kind) or {}
    if not isinstance(section, dict):
        raise ApiError(400, f"invalid method.{kind}: expected an object", param=f"method.{kind}")
    reject_unknown(section, ("hyperparameters",), prefix=f"method.{kind}.")
    keys = DPO_KEYS if kind == "dpo" else SUPERVISED_KEYS
    hp = _hyperparameters(section.get("hyperparameters"), keys, f"method.{kind}.hyperparameters")
    if legacy and hp:
        raise ApiError(
            400,
            "hyperparameters and method hyperparameters cannot both be set; use method.",
            param="hyperparameters",
        )
    return kind, hp or legacy


def _metadata(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid metadata: expected an object", param="metadata")
    if len(raw) > 16:
        raise ApiError(400, "invalid metadata: at most 16 key-value pairs", param="metadata")
    for key, value in raw.items():
        if len(key) > 64:
            raise ApiError(
                400,
                f"invalid metadata: key '{key[:20]}…' longer than 64 characters",
                param="metadata",
            )
        if not isinstance(value, str) or len(value) > 512:
            raise ApiError(
                400,
                f"invalid metadata.{key}: expected a string of at most 512 characters",
                param=f"metadata.{key}",
            )
    return raw


def _integrations(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > 5:
        raise ApiError(
            400, "invalid integrations: expected a list of at most 5 items", param="integrations"
        )
    clean = []
    for index, item in enumerate(raw):
        param = f"integrations[{index}]"
        if not isinstance(item, dict) or item.get("type") != "wandb":
            raise ApiError(
                400, f"invalid {param}.type: only 'wandb' is supported", param=f"{param}.type"
            )
        reject_unknown(item, ("type", "wandb"), prefix=f"{param}.")
        wandb = item.get("wandb")
        if not isinstance(wandb, dict) or not isinstance(wandb.get("project"), str):
            raise ApiError(
                400, f"invalid {param}.wandb.project: required", param=f"{param}.wandb.project"
            )
        reject_unknown(wandb, ("project", "name", "entity", "tags"), prefix=f"{param}.wandb.")
        tags = wandb.get("tags")
        if tags is not None and (
            not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
        ):
            raise ApiError(
                400,
                f"invalid {param}.wandb.tags: expected a list of strings",
                param=f"{param}.wandb.tags",
            )
        clean.append(
            {
                "type": "wandb",
                "wandb": {
                    "project": wandb["project"],
                    "name": wandb.get("name"),
                    "entity": wandb.get("entity"),
                    "tags": tags,
                },
            }
        )
    return clean


def parse_job_request(body: dict[str, Any]) -> JobRequest:
    reject_unknown(body, JOB_FIELDS)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(
            400,
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    training_file = body.get("training_file")
    if not isinstance(training_file, str) or not training_file:
        raise ApiError(
            400,
            "Missing required parameter: 'training_file'.",
            param="training_file",
            code="missing_required_parameter",
        )
    validation_file = body.get("validation_file")
    if validation_file is not None and not isinstance(validation_file, str):
        raise ApiError(400, "invalid validation_file: expected a file id", param="validation_file")
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or not limits.suffix_allowed(suffix)):
        raise ApiError(
            400,
            "invalid suffix: 1 to 64 letters, digits, hyphens or underscores",
            param="suffix",
        )
    seed = body.get("seed")
    if seed is not None:
        seed = _integer(seed, "seed", 0, MAX_SEED)
    method, hyperparameters = _method(body)
    return JobRequest(
        model=model,
        training_file=training_file,
        validation_file=validation_file or None,
        method=method,
        hyperparameters=hyperparameters,
        suffix=suffix,
        seed=seed,
        metadata=_metadata(body.get("metadata")),
        integrations=_integrations(body.get("integrations")),
    )


# --- Files and uploads ------------------------------------------------------------------------

EXPIRES_MIN_SECONDS = 3600
EXPIRES_MAX_SECONDS = 2_592_000
# RFC 6838 names (type/subtype) with optional `; name=value` parameters. 100 characters is the
# column's size.
_MIME_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MIME_TYPE_RE = re.compile(
    rf"{_MIME_NAME}/{_MIME_NAME}(?:[ \t]*;[ \t]*{_MIME_NAME}=(?:{_MIME_NAME}|\"[^\"\r\n]*\"))*"
)
MAX_MIME_TYPE = 100


def _expires_seconds(raw: dict[str, Any], *, from_form: bool) -> int:
    reject_unknown(raw, ("anchor", "seconds"), prefix="expires_after.")
    for key in ("anchor", "seconds"):
        if key not in raw:
            raise ApiError(
                400,
                f"Missing required parameter: 'expires_after[{key}]'.",
                param=f"expires_after[{key}]",
                code="missing_required_parameter",
            )
    if raw["anchor"] != "created_at":
        raise ApiError(
            400,
            "invalid expires_after[anchor]: must be 'created_at'",
            param="expires_after[anchor]",
        )
    seconds = raw["seconds"]
    # Form fields are strings of ASCII digits; JSON gives a real integer (not a bool or float).
    if from_form and isinstance(seconds, str) and re.fullmatch(r"[0-9]{1,12}", seconds):
        seconds = int(seconds)
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise ApiError(
            400,
            "invalid expires_after[seconds]: expected an integer",
            param="expires_after[seconds]",
        )
    if not EXPIRES_MIN_SECONDS <= seconds <= EXPIRES_MAX_SECONDS:
        raise ApiError(
            400,
            f"invalid expires_after[seconds]: must be between {EXPIRES_MIN_SECONDS} and "
            f"{EXPIRES_MAX_SECONDS}",
            param="expires_after[seconds]",
        )
    return seconds


def parse_expires_after(raw: Any) -> int | None:
    """``expires_after`` of a JSON body (uploads): seconds after creation, or None."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid expires_after: expected an object", param="expires_after")
    return _expires_seconds(raw, from_form=False)


def parse_form_expires_after(form: Mapping[str, str]) -> int | None:
    """``expires_after`` of a multipart form (files): the SDK sends ``expires_after[anchor]``
    and ``expires_after[seconds]``; some clients send one ``expires_after`` part of JSON."""
    nested = {
        key[len("expires_after[") : -1]: value
        for key, value in form.items()
        if key.startswith("expires_after[") and key.endswith("]")
    }
    if "expires_after" not in form:
        return _expires_seconds(nested, from_form=True) if nested else None
    if nested:
        raise ApiError(
            400,
            "invalid expires_after: sent both as one field and as expires_after[…] fields",
            param="expires_after",
        )
    try:
        value = json.loads(form["expires_after"])
    except ValueError:
        raise ApiError(
            400, "invalid expires_after: expected an object", param="expires_after"
        ) from None
    return parse_expires_after(value)


def parse_mime_type(raw: Any) -> str:
    if not isinstance(raw, str) or len(raw) > MAX_MIME_TYPE or not MIME_TYPE_RE.fullmatch(raw):
        raise ApiError(
            400,
            f"invalid mime_type: expected a MIME type such as 'application/jsonl' (type/subtype, "
            f"at most {MAX_MIME_TYPE} characters)",
            param="mime_type",
        )
    return raw
