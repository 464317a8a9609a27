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
    ("learning_rate", "LR"),  # absolute (Together, self-hosted): never mixed with the multiplier
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
# Every other column fits 1280 px with nothing hidden. The absolute learning rate (Together,
# self-hosted runs) is offered by the column chooser; shown beside the multiplier, it would
# not fit, and the two are never merged into one column.
DEFAULT_HIDDEN: frozenset[str] = frozenset({"learning_rate"})


def hidden_from_shown(shown: list[str]) -> list[str]:
    """The columns to hide when ``shown`` (anything a form sent) are ticked, sorted."""
    return sorted(KEYS - set(shown))
