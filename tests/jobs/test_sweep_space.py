"""What a sweep tries (issue 18, deliverable 2): values read from the form's text, grids and
random samples over the connection's declared parameters. Pure functions, no database."""

from __future__ import annotations

import math

import pytest

from jobs.providers.parameters import OPENAI, TOGETHER, by_name
from jobs.sweep_space import (
    MAX_RUNS,
    Range,
    SpaceError,
    expand,
    parse_seeds,
    parse_values,
    space_json,
    varied,
)

OPENAI_P = by_name(OPENAI)
TOGETHER_P = by_name(TOGETHER)


def test_values_are_read_typed_deduplicated_and_checked_against_the_declaration() -> None:
    assert parse_values("1, 2,2 , 3", OPENAI_P["n_epochs"], mode="grid") == [1, 2, 3]
    assert parse_values("0.5,2", OPENAI_P["learning_rate_multiplier"], mode="grid") == [0.5, 2.0]
    assert parse_values("", OPENAI_P["batch_size"], mode="grid") == []
    assert parse_values("cosine", TOGETHER_P["lr_scheduler"], mode="grid") == ["cosine"]
    cases = [
        ("1.5", OPENAI_P["n_epochs"], "not a whole number"),
        ("x", OPENAI_P["batch_size"], "not a number"),
        ("nan", OPENAI_P["learning_rate_multiplier"], "not a number"),
        ("51", OPENAI_P["n_epochs"], "outside 1 to 50"),
        ("step", TOGETHER_P["lr_scheduler"], "not one of linear, cosine"),
        ("1..4", OPENAI_P["n_epochs"], "random mode only"),
    ]
    for text, parameter, message in cases:
        with pytest.raises(SpaceError, match=message) as caught:
            parse_values(text, parameter, mode="grid")
        assert caught.value.field == parameter.name


def test_a_range_is_for_random_search_and_learning_rates_are_drawn_log_uniformly() -> None:
    lr = parse_values("1e-6..1e-3", TOGETHER_P["learning_rate"], mode="random")
    assert lr == Range(low=1e-6, high=1e-3, integer=False) and lr.logarithmic
    epochs = parse_values("1..4", OPENAI_P["n_epochs"], mode="random")
    assert isinstance(epochs, Range) and not epochs.logarithmic
    with pytest.raises(SpaceError, match="lower to a higher"):
        parse_values("4..1", OPENAI_P["n_epochs"], mode="random")
    runs = expand({"base_model": ["m"], "learning_rate": lr, "n_epochs": epochs}, mode="random",
                  samples=20, sample_seed=7)  # fmt: skip
    rates = [r.hyperparameters["learning_rate"] for r in runs]
    assert all(1e-6 <= x <= 1e-3 for x in rates)
    # Log-uniform: about as many draws in each decade, so some fall below 1e-5 (a uniform draw
    # lands there with probability 0.009 each).
    assert sum(1 for x in rates if x < 1e-5) >= 3
    assert {r.hyperparameters["n_epochs"] for r in runs} <= {1, 2, 3, 4}
    assert all(x == float(f"{x:.4g}") for x in rates)  # four significant digits


def test_a_grid_is_every_combination_first_dimension_slowest() -> None:
    space = {"base_model": ["a", "b"], "n_epochs": [1, 2, 3], "seed": [7]}
    runs = expand(space, mode="grid")
    assert [(r.base_model, r.hyperparameters["n_epochs"], r.seed) for r in runs] == [
        ("a", 1, 7), ("a", 2, 7), ("a", 3, 7), ("b", 1, 7), ("b", 2, 7), ("b", 3, 7),
    ]  # fmt: skip
    assert varied(runs) == ["base_model", "n_epochs"]
    assert expand({"base_model": ["a"], "n_epochs": [], "seed": []}, mode="grid")[0].seed is None


def test_a_grid_or_sample_larger_than_one_comparison_is_refused() -> None:
    big = {"base_model": ["a"], "n_epochs": list(range(1, 8)), "batch_size": [1, 2, 4]}
    with pytest.raises(SpaceError, match=f"makes 21 runs; a sweep has at most {MAX_RUNS}"):
        expand(big, mode="grid")
    with pytest.raises(SpaceError, match="draws 1 to 20"):
        expand(big, mode="random", samples=21)
    with pytest.raises(SpaceError, match="Only 2 different runs"):
        expand({"base_model": ["a"], "n_epochs": [1, 2]} | {"x": Range(1, 1.0000001, True)},
               mode="random", samples=3)  # fmt: skip


def test_a_random_sample_of_lists_is_distinct_and_reproducible() -> None:
    space = {"base_model": ["a", "b"], "n_epochs": [1, 2, 3, 4], "batch_size": [1, 8]}
    first = expand(space, mode="random", samples=10, sample_seed=3)
    again = expand(space, mode="random", samples=10, sample_seed=3)
    other = expand(space, mode="random", samples=10, sample_seed=4)
    assert first == again and first != other
    keys = {(r.base_model, tuple(sorted(r.hyperparameters.items()))) for r in first}
    assert len(keys) == 10  # no combination twice
    assert len(expand(space, mode="random", samples=16)) == math.prod([2, 4, 2])


def test_seeds_and_the_stored_space() -> None:
    assert parse_seeds("3, 1,3") == [3, 1]
    with pytest.raises(SpaceError, match="whole numbers"):
        parse_seeds("-1")
    space = {"base_model": ["a"], "learning_rate": Range(1e-6, 1e-4, False), "n_epochs": []}
    assert space_json(space) == {"base_model": ["a"], "learning_rate": {"range": [1e-6, 1e-4]}}
