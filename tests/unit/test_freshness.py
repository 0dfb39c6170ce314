"""The freshness rule (nightshift/freshness.py): a night far after its newest order stops."""

from __future__ import annotations

from datetime import date

from nightshift.freshness import freshness_problem

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
