"""What a night ingests, when it is not already in the landing folder: a synthetic shop for a
demo or a first try (as `make run` does), or an Online Retail file mapped onto the contract.

These let a run started from the Prefect UI choose its data with the flow's parameters,
where the CLI has `nightshift generate` and `nightshift ingest --source online-retail`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import orders_present


@task(name="generate-shop", cache_policy=NO_CACHE)
def generate_shop_if_missing(settings: Settings, profile: str, end: date) -> bool:
    """Generate the `profile` synthetic shop, its data ending on `end`, into the landing
    folder, unless orders have already landed there or been loaded from there (then nothing
    is touched: a demo never mixes into a shop's data, even one whose landing folder was
    cleared after loading). Returns whether it generated."""
    from nightshift.generator import generate_shop

    logger = task_logger(__name__)
    if present := orders_present(settings.landing_dir, settings):
        logger.info("%s; not generating", present)
        return False
    generate_shop(profile, settings.landing_dir, end=end)
    logger.info("generated the %s shop, ending %s, into %s", profile, end, settings.landing_dir)
    return True


@task(name="map-online-retail", cache_policy=NO_CACHE)
def map_online_retail(settings: Settings, path: Path) -> Path:
    """Write the Online Retail file at `path` into the landing folder as contract files
    (orders, and the catalogue derived from every such file mapped so far); returns the
    orders file. Mapping the same file again writes the same files, so ingest skips them."""
    from nightshift.online_retail import write_landing_files

    orders_path, _ = write_landing_files(
        path, settings.landing_dir, settings.non_product_sku_pattern, settings.active_window_days
    )
    task_logger(__name__).info("mapped %s to %s", path, orders_path)
    return orders_path
