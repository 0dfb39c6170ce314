"""The nightly HTML report: one self-contained file an analyst can open offline or mail.

Pure rendering: frames in, HTML out. Charts are drawn with matplotlib's object API (never
pyplot's global state) and inlined as SVG; the page's one small script is inlined too (a
table of contents, and a readiness flag the browser test reads). Nothing is fetched.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import date

import polars as pl

SECTIONS = {
    "kpis": "KPI trends",
    "forecasts": "Demand forecasts for the top SKUs",
    "inventory": "Inventory risk",
    "segments": "Customer segments",
    "pricing": "Price changes",
    "quality": "Model quality against baselines",
    "data-quality": "Data quality",
}

SCRIPT = """
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(String(e.message));
  var list = document.getElementById('script-errors');
  if (list) { var li = document.createElement('li'); li.textContent = e.message; list.appendChild(li); }
});
document.addEventListener('DOMContentLoaded', function () {
  var toc = document.getElementById('toc');
  document.querySelectorAll('section[id]').forEach(function (s) {
    var a = document.createElement('a');
    a.href = '#' + s.id; a.textContent = s.querySelector('h2').textContent;
    var li = document.createElement('li'); li.appendChild(a); toc.appendChild(li);
  });
  document.body.dataset.charts = String(document.querySelectorAll('figure.chart svg').length);
  document.body.dataset.ready = window.__errors.length ? 'errors' : '1';
});
"""

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem} h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2.5rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.2rem .5rem}
th{background:#f4f4f4} figure.chart{margin:1rem 0} figure.chart svg{max-width:100%;height:auto}
.empty{color:#888;font-style:italic} .muted{color:#666;font-size:.85rem}
"""


@dataclass
class ReportData:
    as_of: date
    run_id: str | None
    kpis: pl.DataFrame | None = None
    forecasts: pl.DataFrame | None = None  # sku, date, p10, p50, p90
    actuals: pl.DataFrame | None = None  # sku, date, units_net
    inventory_risk: pl.DataFrame | None = None
    segments: pl.DataFrame | None = None  # segment_name, pca_x, pca_y
    segment_profiles: pl.DataFrame | None = None
    prices: pl.DataFrame | None = None
    quality: pl.DataFrame | None = None  # as_of, branch, metric, value, baseline_value, passed
    quarantine: pl.DataFrame | None = None  # source_table, reason, rows
    defaults_used: list[str] = field(default_factory=list)  # runs.defaults_used of the night
    notes: list[str] = field(default_factory=list)


KPI_CHARTS = ("orders", "gmv", "conversion_rate")  # sql/report/kpis.sql selects them

# The metric each branch is gated on: the one a trend chart shows (model_quality has them all).
HEADLINE_METRICS = {
    "recommender": "ndcg",
    "demand": "mase",
    "inventory": "service_level_all",
    "segments": "silhouette",
    "pricing": "expected_profit",
}


def svg(figure: object) -> str:
    """A matplotlib Figure as inline SVG markup."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})  # type: ignore[attr-defined]
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def new_figure(width: float = 10, height: float = 3.2, rows: int = 1, cols: int = 1):  # noqa: ANN201
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, axes


def tilt_dates(ax: object, size: int = 7) -> None:
    """Small, tilted tick labels so dates fit under narrow panels."""
    ax.tick_params(labelsize=size)  # type: ignore[attr-defined]
    for label in ax.get_xticklabels():  # type: ignore[attr-defined]
        label.set_rotation(30)


def chart(name: str, figure: object, caption: str) -> str:
    return (
        f'<figure class="chart" data-chart="{name}">{svg(figure)}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def cell(value: object) -> str:
    """A table cell's text: floats to 4 significant digits, or whole with separators from
    1,000 up (a metric printed to 16 digits reads as noise); NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def table_html(frame: pl.DataFrame, limit: int = 25) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.head(limit).iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def empty(what: str) -> str:
    return f'<p class="empty">{html.escape(what)} was not published for this night.</p>'


def kpi_section(data: ReportData) -> str:
    frame = data.kpis
    if frame is None or frame.is_empty():
        return empty("kpi_daily")
    # A KPI the data cannot support is NULL on every day (no click-stream: conversion): an
    # empty panel would look like a broken chart, so it is named instead.
    columns = [c for c in KPI_CHARTS if frame[c].null_count() < frame.height]
    missing = [c for c in KPI_CHARTS if c not in columns]
    note = "".join(
        f'<p class="muted">{html.escape(c.replace("_", " "))}: NULL on every day shown '
        "(the data cannot support it, e.g. no click-stream landed).</p>"
        for c in missing
    )
    if not columns:
        return note
    figure, axes = new_figure(rows=1, cols=len(columns), width=10 * len(columns) / 3, height=2.8)
    for ax, column in zip(axes[0], columns, strict=True):
        values = frame[column].to_numpy()
        ax.plot(frame["date"].to_list(), values, lw=0.8, color="#999")
        ax.plot(
            frame["date"].to_list(),
            frame[column].rolling_mean(7, min_samples=1).to_numpy(),
            lw=1.6,
            color="#1f77b4",
        )
        ax.set_title(column.replace("_", " "), fontsize=9)
        tilt_dates(ax)
    return chart("kpi-trend", figure, "Last 90 days; grey daily, blue 7-day mean.") + note


def forecast_section(data: ReportData) -> str:
    frame = data.forecasts
    if frame is None or frame.is_empty():
        return empty("demand_forecast")
    skus = frame["sku"].unique(maintain_order=True).to_list()[:4]
    figure, axes = new_figure(rows=1, cols=len(skus), height=2.8)
    for ax, sku in zip(axes[0], skus, strict=False):
        fc = frame.filter(pl.col("sku") == sku).sort("date")
        dates = fc["date"].to_list()
        ax.fill_between(
            dates, fc["p10"].to_numpy(), fc["p90"].to_numpy(), alpha=0.3, label="p10-p90"
        )
        ax.plot(dates, fc["p50"].to_numpy(), color="#1f77b4", lw=1.4, label="p50")
        if data.actuals is not None:
            act = data.actuals.filter(pl.col("sku") == sku).sort("date")
            ax.plot(
                act["date"].to_list(),
                act["units_net"].to_numpy(),
                color="#333",
                lw=0.8,
                label="actual",
            )
        ax.set_title(str(sku), fontsize=9)
        tilt_dates(ax)
    axes[0][0].legend(fontsize=7)
    return chart(
        "forecast-fans",
        figure,
        "Forecast fan (p10-p90, p50) after as_of, with the last 8 weeks of actual net units.",
    )


def inventory_section(data: ReportData) -> str:
    frame = data.inventory_risk
    if frame is None:
        return empty("inventory_plan")
    # runs.defaults_used entries start with what was defaulted (tasks/features.py)
    defaulted = [d for d in data.defaults_used if d.startswith("inventory:")]
    caveat = "".join(
        f'<p class="muted">Stock here is a default, not a count ({html.escape(d)}): '
        "read these dates as what the default would give, and land inventory snapshots.</p>"
        for d in defaulted
    )
    if frame.is_empty():
        return "<p>No product runs out within 14 days or sits at its reorder point.</p>" + caveat
    return (
        "<p>Products that run out within 14 days at median demand, or are at their reorder point:</p>"
        + caveat
        + table_html(frame)
    )


def segment_section(data: ReportData) -> str:
    frame = data.segments
    if frame is None or frame.is_empty():
        return empty("customer_segments")
    figure, axes = new_figure(width=7, height=4.5)
    ax = axes[0][0]
    for name in sorted(frame["segment_name"].unique().to_list()):
        part = frame.filter(pl.col("segment_name") == name)
        ax.scatter(part["pca_x"].to_numpy(), part["pca_y"].to_numpy(), s=4, alpha=0.6, label=name)
    ax.set_xlabel("PCA 1", fontsize=8)
    ax.set_ylabel("PCA 2", fontsize=8)
    ax.legend(fontsize=7, markerscale=3)
    profiles = table_html(data.segment_profiles) if data.segment_profiles is not None else ""
    return (
        chart(
            "segment-scatter",
            figure,
            "Customers (a sample of up to 4,000) on the first two principal components.",
        )
        + profiles
    )


def pricing_section(data: ReportData) -> str:
    frame = data.prices
    if frame is None or frame.is_empty():
        return empty("price_recommendations")
    change = (frame["recommended_price"] / frame["current_price"] - 1) * 100
    figure, axes = new_figure(rows=1, cols=2, height=3)
    axes[0][0].hist(change.to_numpy(), bins=21, color="#1f77b4")
    axes[0][0].set_title("price change, %", fontsize=9)
    top = frame.sort("profit_uplift", descending=True).head(15)
    axes[0][1].barh(
        top["sku"].to_list()[::-1], top["profit_uplift"].to_numpy()[::-1], color="#2ca02c"
    )
    axes[0][1].set_title("largest expected profit uplift", fontsize=9)
    for ax in axes[0]:
        ax.tick_params(labelsize=7)
    total = float(frame["profit_uplift"].sum())
    moved = int((frame["recommended_price"] != frame["current_price"]).sum())
    return chart(
        "price-changes",
        figure,
        "Distribution of recommended changes; SKUs with the largest uplift.",
    ) + (
        f"<p>{moved:,} of {frame.height:,} prices change; expected profit uplift over the horizon {total:,.2f}.</p>"
    )


def quality_section(data: ReportData) -> str:
    frame = data.quality
    if frame is None or frame.is_empty():
        return empty("model_quality")
    pairs = headline_pairs(frame)
    cols = min(len(pairs), 3)
    rows = -(-len(pairs) // cols)
    figure, axes = new_figure(rows=rows, cols=cols, width=3.3 * cols, height=2.6 * rows)
    for ax in axes.flat[len(pairs) :]:
        ax.set_visible(False)
    for ax, (branch, metric) in zip(axes.flat, pairs, strict=False):
        part = frame.filter((pl.col("branch") == branch) & (pl.col("metric") == metric)).sort(
            "as_of"
        )
        ax.plot(part["as_of"].to_list(), part["value"].to_numpy(), marker="o", label="model")
        if part["baseline_value"].null_count() < part.height:
            ax.plot(
                part["as_of"].to_list(),
                part["baseline_value"].to_numpy(),
                marker="x",
                ls="--",
                label="baseline",
            )
        ax.set_title(f"{branch}: {metric}", fontsize=8)
        if part.height < 8:  # a few nights: tick each (one alone got an axis of four years)
            ax.set_xticks(part["as_of"].to_list())
        tilt_dates(ax, size=6)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    latest = frame.filter(pl.col("as_of") == frame["as_of"].max())
    return chart(
        "model-quality",
        figure,
        "Each branch's headline metric against its baseline, recent nights; every metric of "
        "the night below.",
    ) + table_html(latest, limit=60)


def headline_pairs(frame: pl.DataFrame) -> list[tuple[str, str]]:
    """(branch, metric) to chart: each branch's gated metric (HEADLINE_METRICS), or all of
    a branch's metrics when it has none of those (a branch added later)."""
    pairs = frame.select("branch", "metric").unique(maintain_order=True).rows()
    chosen = [(b, m) for b, m in pairs if HEADLINE_METRICS.get(b) == m]
    covered = {b for b, _ in chosen}
    return chosen + [(b, m) for b, m in pairs if b not in covered]


def data_quality_section(data: ReportData) -> str:
    frame = data.quarantine
    defaults = "".join(f"<li>{html.escape(d)}</li>" for d in data.defaults_used)
    filled = (
        f'<p>What the data did not say, and the night filled in:</p><ul id="defaults">{defaults}</ul>'
        if defaults
        else ""
    )
    if frame is None:
        return empty("the quarantine summary") + filled
    if frame.is_empty():
        return "<p>No row was quarantined.</p>" + filled
    figure, axes = new_figure(height=0.35 * frame.height + 1)
    labels = [f"{t}: {r}" for t, r in frame.select("source_table", "reason").rows()]
    axes[0][0].barh(labels[::-1], frame["rows"].to_numpy()[::-1], color="#d62728")
    axes[0][0].tick_params(labelsize=7)
    return (
        chart("quarantine", figure, "Rows quarantined by table and reason (all loaded files).")
        + table_html(frame, 50)
        + filled
    )


def render_report(data: ReportData) -> str:
    """The whole page: every section always present (an empty one says what is missing)."""
    bodies = {
        "kpis": kpi_section,
        "forecasts": forecast_section,
        "inventory": inventory_section,
        "segments": segment_section,
        "pricing": pricing_section,
        "quality": quality_section,
        "data-quality": data_quality_section,
    }
    sections = "".join(
        f'<section id="{key}"><h2>{html.escape(SECTIONS[key])}</h2>{render(data)}</section>'
        for key, render in bodies.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>nightshift report {data.as_of}</title><style>{STYLE}</style>"
        f"<script>{SCRIPT}</script></head><body>"
        f"<h1>nightshift: the night of {data.as_of}</h1>"
        f'<p class="muted">run {html.escape(str(data.run_id))}. Self-contained: no network needed.</p>'
        f'<ul id="toc"></ul><ul id="notes">{notes}</ul><ul id="script-errors"></ul>'
        f"{sections}</body></html>"
    )
