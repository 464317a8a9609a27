"""Colours: one per metric kind on a run's page, one per run in comparisons.

Runs are coloured by their position in the comparison from a fixed qualitative palette, so the
same run has the same colour in every chart (and table) of one compare page; after ten runs the
palette repeats.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.charts.series import RunSeries

# Tableau 10: distinct hues of similar weight, readable on white, reasonably colour-blind safe.
RUN_PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
# A run's own page: the site accent for training, then two hues far from it and from each other.
SERIES_COLOURS: dict[str, str] = {"train": "#3156d3", "valid": "#e69f00", "full_valid": "#009e73"}
CHECKPOINT_COLOUR = "#5f6b7a"
BEST_COLOUR = "#c53030"
EPOCH_LINE_COLOUR = "#c3cad5"

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def run_colour(position: int) -> str:
    return RUN_PALETTE[position % len(RUN_PALETTE)]


def safe_colour(colour: object, position: int) -> str:
    """``colour`` when it is a plain ``#rrggbb`` (anything else could smuggle CSS or markup
    into the figure), else the palette colour of ``position``."""
    if isinstance(colour, str) and _HEX_COLOUR.fullmatch(colour):
        return colour
    return run_colour(position)


def colours_for(runs: Sequence[RunSeries]) -> list[str]:
    """Each run's colour: its own ``colour`` if valid, else the palette's by position."""
    return [safe_colour(run.colour, position) for position, run in enumerate(runs)]
