"""What the confirmation pages of the job controls and of archiving a connection say: what
will happen and what it costs or loses, in numbers where the dashboard knows them."""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse

from core.confirm import Confirmation
from core.templatetags.core_format import count, money
from jobs import selectors
from jobs.models import Job, JobControl, ProviderConnection

# Statuses in which nothing has been trained yet, so cancelling costs nothing.
NOT_STARTED = frozenset({"validating_files", "queued"})
ACTIVE_NAMES_SHOWN = 5


def _progress(job: Job) -> str:
    percent = selectors.progress_percent(job)
    if percent is None or job.last_step is None or job.total_steps is None:
        return ""
    return f" at step {count(job.last_step)} of {count(job.total_steps)} ({percent:g}%)"


def _billed_so_far(job: Job, page: selectors.JobPage) -> str:
    if job.status in NOT_STARTED:
        return "Nothing has been trained yet, so nothing is billed."
    if job.trained_tokens:
        cost = f" ({money(page.cost)})" if page.cost is not None else ""
        return f"The {count(job.trained_tokens)} tokens trained so far are billed{cost}."
    percent = selectors.progress_percent(job)
    if percent is not None and page.estimate is not None and page.estimate.cost is not None:
        part = page.estimate.cost * Decimal(str(percent)) / 100
        return (
            f"What it has trained so far is billed: about {money(part)}, {percent:g}% of the "
            f"planned {money(page.estimate.cost)}."
        )
    return "Whatever it has trained so far is billed; nothing already trained is refunded."


def job_control_confirmation(job: Job, action: str) -> Confirmation:
    page = selectors.job_page(job)
    name = job.display_name
    back = reverse("jobs:detail", kwargs={"pk": job.pk})
    if action == JobControl.Action.CANCEL:
        resumable = " Pausing instead keeps it resumable." if page.controls.pause else ""
        return Confirmation(
            title=f"Cancel {name}?",
            back_url=back,
            back_label=name,
            consequences=[
                f"Training stops at the provider{_progress(job)} and the job ends as "
                f"Cancelled. A cancelled job cannot be resumed.{resumable}",
                _billed_so_far(job, page),
                "No fine-tuned model is produced from this job.",
            ],
            button="Cancel the job",
            keep="Keep the job",
            unavailable="" if page.controls.cancel else _unavailable(job, page, "cancelled"),
        )
    return Confirmation(
        title=f"Pause {name}?",
        back_url=back,
        back_label=name,
        consequences=[
            f"Training stops at the provider{_progress(job)} and the job waits as Paused "
            "until someone resumes it; Resume continues from where it stopped.",
            "What it has trained so far is billed; nothing more is trained while it is paused, "
            "and its estimated finish moves back by as long as the pause lasts.",
            "No fine-tuned model is produced until it is resumed and finishes.",
        ],
        button="Pause the job",
        keep="Keep it running",
        unavailable="" if page.controls.pause else _unavailable(job, page, "paused"),
    )


def _unavailable(job: Job, page: selectors.JobPage, done: str) -> str:
    if not page.controls.provider_usable:
        return f"{page.controls.provider_reason}, so the job cannot be {done} from here."
    if not job.provider_job_id:
        return f"The job has not reached the provider yet, so it cannot be {done}."
    return f"The job is {job.get_status_display().lower()}, so it cannot be {done}."


def connection_archive_confirmation(connection: ProviderConnection) -> Confirmation:
    jobs = Job.objects.filter(connection=connection)
    active = list(
        jobs.exclude(status__in=Job.TERMINAL)
        .order_by("-created_at")
        .only("id", "name", "provider_job_id")
    )
    lines = [
        f"The API key of “{connection.name}” is deleted from Tuneboard, and nothing here talks "
        "to this provider again: imports, syncs, job controls and model deletion for it become "
        "unavailable, and a running import stops at its next step.",
    ]
    if active:
        names = ", ".join(job.display_name for job in active[:ACTIVE_NAMES_SHOWN])
        more = len(active) - ACTIVE_NAMES_SHOWN
        if more > 0:
            names += f" and {more} more"
        lines.append(
            f"{len(active)} job{'s' if len(active) != 1 else ''} still active at the provider "
            f"({names}) {'are' if len(active) != 1 else 'is'} no longer followed: "
            "they keep running, and being billed, there, but their status, curves and "
            "checkpoints stop updating here and they can no longer be cancelled from here."
        )
    total = jobs.count()
    lines.append(
        f"Nothing stored is deleted: its {count(total)} job{'s' if total != 1 else ''}, their "
        "curves, checkpoints, datasets and share links stay readable."
    )
    lines.append(
        "It cannot be undone from here: to talk to this provider again, add a new connection "
        "with a key."
    )
    return Confirmation(
        title=f"Archive the connection “{connection.name}”?",
        back_url=reverse("jobs:connection_detail", kwargs={"pk": connection.pk}),
        back_label=connection.name,
        consequences=lines,
        button="Archive the connection",
        keep="Keep it",
        unavailable=f"“{connection.name}” is already archived." if connection.archived_at else "",
    )
