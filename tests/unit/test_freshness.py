"""The data rules (nightshift/freshness.py): a night far after its newest order stops, and so
does a night whose new rows are mostly quarantined."""

from __future__ import annotations

from datetime import date

import pytest

from nightshift.freshness import freshness_problem, quarantine_problem

AS_OF = date(2026, 11, 22)


def test_a_night_within_the_allowed_age_has_no_problem() -> None:
    assert freshness_problem(AS_OF, date(2024, 1, 1), date(2026, 11, 8), 14) is None  # 14 days
    assert freshness_problem(AS_OF, date(2024, 1, 1), AS_OF, 14) is None


def test_historical_data_run_without_as_of_names_the_date_to_run() -> None:
    problem = freshness_problem(AS_OF, date(2010, 12, 1), date(2011, 12, 9), 14)
    assert problem is not None
    assert "from 2011-12-09, 5462 days earlier" in problem
    assert problem.endswith("run --as-of 2011-12-09")


def test_a_stalled_feed_is_caught_the_day_after_the_allowed_age() -> None:
    assert freshness_problem(AS_OF, date(2024, 1, 1), date(2026, 11, 7), 14) is not None  # 15
    assert freshness_problem(AS_OF, date(2024, 1, 1), date(2026, 11, 7), 0) is None  # off


def test_a_night_before_any_order_has_nothing_to_model() -> None:
    problem = freshness_problem(date(2010, 1, 1), None, None, 14)
    assert problem is not None and "no staged order on or before as_of 2010-01-01" in problem


def test_a_night_whose_new_rows_are_mostly_quarantined_names_table_reasons_and_run() -> None:
    reasons = {"bad_timestamp": 900, "null_key": 12, "bad_value": 40, "negative_price": 3}
    problem = quarantine_problem("orders", "run-7", 1_000, reasons, 0.5)
    assert problem is not None
    assert problem.startswith("orders: 955 of the 1,000 rows loaded tonight (96%) were quarantined")
    assert "(bad_timestamp 900, bad_value 40, null_key 12)" in problem  # the three main ones
    assert "NIGHTSHIFT_MAX_QUARANTINE_SHARE = 0.5" in problem and "run_id = 'run-7'" in problem
    # counts that disagree (no rows counted as loaded) do not divide by zero
    odd = quarantine_problem("orders", "run-7", 0, {"bad_timestamp": 150}, 0.5)
    assert odd is not None and "150 of the 150 rows loaded tonight (100%)" in odd


@pytest.mark.parametrize(
    ("rows_new", "quarantined", "max_share"),
    [
        (1_000, 500, 0.5),  # exactly the share allowed
        (150, 99, 0.5),  # a small file that is mostly bad: fewer than 100 rows
        (1_000, 1_000, 1.0),  # the check is off
    ],
)
def test_a_night_within_the_quarantine_share_has_no_problem(
    rows_new: int, quarantined: int, max_share: float
) -> None:
    by_reason = {"bad_timestamp": quarantined}
    assert quarantine_problem("events", "run-7", rows_new, by_reason, max_share) is None
