"""Every setting nightshift reads, from `NIGHTSHIFT_*` environment variables.

This is the only module that reads the environment. Code receives a `Settings` and passes it
down; CLI flags and flow parameters override fields with `Settings.model_copy(update=...)`.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nightshift.errors import ConfigError

# What DuckDB's memory_limit takes: a size with a unit, a share of RAM, or -1 (no limit).
MEMORY_LIMIT = re.compile(r"\s*(-1|\d+(\.\d+)?\s*(%|b|bytes|[kmgt]i?b))\s*", re.IGNORECASE)
# What neither DuckDB's RE2 nor Polars' regex has: lookarounds and backreferences.
LOOKAROUND = re.compile(r"\(\?<?[=!]|\\[1-9]")
# A cron line's shape: five fields of digits, names, * , - / (and ? L W # some crons take).
CRON_FIELDS = re.compile(r"[\w*,/?#-]+(\s+[\w*,/?#-]+){4}")
CRON_MACRO = re.compile(r"@(yearly|annually|monthly|weekly|daily|midnight|hourly)")

# Stock codes that are fees, postage, manual adjustments or vouchers, not products. The list
# comes from the UCI Online Retail data (POST, DOT, M, C2, D, S, B, CRUK, BANK CHARGES,
# AMAZONFEE, gift_*); shops override it with NIGHTSHIFT_NON_PRODUCT_SKU_PATTERN.
DEFAULT_NON_PRODUCT_SKU_PATTERN = (
    r"(?i)(POST|DOT|M|C2|D|S|B|CRUK|BANK CHARGES|AMAZONFEE|ADJUST.*|TEST.*|gift_.*)"
)


def default_branch_concurrency(cores: int | None) -> int:
    """One model branch at a time per 4 cores, at least one."""
    return max(1, (cores or 1) // 4)


class Settings(BaseSettings):
    """Settings with defaults that run everything embedded on one machine."""

    model_config = SettingsConfigDict(env_prefix="NIGHTSHIFT_", extra="ignore")

    home: Path = Field(Path(".nightshift"), description="Everything a run writes lives here.")
    timezone: str = Field("UTC", description="The shop's timezone; business dates are local.")
    device: str = Field("auto", description="Torch device: auto (cuda if present), cpu, cuda.")

    mlflow_uri: str | None = Field(
        None, description="MLflow tracking URI; default is a SQLite store under the home."
    )
    mlflow_experiment: str = "nightshift"
    model_versions_kept: int = Field(
        30,
        ge=0,
        description="Registered versions kept per model (besides the champion); older ones are "
        "deleted with their model files after each night. 0 keeps every version.",
    )

    export_nights_kept: int = Field(
        0,
        ge=0,
        description="Nights of export partitions kept per dated table (the newest by as_of, "
        "and always tonight's); older ones are deleted after each night. 0 keeps every night.",
    )

    duckdb_memory_limit: str = Field(
        "1.25GB", description="DuckDB spills to disk beyond this; keeps ingest at ~1.5 GB RSS."
    )
    duckdb_threads: int | None = Field(None, description="DuckDB threads; default all cores.")

    non_product_sku_pattern: str = DEFAULT_NON_PRODUCT_SKU_PATTERN
    future_tolerance_hours: int = Field(
        24, description="A timestamp this far past its load time is quarantined as future."
    )

    default_cost_share: float = Field(
        0.6, gt=0, lt=1, description="unit_cost = share x list_price where no cost is known."
    )
    default_cover_days: int = Field(
        28, gt=0, description="on_hand = days x trailing mean demand where no inventory landed."
    )
    default_lead_time_days: int = Field(14, gt=0)
    active_window_days: int = Field(
        90, gt=0, description="A derived product is active if sold within this many days."
    )
    max_data_age_days: int = Field(
        14,
        ge=0,
        description="A night stops before modelling when its newest order is older than this "
        "(a stalled feed, or historical data run without --as-of); 0 turns the check off.",
    )
    landing_settle_seconds: float = Field(
        0,
        ge=0,
        description="A landing file modified less than this many seconds before an ingest "
        "waits for the next one (an upload that may still be under way); 0: none waits.",
    )
    max_quarantine_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A night stops before modelling when more than this share of a table's "
        "rows loaded that night is quarantined (at least 100 rows: a feed whose format "
        "changed); 1 turns the check off.",
    )

    interaction_weight_view: float = 1.0
    interaction_weight_cart: float = 3.0
    interaction_weight_purchase: float = 5.0
    interaction_half_life_days: float = Field(90.0, gt=0)

    recommender_k: int = Field(20, gt=0, description="Recommendations per customer.")
    recommender_holdout_days: int = Field(
        14, gt=0, description="The last days of purchases held out to evaluate and gate."
    )
    recommender_exclude_bought_days: int = Field(
        30, ge=0, description="Items a customer bought this recently are never recommended."
    )
    recommender_gate_margin: float = Field(
        0.05, ge=0, description="Promote MF only if NDCG@k beats popularity by this share."
    )
    recommender_visitor_days: int = Field(
        90,
        ge=0,
        description="A visitor (an id that never ordered) gets a list only if seen this "
        "recently; 0 serves every id ever seen. Customers always get one.",
    )
    recommender_factors: int = Field(64, gt=0)
    recommender_epochs: int = Field(40, gt=0, description="Upper bound; early stopping decides.")
    recommender_seed: int = 7
    recommender_init: Literal["auto", "random", "svd"] = Field(
        "auto",
        description="Starting factors: 'svd' (a truncated SVD of the interactions with "
        "popularity as the item bias, refined by the softmax epochs), 'random', or 'auto': "
        "'svd' for catalogues of at least 20 items per factor (1,280 at 64 factors), else "
        "'random'. On the medium bench shop 'svd' beat ALS in 1.7x its fit time; on small "
        "catalogues it ranks worse than 'random'.",
    )

    demand_horizon_days: int = Field(28, gt=0, description="Days forecast after as_of.")
    demand_input_days: int = Field(56, gt=6, description="Days of history the LSTM reads.")
    demand_min_history_days: int = Field(
        28, gt=0, description="Less sales history than this gets the category profile."
    )
    demand_epochs: int = Field(30, gt=0, description="Upper bound; early stopping decides.")
    demand_windows_per_epoch: int = Field(16_384, gt=0)
    demand_patience: int = Field(4, gt=0, description="Epochs without a real gain before stopping.")
    demand_min_improvement: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="Relative drop in validation pinball loss that counts as a real gain; "
        "0 counts every new low.",
    )
    demand_ema_decay: float = Field(
        0.98,
        ge=0,
        lt=1,
        description="Per-step decay of the weight average that is validated and served; 0 "
        "serves the trained weights of the best epoch.",
    )
    demand_gate_margin: float = Field(
        0.02, ge=0, lt=1, description="Promote the LSTM only if MASE < naive x (1 - margin)."
    )
    demand_arima_sample: int = Field(
        20, ge=0, description="SKUs per backtest origin also forecast by ARIMA, for reference."
    )
    demand_seed: int = 7
    inventory_service_level: float = Field(
        0.95, gt=0.5, lt=1, description="Target cycle service level for every SKU by default."
    )
    inventory_category_service_levels: dict[str, float] = Field(
        default_factory=dict,
        description='Per-category overrides as JSON, e.g. {"christmas": 0.98}.',
    )
    inventory_review_days: int = Field(7, gt=0, description="Days between order decisions.")
    inventory_min_history_days: int = Field(28, gt=0)
    inventory_yearly_season: bool = Field(
        True,
        description="Scale each SKU's forecast by its category's season a year earlier.",
    )
    inventory_intermittent_method: str = Field(
        "tsb", pattern="^(tsb|sba)$", description="Croston variant for intermittent SKUs."
    )
    inventory_backtest_weeks: int = Field(
        8, gt=0, description="Weeks of policy replay that measure the achieved service level."
    )
    inventory_gate_tolerance: float = Field(
        0.05, ge=0, description="Gate: achieved service level within this of the target."
    )
    inventory_batch_size: int = Field(100, gt=0, description="SKUs per parallel batch.")
    inventory_workers: int = Field(2, gt=0, description="Processes planning batches.")
    branch_concurrency: int = Field(
        default_factory=lambda: default_branch_concurrency(os.cpu_count()),
        gt=0,
        description="Model branches run at once (pricing always after demand). Default: one "
        "per 4 cores, at least 1: each torch or BLAS branch already uses every core, so on a "
        "small machine running them together is slower (bench/RESULTS.md).",
    )
    dask_address: str | None = Field(
        None,
        description="Dask scheduler (tcp://host:8786): run parallel batches on that cluster "
        "through prefect-dask instead of local processes. Needs the `dask` extra.",
    )
    nightly_cron: str = Field(
        "0 2 * * *", description="When the `nightly` deployment runs, in the shop's timezone."
    )
    cpu_pool: str = Field(
        "nightshift-cpu", description="Work pool the nightly, retrain and backfill deployments use."
    )
    gpu_pool: str | None = Field(
        None,
        description="Work pool of GPU workers: when set, the nightly flow runs the torch branches "
        "(recommender, demand) as runs of the `train-branch/gpu` deployment there and waits.",
    )
    gpu_deployment: str = Field(
        "train-branch/gpu", description="The deployment the torch branches are routed to."
    )
    lock_timeout_seconds: float = Field(
        6 * 3600.0,
        gt=0,
        description="How long a run waits for another run on the same home to finish.",
    )
    segments_k: int = Field(
        6, ge=0, description="Customer segments; 0 chooses k by silhouette in the range below."
    )
    segments_k_min: int = Field(3, ge=2)
    segments_k_max: int = Field(8, ge=2)
    segments_seed: int = 7
    segments_gate_margin: float = Field(
        0.1, ge=0, description="Promote only if the silhouette beats random labels by this."
    )
    pricing_horizon_days: int = Field(
        28, gt=0, description="Days of expected sales a price is chosen for."
    )
    pricing_steps: list[float] = Field(
        default_factory=lambda: [-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2],
        description="The price ladder: changes to the current price tried, as a JSON list.",
    )
    pricing_charm_endings: bool = Field(False, description="Round candidate prices to .99.")
    pricing_min_margin: float = Field(
        0.05, ge=0, description="A price must be at least unit_cost x (1 + this)."
    )
    pricing_max_change: float = Field(
        0.2, ge=0, description="A price may move at most this share from the current price."
    )
    pricing_category_band: float | None = Field(
        None, ge=0, description="Keep each category's mean price index within 1 +- this."
    )
    pricing_solver: str = Field(
        "auto", description="auto (HiGHS when installed, else CBC), highs or cbc."
    )
    pricing_time_limit_seconds: float = Field(60.0, gt=0)
    pricing_mip_gap: float = Field(0.001, ge=0, description="Relative MIP gap to stop at.")
    pricing_history_days: int = Field(
        730, gt=27, description="Days of sales the elasticity regressions use."
    )
    pricing_default_elasticity: float = Field(
        -1.5, lt=0, description="Where neither a SKU nor its category has enough data."
    )
    holidays: list[date] = Field(
        default_factory=list,
        description="Holiday dates for the forecaster's calendar, as a JSON list.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name like Europe/London)"
            ) from exc
        return value

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not MEMORY_LIMIT.fullmatch(value):
            raise ValueError(
                f"duckdb_memory_limit {value!r} is not a size DuckDB takes: a number and a unit "
                "(500MB, 1.25GB, 2GiB), a share of RAM (50%), or -1 for no limit"
            )
        return value

    @field_validator("non_product_sku_pattern")
    @classmethod
    def _sku_pattern(cls, value: str) -> str:
        # DuckDB (RE2) and Polars (Rust regex) run it; both lack lookarounds and
        # backreferences, which Python's re would accept
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"non_product_sku_pattern {value!r} is not a regular expression: {exc}"
            ) from None
        if LOOKAROUND.search(value):
            raise ValueError(
                f"non_product_sku_pattern {value!r} uses a lookaround or a backreference, "
                "which DuckDB's and Polars' regular expressions do not have"
            )
        return value

    @field_validator("nightly_cron")
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        # the shape only: Prefect checks each field's values when the schedule is made, but
        # that is at `serve` or `deploy`, long after a typo was set
        if not (CRON_MACRO.fullmatch(value.strip()) or CRON_FIELDS.fullmatch(value.strip())):
            raise ValueError(
                f"nightly_cron {value!r} is not a cron expression: five fields, minute hour "
                "day-of-month month day-of-week (e.g. '0 2 * * *'), or @daily"
            )
        return value

    @field_validator("pricing_solver")
    @classmethod
    def _known_solver(cls, value: str) -> str:
        if value not in {"auto", "highs", "cbc"}:
            raise ValueError(f"pricing_solver must be auto, highs or cbc, not {value!r}")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in {"auto", "cpu", "cuda"} and not value.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {value!r}")
        return value

    # Paths under the home: one place names them all.
    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def raw_archive_dir(self) -> Path:
        return self.home / "raw"

    @property
    def marts_path(self) -> Path:
        return self.home / "marts.duckdb"

    @property
    def published_copy_dir(self) -> Path:
        """The night's own copy of what it last published (tasks/publish.py), hidden: the next
        night reads it instead of marts.duckdb, which an analyst's session may hold."""
        return self.home / ".published"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def lock_path(self) -> Path:
        return self.home / "run.lock"

    @property
    def services_dir(self) -> Path:
        return self.home / "services"

    @property
    def branch_results_dir(self) -> Path:
        return self.home / "runs"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def prefect_servers_dir(self) -> Path:
        """Records of the ephemeral Prefect API servers runs started (nightshift.prefect_api)."""
        return self.prefect_home / "servers"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, else SQLite under the home."""
        if self.mlflow_uri:
            return self.mlflow_uri
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    def ignored_mlflow_variable(self) -> str | None:
        """A warning when MLFLOW_TRACKING_URI names another store than the one used, for
        doctor and the night's log: a machine set up for an MLflow server usually has it.
        It is not honoured: MLflow sets it in the process itself once a model is logged, so a
        later read in the same process (a served flow, the tests) would take one home's
        store for another's."""
        value = os.environ.get("MLFLOW_TRACKING_URI")
        if not value or value == self.tracking_uri:
            return None
        return (
            f"MLFLOW_TRACKING_URI={value} is ignored and runs are logged to {self.tracking_uri}: "
            f"set NIGHTSHIFT_MLFLOW_URI={value} to log there"
        )

    @property
    def artifact_location(self) -> str:
        return (self.mlflow_dir / "artifacts").resolve().as_uri()

    def today(self) -> date:
        """Today's date in the shop's timezone."""
        return datetime.now(ZoneInfo(self.timezone)).date()

    def default_as_of(self) -> date:
        """The business date a nightly run covers when none is given: yesterday, shop time."""
        return self.today() - timedelta(days=1)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, apply overrides, and fail early if they are bad."""
    try:
        settings = Settings()
        clean = {key: value for key, value in overrides.items() if value is not None}
        if not clean:
            return settings
        return Settings.model_validate({**settings.model_dump(), **clean})
    except ValueError as exc:
        raise ConfigError(f"bad nightshift setting: {exc}") from exc
