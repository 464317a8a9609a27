"""The runs list's optional columns: what the column chooser offers (the selection box and the
run name always show) and what a user who never chose sees."""

from __future__ import annotations

# (key, heading) in table order; the key names the cells (data-col) and the CSS class
# tb-hide-<key> that hides them.
CHOOSABLE: tuple[tuple[str, str], ...] = (
    ("status", "Status"),
    ("base_model", "Base model"),
    ("provider", "Provider"),
    ("dataset", "Dataset"),
    ("n_epochs", "Epochs"),
    ("batch_size", "Batch"),
    ("lr", "LR ×"),
    ("tokens", "Trained tokens"),
    ("cost", "Cost"),
    ("train_loss", "Train loss"),  # last reported: "latest" on a running run
    ("valid_loss", "Best full-valid loss"),
    ("valid_step", "at step"),
    ("duration", "Duration"),
    ("creator", "Creator"),
    ("created", "Created"),
    ("tags", "Tags"),
)
KEYS = frozenset(key for key, _ in CHOOSABLE)
# Every column fits 1280 px; nothing is hidden until a user says so.
DEFAULT_HIDDEN: frozenset[str] = frozenset()


def hidden_from_shown(shown: list[str]) -> list[str]:
    """The columns to hide when ``shown`` (anything a form sent) are ticked, sorted."""
    return sorted(KEYS - set(shown))
