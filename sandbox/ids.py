"""Identifiers in OpenAI's formats (file-…, ftjob-…, ftevent-…, ftckpt_…)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def file_id() -> str:
    return random_id("file-")


def upload_id() -> str:
    return random_id("upload_")


def part_id() -> str:
    return random_id("part_")


def job_id() -> str:
    return random_id("ftjob-")


def event_id() -> str:
    return random_id("ftevent-")


def checkpoint_id() -> str:
    return random_id("ftckpt_")


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


def completion_id() -> str:
    return random_id("chatcmpl-", 29)


def webhook_event_id() -> str:
    return random_id("evt_")


def model_suffix_id() -> str:
    return random_id("", 8)
