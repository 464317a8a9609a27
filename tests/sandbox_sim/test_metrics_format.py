from __future__ import annotations

import re

from sandbox.simulation import DECIMALS, RESULTS_CSV_HEADER, StepMetrics

from .helpers import all_metrics, make_run

HEADER = (
    "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy,"
    "full_valid_loss,full_valid_mean_token_accuracy"
)
CSV_KEYS = (
    "train_loss",
    "train_mean_token_accuracy",  # the CSV calls it train_accuracy
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
MESSAGE = re.compile(
    r"Step \d+/\d+: training loss=\d+\.\d\d(, validation loss=\d+\.\d\d)?(, full validation loss=\d+\.\d\d)?"
)


def _example(**overrides: object) -> StepMetrics:
    fields: dict[str, object] = {
        "step": 40,
        "total_steps": 90,
        "train_loss": 0.6113,
        "train_mean_token_accuracy": 0.8125,
        "valid_loss": 0.7204,
        "valid_mean_token_accuracy": 0.7719,
        "full_valid_loss": 0.6931,
        "full_valid_mean_token_accuracy": 0.78,
    }
    return StepMetrics(**{**fields, **overrides})  # type: ignore[arg-type]


def test_event_message_like_openai() -> None:
    assert _example().event_message() == (
        "Step 40/90: training loss=0.61, validation loss=0.72, full validation loss=0.69"
    )
    train_only = _example(valid_loss=None, valid_mean_token_accuracy=None, full_valid_loss=None,
                          full_valid_mean_token_accuracy=None)  # fmt: skip
    assert train_only.event_message() == "Step 40/90: training loss=0.61"


def test_event_data_has_only_existing_keys_in_openai_order() -> None:
    data = _example(full_valid_loss=None, full_valid_mean_token_accuracy=None).event_data()
    assert data == {
        "step": 40,
        "total_steps": 90,
        "train_loss": 0.6113,
        "train_mean_token_accuracy": 0.8125,
        "valid_loss": 0.7204,
        "valid_mean_token_accuracy": 0.7719,
    }
    assert list(data) == ["step", "total_steps", *CSV_KEYS[:4]]  # the documented order
    assert isinstance(data["step"], int) and isinstance(data["total_steps"], int)


def test_checkpoint_metrics_have_step_as_float() -> None:
    metrics = _example().checkpoint_metrics()
    assert metrics["step"] == 40.0 and isinstance(metrics["step"], float)
    assert set(metrics) == {"step", *CSV_KEYS}


def test_simulated_metrics_are_rounded_once_for_every_shape() -> None:
    run = make_run(60, 4, n_valid=12)
    for m in all_metrics(run):
        assert MESSAGE.fullmatch(m.event_message()), m.event_message()
        for key, value in m.event_data().items():
            if key not in ("step", "total_steps"):
                assert value == round(value, DECIMALS)
        checkpoint = m.checkpoint_metrics()
        for key, value in checkpoint.items():
            if key != "step":
                assert value == m.event_data()[key]


def test_results_csv_header_rows_and_empty_cells() -> None:
    run = make_run(60, 4, n_valid=12)
    text = run.results_csv()
    assert RESULTS_CSV_HEADER == HEADER
    assert text.endswith("\n") and "\r" not in text
    lines = text.splitlines()
    assert lines[0] == HEADER
    assert len(lines) == 1 + run.total_steps
    for line, m in zip(lines[1:], all_metrics(run), strict=True):
        cells = line.split(",")
        assert len(cells) == 7
        assert int(cells[0]) == m.step
        data = m.event_data()
        for cell, key in zip(cells[1:], CSV_KEYS, strict=True):
            if key in data:
                assert "e" not in cell and float(cell) == data[key]
            else:
                assert cell == ""


def test_results_csv_row_examples() -> None:
    lines = make_run(60, 4, n_valid=12).results_csv().splitlines()
    # step 1: training only; step 60: an epoch end with every metric.
    assert re.fullmatch(r"1,[0-9.]+,[0-9.]+,,,,", lines[1])
    assert re.fullmatch(r"60(,[0-9.]+){6}", lines[60])


def test_results_csv_upto_a_step() -> None:
    run = make_run(60, 4)
    assert run.results_csv(upto=25).splitlines()[1:] == run.results_csv().splitlines()[1:26]
    assert run.results_csv(upto=0) == HEADER + "\n"
    assert run.results_csv(upto=10_000) == run.results_csv()


def test_csv_numbers_have_no_trailing_zeros_or_exponent() -> None:
    row = _example(train_loss=1.0, train_mean_token_accuracy=0.5, valid_loss=0.00001).csv_row()
    assert row.startswith("40,1.0,0.5,0.00001,")
