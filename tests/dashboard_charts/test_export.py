"""Metric points as CSV / JSON and the comparison tables as CSV."""

from __future__ import annotations

import csv
import io
import json

from dashboard.charts import (
    RunSeries,
    comparison_rows,
    comparison_table,
    comparison_tables_csv,
    metrics_csv,
    metrics_json,
)

ROWS = [
    {"step": 2, "train_loss": 1.5, "valid_loss": 1.75, "extra": {"valid_reward_margin": 0.25}},
    {"step": 1, "train_loss": 2.0, "train_accuracy": 0.4, "extra": {"train_reward_margin": -0.5}},
    {
        "step": 3,
        "train_loss": float("nan"),
        "full_valid_loss": 1e-05,
        "extra": {"=cmd": 1, "step": 9.0},
    },
    {"step": None, "train_loss": 1.0},  # no step: not a point
]


def test_metrics_csv() -> None:
    text = metrics_csv(ROWS)
    assert text.splitlines() == [
        "step,train_loss,train_accuracy,valid_loss,valid_accuracy,full_valid_loss,"
        "full_valid_accuracy,'=cmd,extra:step,train_reward_margin,valid_reward_margin",
        "1,2.0,0.4,,,,,,,-0.5,",
        "2,1.5,,1.75,,,,,,,0.25",
        "3,,,,,1e-05,,1.0,9.0,,",
    ]
    assert list(csv.reader(io.StringIO(text)))[3][5] == "1e-05"
    assert metrics_csv([]) == (
        "step,train_loss,train_accuracy,valid_loss,valid_accuracy,full_valid_loss,full_valid_accuracy\n"
    )


def test_metrics_json() -> None:
    points = metrics_json(ROWS)
    assert points == [
        {
            "step": 1,
            "train_loss": 2.0,
            "valid_loss": None,
            "full_valid_loss": None,
            "train_accuracy": 0.4,
            "valid_accuracy": None,
            "full_valid_accuracy": None,
            "extra": {"train_reward_margin": -0.5},
        },
        {
            "step": 2,
            "train_loss": 1.5,
            "valid_loss": 1.75,
            "full_valid_loss": None,
            "train_accuracy": None,
            "valid_accuracy": None,
            "full_valid_accuracy": None,
            "extra": {"valid_reward_margin": 0.25},
        },
        {
            "step": 3,
            "train_loss": None,
            "valid_loss": None,
            "full_valid_loss": 1e-05,
            "train_accuracy": None,
            "valid_accuracy": None,
            "full_valid_accuracy": None,
            "extra": {"=cmd": 1.0, "step": 9.0},
        },
    ]
    json.dumps(points, allow_nan=False)


def runs() -> list[RunSeries]:
    return [
        RunSeries(
            label='=HYPERLINK("x")',
            run_id="a",
            train_loss=[(1, 2.0), (2, 1.0)],
            full_valid_loss=[(2, 1.2)],
            hyperparameters={
                "learning_rate_multiplier": 0.1,
                "n_epochs": 3,
                "suffix": "-x",
                "last_step": 7,
            },
        ),
        RunSeries(
            label='b, "quoted"',
            run_id="b",
            train_loss=[(1, 2.5)],
            colour="#abcdef",
            hyperparameters={"batch_size": "auto", "n_epochs": 2},
        ),
    ]


def test_comparison_rows_and_table() -> None:
    rows = comparison_rows(runs())
    assert [(r["label"], r["id"], r["colour"]) for r in rows] == [
        ('=HYPERLINK("x")', "a", "#4e79a7"),
        ('b, "quoted"', "b", "#abcdef"),
    ]
    assert rows[0]["metrics"]["best_full_valid_loss"] == 1.2
    header, body = comparison_table(rows)
    assert header[:7] == [
        "run",
        "run_id",
        "n_epochs",
        "batch_size",
        "learning_rate_multiplier",
        "hyperparameter:last_step",
        "suffix",
    ]
    assert header[7:10] == ["last_step", "final_train_loss", "final_valid_loss"]
    assert body[1][:7] == ['b, "quoted"', "b", 2, "auto", None, None, None]


def test_comparison_tables_csv() -> None:
    text = comparison_tables_csv(comparison_rows(runs()))
    table = list(csv.reader(io.StringIO(text)))
    assert len(table) == 3
    header, first, second = table
    assert first[:7] == ['\'=HYPERLINK("x")', "a", "3", "", "0.1", "7", "'-x"]  # no formulas
    assert second[:4] == ['b, "quoted"', "b", "2", "auto"]
    assert first[header.index("final_train_loss")] == "1.0"
    assert first[header.index("best_full_valid_step")] == "2"
    assert second[header.index("best_full_valid_loss")] == ""
