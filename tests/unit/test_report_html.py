"""The HTML report's rendering (nightshift/report_html.py) on small frames: what an analyst
reads when the data cannot support a KPI, when stock is a default, and in metric tables.
The whole page in a real browser is tested in tests/integration/test_analyst_surface.py."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from nightshift.report_html import (
    ReportData,
    cell,
    headline_pairs,
    inventory_section,
    kpi_section,
    render_report,
)

AS_OF = date(2011, 12, 9)
INVENTORY_DEFAULT = "inventory: default cover and lead time for 4054 products"


def kpis(conversion: list[float | None]) -> pl.DataFrame:
    days = [AS_OF - timedelta(days=d) for d in range(len(conversion) - 1, -1, -1)]
    return pl.DataFrame(
        {
            "date": days,
            "orders": [10 + d for d in range(len(days))],
            "units": [30] * len(days),
            "gmv": [100.0] * len(days),
            "conversion_rate": conversion,
        },
        schema_overrides={"conversion_rate": pl.Float64},
    )


def test_a_kpi_the_data_cannot_support_is_named_not_drawn_empty() -> None:
    """Online Retail has no click-stream: conversion is NULL every day. An empty panel with
    an axis from 1970 looked like a broken chart; the report says why it is missing."""
    without_events = kpi_section(ReportData(as_of=AS_OF, run_id="r", kpis=kpis([None] * 5)))
    with_events = kpi_section(ReportData(as_of=AS_OF, run_id="r", kpis=kpis([0.1, 0.2] * 2)))
    assert 'data-chart="kpi-trend"' in without_events and 'data-chart="kpi-trend"' in with_events
    assert "conversion rate: NULL on every day shown" in without_events
    assert "NULL on every day" not in with_events


def test_each_branch_charts_its_gated_metric_and_a_new_branch_all_of_its_own() -> None:
    quality = pl.DataFrame(
        {
            "branch": ["recommender"] * 3 + ["demand"] * 2 + ["returns"] * 2,
            "metric": ["coverage", "ndcg", "map", "mase", "wape", "auc", "brier"],
        }
    )
    assert headline_pairs(quality) == [
        ("recommender", "ndcg"),
        ("demand", "mase"),
        ("returns", "auc"),
        ("returns", "brier"),
    ]


def test_table_cells_read_as_numbers_not_noise() -> None:
    assert cell(0.8058998062335) == "0.8059"
    assert cell(345816.71172781195) == "345,817"
    assert cell(None) == ""
    assert cell(12) == "12" and cell("at risk") == "at risk"


def test_a_defaulted_stock_is_said_where_stock_outs_are_listed() -> None:
    risk = pl.DataFrame({"sku": ["10002"], "on_hand": [0.0], "stockout_date": [AS_OF]})
    counted = inventory_section(ReportData(as_of=AS_OF, run_id="r", inventory_risk=risk))
    defaulted = inventory_section(
        ReportData(as_of=AS_OF, run_id="r", inventory_risk=risk, defaults_used=[INVENTORY_DEFAULT])
    )
    assert "a default, not a count" not in counted
    assert f"a default, not a count ({INVENTORY_DEFAULT})" in defaulted


def test_the_page_lists_the_nights_defaults_under_data_quality() -> None:
    defaults = [
        "events: none landed; sessions, conversion, bounce, CTR are NULL",
        INVENTORY_DEFAULT,
    ]
    page = render_report(
        ReportData(
            as_of=AS_OF,
            run_id="r",
            quarantine=pl.DataFrame({"source_table": ["orders"], "reason": ["x"], "rows": [3]}),
            defaults_used=defaults,
        )
    )
    listed = page[page.index('<section id="data-quality">') :]
    assert '<ul id="defaults">' in listed
    assert all(f"<li>{d}</li>" in listed for d in defaults)
    assert '<ul id="defaults">' not in render_report(ReportData(as_of=AS_OF, run_id="r"))
