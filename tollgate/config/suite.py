"""Write a starting Great Expectations suite for a dataset spec: the same shape as the shipped suites.

    python -m tollgate.config.suite --spec data/specs/nsl_kdd.yaml --target-rate 0.2 0.8 > expectations/nsl_kdd.json

Every column gets a loose ``critical`` check that stops a broken export and a strict ``warning``
twin that reports what cleaning will repair; the table gets row-count, required-column, target and
id checks. Review the output (bounds, which columns are key) before committing it with the spec.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tollgate.config.spec import DatasetSpec, load_spec

MISSING_TOLERANCE = 0.9  # critical: at most 10 % missing or unparseable
RANGE_TOLERANCE = 0.95  # critical: at least 95 % of values in the declared range
CATEGORY_TOLERANCE = 0.9  # critical: at least 90 % of values among the known categories


def _expectation(kind: str, severity: str, notes: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "severity": severity, "meta": {"notes": notes}}


def suite_from_spec(spec: DatasetSpec, target_rate: tuple[float, float], rows: tuple[int, int]) -> dict[str, Any]:
    """The suite as GE 1.x JSON (``ExpectationSuite(**payload)`` reads it)."""
    target = spec.target.column
    expectations = [
        _expectation(
            "expect_table_row_count_to_be_between",
            "critical",
            "A batch this small or large is a broken export.",
            min_value=rows[0],
            max_value=rows[1],
        )
    ]
    expectations += [
        _expectation(
            "expect_column_to_exist",
            "critical",
            f"{column} is a required column of the {spec.name} spec.",
            column=column,
        )
        for column in spec.required_columns
    ]
    expectations += [
        _expectation(
            "expect_column_values_to_not_be_null",
            "critical",
            "Every row needs a known outcome to train on (labels are read case-insensitively).",
            column=target,
            mostly=0.99,
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            "critical",
            "The target must be binary: the spec's positive and negative labels.",
            column=target,
            value_set=[0, 1],
        ),
        _expectation(
            "expect_column_mean_to_be_between",
            "critical",
            "Target rate bounds: outside them the batch is mislabelled or one class is missing.",
            column=target,
            min_value=target_rate[0],
            max_value=target_rate[1],
        ),
    ]
    for column in spec.id_columns:
        expectations += [
            _expectation(
                "expect_column_values_to_not_be_null",
                "critical",
                "Rows must be identifiable.",
                column=column,
                mostly=0.99,
            ),
            _expectation(
                "expect_column_values_to_be_unique",
                "critical",
                "Massive duplication means a broken export.",
                column=column,
                mostly=0.95,
            ),
            _expectation(
                "expect_column_values_to_be_unique",
                "warning",
                "A few re-exported rows are normal; cleaning keeps the later one.",
                column=column,
            ),
        ]
    for column, rule in spec.columns.numeric.items():
        bounds = {key: value for key, value in (("min_value", rule.min), ("max_value", rule.max)) if value is not None}
        expectations += [
            _expectation(
                "expect_column_values_to_not_be_null",
                "critical",
                "Missing or non-numeric (text) in many rows: the column is broken.",
                column=column,
                mostly=MISSING_TOLERANCE,
            ),
            _expectation(
                "expect_column_values_to_not_be_null",
                "warning",
                "A few missing or unparseable values are imputed in the model pipeline.",
                column=column,
            ),
        ]
        if bounds:
            expectations += [
                _expectation(
                    "expect_column_values_to_be_between",
                    "critical",
                    "Most values must lie in the plausible range.",
                    column=column,
                    mostly=RANGE_TOLERANCE,
                    **bounds,
                ),
                _expectation(
                    "expect_column_values_to_be_between",
                    "warning",
                    "Out-of-range values (negative or absurd) become missing in cleaning.",
                    column=column,
                    **bounds,
                ),
            ]
    for column, categories in spec.columns.categorical.items():
        expectations += [
            _expectation(
                "expect_column_values_to_not_be_null",
                "critical",
                "Missing in most rows: the column is broken.",
                column=column,
                mostly=MISSING_TOLERANCE,
            ),
            _expectation(
                "expect_column_values_to_not_be_null",
                "warning",
                "A few missing values become the 'Unknown' category.",
                column=column,
            ),
            _expectation(
                "expect_column_values_to_be_in_set",
                "critical",
                "Most values must be known categories.",
                column=column,
                value_set=list(categories),
                mostly=CATEGORY_TOLERANCE,
            ),
            _expectation(
                "expect_column_values_to_be_in_set",
                "warning",
                "Casing and whitespace variants (' yes', 'YES') are repaired in cleaning; others are "
                "ignored by the encoder.",
                column=column,
                value_set=list(categories),
            ),
        ]
    return {
        "name": spec.name,
        "expectations": expectations,
        "meta": {"generated_by": "python -m tollgate.config.suite"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the dataset spec YAML")
    parser.add_argument(
        "--target-rate",
        nargs=2,
        type=float,
        default=(0.01, 0.99),
        metavar=("MIN", "MAX"),
        help="plausible positive rate of one batch (default 0.01 0.99)",
    )
    parser.add_argument(
        "--rows",
        nargs=2,
        type=int,
        default=(100, 5_000_000),
        metavar=("MIN", "MAX"),
        help="plausible rows in one batch (default 100 5000000)",
    )
    args = parser.parse_args(argv)
    suite = suite_from_spec(load_spec(args.spec), tuple(args.target_rate), tuple(args.rows))
    json.dump(suite, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
