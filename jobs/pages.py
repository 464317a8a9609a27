"""Sections that other apps add to the run page, collected through ``signals.job_page``: the
page has named slots (``charts``, ``evaluations``) and never imports the apps that fill them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.safestring import SafeString

from jobs import signals
from jobs.models import Job


@dataclass(frozen=True)
class PageSection:
    slot: str
    html: SafeString


def page_sections(*, request: HttpRequest, job: Job, live: bool) -> dict[str, SafeString]:
    sections: dict[str, SafeString] = {}
    for _receiver, section in signals.job_page.send(
        sender=Job, request=request, job=job, live=live
    ):
        if isinstance(section, PageSection):
            sections[section.slot] = section.html
    return sections


@dataclass(frozen=True)
class LivePart:
    key: str
    data: Any


def live_parts(
    *, request: HttpRequest, job: Job, after_step: int | None, up_to_step: int | None
) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for _receiver, part in signals.job_live.send(
        sender=Job, request=request, job=job, after_step=after_step, up_to_step=up_to_step
    ):
        if isinstance(part, LivePart):
            parts[part.key] = part.data
    return parts
