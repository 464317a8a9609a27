"""Sections that other apps add to the run page, collected through ``signals.job_page``: the
page has named slots (``charts``, ``evaluations``) and never imports the apps that fill them."""

from __future__ import annotations

from dataclasses import dataclass

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
