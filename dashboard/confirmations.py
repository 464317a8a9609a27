"""What the confirmation page of revoking a share link says: who loses access and that a new
link would have a new address."""

from __future__ import annotations

from core.confirm import Confirmation
from core.templatetags.core_format import count, when
from dashboard.models import ShareLink


def _shows(link: ShareLink) -> str:
    if link.kind == ShareLink.Kind.RUN and link.job is not None:
        return f"the run {link.job.display_name}"
    if link.kind == ShareLink.Kind.EVALUATION and link.evaluation is not None:
        return f"the evaluation {link.evaluation.name}"
    return f"a comparison of {len(link.job_ids or [])} runs"


def share_link_revoke_confirmation(
    link: ShareLink, *, back_url: str, back_label: str, hidden: dict[str, str]
) -> Confirmation:
    name = f"“{link.label}”" if link.label else "without a title"
    viewed = (
        f"it has been opened {count(link.view_count)} time{'s' if link.view_count != 1 else ''}, "
        f"last on {when(link.last_viewed_at)}"
        if link.view_count
        else "nobody has opened it yet"
    )
    return Confirmation(
        title=f"Revoke the share link {name}?",
        back_url=back_url,
        back_label=back_label,
        consequences=[
            f"Anyone who opens this link to {_shows(link)} gets “not found” from then on "
            f"({viewed}).",
            "It cannot be undone: a new link has a new address, which you would have to send "
            "again to everyone who should see it.",
            "The run, comparison or evaluation itself is not changed.",
        ],
        button="Revoke the link",
        keep="Keep it",
        unavailable="This share link is already revoked." if link.revoked_at else "",
        hidden=hidden,
    )
