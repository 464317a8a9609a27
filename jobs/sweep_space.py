"""What a sweep tries: the values chosen for each dimension (base model, seed and the parameters
the connection's adapter declares), read from text, and the runs they make, as a grid (every
combination) or a random sample. Pure: no database, so the planning rules are tested alone.

A dimension's text is a comma-separated list ("1, 2, 3"); in random mode a numeric parameter
may instead be a range "low..high", drawn uniformly (log-uniformly for a positive range that
spans a factor of ten or more, as learning rates are searched).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs.providers.parameters import Parameter

MAX_RUNS = 20  # what one comparison shows: the sweep page is the comparison of all its runs
MAX_SEED = 2_147_483_647
RANGE_SEPARATOR = ".."
SIGNIFICANT_DIGITS = 4


class SpaceError(ValueError):
    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    integer: bool

    @property
    def logarithmic(self) -> bool:
        return not self.integer and self.low > 0 and self.high / self.low >= 10

    def draw(self, rng: random.Random) -> int | float:
        if self.integer:
            return rng.randint(int(self.low), int(self.high))
        if self.logarithmic:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return _rounded(value)

    def as_json(self) -> dict[str, Any]:
        return {"range": [self.low, self.high]}


Values = list[Any] | Range


@dataclass(frozen=True)
class PlannedRun:
    base_model: str
    seed: int | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)


def _rounded(value: float) -> float:
    if value == 0:
        return 0.0
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value)))
    return round(value, digits)


def _number(text: str, parameter: Parameter) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise SpaceError(
            f"{parameter.label}: “{text}” is not a number.", field=parameter.name
        ) from None
    if not math.isfinite(value):
        raise SpaceError(f"{parameter.label}: “{text}” is not a number.", field=parameter.name)
    if parameter.kind == "int":
        if not value.is_integer():
            raise SpaceError(
                f"{parameter.label}: “{text}” is not a whole number.", field=parameter.name
            )
        return int(value)
    return value


def _within(value: float, parameter: Parameter) -> None:
    low, high = parameter.low, parameter.high
    if (low is not None and value < low) or (high is not None and value > high):
        raise SpaceError(
            f"{parameter.label}: {value:g} is outside {low:g} to {high:g}.", field=parameter.name
        )


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_values(text: str, parameter: Parameter, *, mode: str) -> Values:
    """The values ``text`` names for ``parameter`` (an empty list: the provider's default or
    "auto", not swept). Raises ``SpaceError`` with a message for the form."""
    text = text.strip()
    if not text:
        return []
    if RANGE_SEPARATOR in text and parameter.kind in ("int", "float"):
        if mode != "random":
            raise SpaceError(
                f"{parameter.label}: a range is drawn from in random mode only; list the "
                "values for a grid.",
                field=parameter.name,
            )
        low_text, _, high_text = text.partition(RANGE_SEPARATOR)
        low, high = _number(low_text.strip(), parameter), _number(high_text.strip(), parameter)
        if low >= high:
            raise SpaceError(
                f"{parameter.label}: a range goes from a lower to a higher number.",
                field=parameter.name,
            )
        _within(low, parameter)
        _within(high, parameter)
        return Range(low=low, high=high, integer=parameter.kind == "int")
    values: list[Any] = []
    for item in _items(text):
        if parameter.kind in ("int", "float"):
            value: Any = _number(item, parameter)
            _within(value, parameter)
        elif parameter.kind == "choice":
            if item not in parameter.choices:
                raise SpaceError(
                    f"{parameter.label}: “{item}” is not one of {', '.join(parameter.choices)}.",
                    field=parameter.name,
                )
            value = item
        else:
            raise SpaceError(f"{parameter.label} cannot be swept.", field=parameter.name)
        if value not in values:
            values.append(value)
    return values


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for item in _items(text):
        if not item.isdigit() or int(item) > MAX_SEED:
            raise SpaceError(
                f"Seeds are whole numbers from 0 to {MAX_SEED:,}; “{item}” is not.", field="seeds"
            )
        if int(item) not in seeds:
            seeds.append(int(item))
    return seeds


def parse_models(text: str) -> list[str]:
    models: list[str] = []
    for item in _items(text):
        if item not in models:
            models.append(item)
    if not models:
        raise SpaceError("Choose at least one base model.", field="base_models")
    return models


def grid_size(space: dict[str, Values]) -> int | None:
    """How many runs a grid of ``space`` makes (None: a range, which only random mode draws)."""
    size = 1
    for values in space.values():
        if isinstance(values, Range):
            return None
        size *= max(1, len(values))
    return size


def _listed(values: Values) -> list[Any]:
    if isinstance(values, Range):
        raise SpaceError("A range has no list of values.")
    return values


def _run(choice: dict[str, Any]) -> PlannedRun:
    hyperparameters = {k: v for k, v in choice.items() if k not in ("base_model", "seed")}
    return PlannedRun(
        base_model=choice["base_model"], seed=choice.get("seed"), hyperparameters=hyperparameters
    )


def expand(
    space: dict[str, Values], *, mode: str, samples: int | None = None, sample_seed: int = 0
) -> list[PlannedRun]:
    """The runs of a sweep, in launch order. ``space`` maps "base_model", "seed" and parameter
    names to their values; a dimension with no values is left to the provider. A grid is every
    combination (the first dimension varies slowest); a random sample draws ``samples`` runs,
    each a different combination while the grid has that many, from ``sample_seed``."""
    dims = [(name, values) for name, values in space.items() if values]
    if mode == "grid":
        size = grid_size(space)
        if size is None:
            raise SpaceError("A grid lists values; ranges are for random sweeps.")
        if size > MAX_RUNS:
            raise SpaceError(
                f"This grid makes {size} runs; a sweep has at most {MAX_RUNS}. Choose fewer "
                "values, or draw a random sample of them."
            )
        names = [name for name, _ in dims]
        product = itertools.product(*(_listed(values) for _, values in dims))
        return [_run(dict(zip(names, combo, strict=True))) for combo in product]
    if mode != "random":
        raise SpaceError(f"“{mode}” is not a sweep mode.")
    if samples is None or not 1 <= samples <= MAX_RUNS:
        raise SpaceError(f"A random sweep draws 1 to {MAX_RUNS} runs.", field="samples")
    rng = random.Random(sample_seed)  # noqa: S311 - a reproducible plan, not a secret
    size = grid_size(space)
    if size is not None and size >= samples:
        # Only lists: distinct combinations, drawn without replacement.
        names = [name for name, _ in dims]
        combos = list(itertools.product(*(_listed(values) for _, values in dims)))
        return [_run(dict(zip(names, c, strict=True))) for c in rng.sample(combos, samples)]
    runs: list[PlannedRun] = []
    seen: set[str] = set()
    for _ in range(samples * 50):
        choice = {
            name: values.draw(rng) if isinstance(values, Range) else rng.choice(values)
            for name, values in dims
        }
        key = repr(sorted(choice.items()))
        if key in seen:
            continue
        seen.add(key)
        runs.append(_run(choice))
        if len(runs) == samples:
            return runs
    raise SpaceError(
        f"Only {len(runs)} different runs can be drawn from these values; ask for fewer."
    )


def space_json(space: dict[str, Values]) -> dict[str, Any]:
    """How a sweep stores what it tried (lists as they are, ranges as {"range": [low, high]})."""
    return {k: v.as_json() if isinstance(v, Range) else list(v) for k, v in space.items() if v}


def varied(runs: Sequence[PlannedRun]) -> list[str]:
    """The dimensions whose value differs between runs (what the sweep's charts plot)."""
    keys: list[str] = []
    if len({r.base_model for r in runs}) > 1:
        keys.append("base_model")
    names = list(dict.fromkeys(k for r in runs for k in r.hyperparameters))
    keys += [k for k in names if len({repr(r.hyperparameters.get(k)) for r in runs}) > 1]
    if len({r.seed for r in runs}) > 1:
        keys.append("seed")
    return keys
