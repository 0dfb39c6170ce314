"""The recommender branch: read interactions from the warehouse, train and gate the MF model,
log a child MLflow run, and build `marts.recommendations`.

IO only: the modelling is `models.recommender.fit_evaluate_and_recommend`; this module maps
customer ids and SKUs to indices and back, and writes what it returns.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from models.ranking import csr_from_pairs
from models.recommender import (
    Interactions,
    RecommenderConfig,
    RecommenderInputs,
    RecommenderOutcome,
    fit_evaluate_and_recommend,
)
from nightshift.runlog import metrics_line, progress_reporter, task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    open_warehouse,
    query_frame,
    run_sql_over_frames,
)
from tasks.branch import BranchResult
from tasks.features import feature_params
from tasks.runs import RunContext
from tasks.tracking import (
    child_run,
    log_flat,
    log_frames,
    log_torch_model,
)

REGISTERED_MODEL = "nightshift-recommender"
MART = "recommendations"
LIST_SOURCE = pl.Enum(["mf", "cold_start"])


def recommender_config(settings: Settings, n_items: int) -> RecommenderConfig:
    """The configured recommender for a catalogue of `n_items` (which "auto" starts by)."""
    return RecommenderConfig.starting_from(
        settings.recommender_init,
        n_items,
        factors=settings.recommender_factors,
        epochs=settings.recommender_epochs,
        k=settings.recommender_k,
        seed=settings.recommender_seed,
        device=settings.device,
    )


def load_inputs(
    con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date
) -> tuple[RecommenderInputs, pl.DataFrame, pl.DataFrame]:
    """The night's inputs as indices, with the customer and item frames that map them back.

    Reads the night's features (features.user_item_interactions as of `as_of`), so the
    features must have been built for `as_of` first, as the nightly flow does."""
    cutoff = as_of - timedelta(days=settings.recommender_holdout_days)
    window = timedelta(days=settings.recommender_exclude_bought_days)
    customers = query_frame(
        con,
        "recommender/customers.sql",
        {"as_of": as_of, "visitor_days": settings.recommender_visitor_days},
    ).with_row_index("user")
    items = query_frame(con, "recommender/items.sql").with_row_index("item")
    countries = customers["country"].drop_nulls().unique().sort()
    group = customers["country"].replace_strict(
        countries, pl.int_range(countries.len(), eager=True), default=-1, return_dtype=pl.Int64
    )

    def indexed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(customers.select("customer_id", "user"), on="customer_id").join(
            items.select("sku", "item"), on="sku"
        )

    def interactions(sql_file: str, params: dict[str, object]) -> Interactions:
        frame = indexed(query_frame(con, sql_file, params)).sort("user", "item")
        return Interactions(
            frame["user"].to_numpy().astype(np.int64),
            frame["item"].to_numpy().astype(np.int64),
            frame["weight"].to_numpy().astype(np.float64),
        )

    def bought(after: date, until: date) -> tuple[np.ndarray, np.ndarray]:
        frame = indexed(
            query_frame(con, "recommender/purchases_between.sql", {"after": after, "until": until})
        )
        return csr_from_pairs(
            frame["user"].to_numpy().astype(np.int64),
            frame["item"].to_numpy().astype(np.int64),
            customers.height,
        )

    inputs = RecommenderInputs(
        n_users=customers.height,
        n_items=items.height,
        # the cutoff's interactions bind the weights exactly as the features do (one mapping
        # from settings, tasks.features.feature_params), so they match `full`'s
        train=interactions(
            "recommender/interactions.sql", {**feature_params(settings, cutoff), "end_date": cutoff}
        ),
        # the features the night built for as_of: the same definition, already aggregated
        full=interactions("recommender/interactions_at_as_of.sql", {}),
        held_out=bought(cutoff, as_of),
        exclude_at_cutoff=bought(cutoff - window, cutoff),
        exclude_at_as_of=bought(as_of - window, as_of),
        active_items=items["active"].to_numpy().astype(bool),
        user_group=group.to_numpy().astype(np.int64),
        n_groups=countries.len(),
        served=customers["served"].to_numpy().astype(bool),
    )
    return inputs, customers, items


def input_digest(inputs: RecommenderInputs) -> str:
    """SHA-256 over the training interactions: same digest, same training data."""
    digest = hashlib.sha256()
    for part in (inputs.full.users, inputs.full.items, np.round(inputs.full.weights, 9)):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def recommendation_picks(outcome: RecommenderOutcome) -> pl.DataFrame:
    """The lists as (user, rank, item, score, source) index rows, padding dropped.

    Indices, not ids: the large shop's 22M rows joined to their customer ids and SKUs in
    Polars held 3.5 GB at once; DuckDB joins and sorts them within its memory limit."""
    parts = []
    for source, users, picked, scores in (
        ("mf", outcome.warm_users, outcome.warm_items, outcome.warm_scores),
        ("cold_start", outcome.cold_users, outcome.cold_items, outcome.cold_scores),
    ):
        k = picked.shape[1]
        keep = picked.ravel() >= 0
        parts.append(
            pl.DataFrame(
                {
                    "user": np.repeat(users, k)[keep],
                    "rank": np.tile(np.arange(1, k + 1), users.size)[keep],
                    "item": picked.ravel()[keep],
                    "score": scores.ravel()[keep],
                    "source": pl.Series(values=[source], dtype=LIST_SOURCE).new_from_index(
                        0, int(keep.sum())
                    ),
                },
                schema_overrides={"user": pl.UInt32, "rank": pl.Int16, "item": pl.UInt32},
            )
        )
    return pl.concat(parts)


def recommendation_frames(
    picks: pl.DataFrame, customers: pl.DataFrame, items: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """What marts/recommendations.sql reads: the picks and the frames that map their user
    and item indices back to customer ids and SKUs."""
    return {
        "recommendation_picks": picks,
        "recommendation_customers": customers.select("user", "customer_id"),
        "recommendation_items": items.select("item", "sku"),
    }


@task(name="recommender", cache_policy=NO_CACHE)
def run_recommender(settings: Settings, run: RunContext) -> BranchResult:
    """Train, evaluate and gate the recommender for `run.as_of`; build marts.recommendations."""
    logger = task_logger(__name__)
    with open_warehouse(settings) as con:
        inputs, customers, items = load_inputs(con, settings, run.as_of)
    config = recommender_config(settings, inputs.n_items)
    logger.info(
        "recommender: %d customers and visitors (%d with history, %d to serve), %d items, "
        "%d training interactions",
        inputs.n_users, np.unique(inputs.full.users).size, int(inputs.served.sum()),
        inputs.n_items, inputs.full.users.size,
    )  # fmt: skip
    with child_run(settings, run, "recommender") as child:
        log_flat(
            settings,
            child,
            params={
                **config.__dict__,
                "holdout_days": settings.recommender_holdout_days,
                "exclude_bought_days": settings.recommender_exclude_bought_days,
                "gate_margin": settings.recommender_gate_margin,
                "weight_view": settings.interaction_weight_view,
                "weight_cart": settings.interaction_weight_cart,
                "weight_purchase": settings.interaction_weight_purchase,
                "half_life_days": settings.interaction_half_life_days,
                "visitor_days": settings.recommender_visitor_days,
                "n_users": inputs.n_users,
                "n_served": int(inputs.served.sum()),
                "n_items": inputs.n_items,
                "n_interactions": inputs.full.users.size,
            },
            tags={"nightshift.input_digest": input_digest(inputs)},
        )
        progress = progress_reporter("recommender epochs", config.epochs)

        def on_epoch(record: dict[str, float]) -> None:
            epoch = int(record["epoch"])
            metrics = {k: v for k, v in record.items() if k != "epoch"}
            log_flat(settings, child, metrics=metrics, step=epoch)
            progress(epoch)
            logger.info("recommender epoch %d: %s", epoch, metrics_line(metrics))

        outcome = fit_evaluate_and_recommend(
            inputs, config, settings.recommender_gate_margin, on_epoch
        )
        progress(config.epochs)
        log_flat(
            settings,
            child,
            metrics={
                **{f"test_{k}": v for k, v in outcome.metrics.items()},
                **{f"baseline_{k}": v for k, v in outcome.baseline_metrics.items()},
                "best_epoch": outcome.best_epoch,
                "promoted": float(outcome.promoted),
            },
            tags={"nightshift.gate": outcome.gate_reason},
        )
        model, version = "baseline", None
        fitted = outcome.served_model or outcome.candidate_model
        if fitted is not None:
            from models.recommender_module import MatrixFactorization

            # The served model is registered and becomes champion once the night publishes;
            # a candidate that failed its gate is registered for inspection only.
            version = log_torch_model(
                settings,
                child,
                MatrixFactorization(fitted.user_factors, fitted.item_factors, fitted.item_bias),
                np.arange(3, dtype=np.int64) % inputs.n_users,  # a batch > 1 stays dynamic
                REGISTERED_MODEL,
            )
            log_frames(
                settings,
                child,
                "index",
                {
                    "customers.parquet": customers.select("user", "customer_id"),
                    "items.parquet": items.select("item", "sku"),
                },
            )
            if outcome.promoted:
                model = f"{REGISTERED_MODEL}/{version}"
        picks = recommendation_picks(outcome)
        run_sql_over_frames(
            settings,
            recommendation_frames(picks, customers, items),
            {"marts/recommendations.sql": run.lineage(child, model=model)},
        )
    logger.info("recommender: %s; published %s (%d rows)", outcome.gate_reason, model, picks.height)
    return BranchResult(
        name="recommender",
        marts=[MART],
        model=model,
        metrics=outcome.metrics,
        baseline_metrics=outcome.baseline_metrics,
        promoted=outcome.promoted,
        mlflow_run_id=child,
        gate=outcome.gate_reason,
        registered_name=REGISTERED_MODEL if version else None,
        registered_version=version,
    )
