"""What a night ingests, when it is not already in the landing folder: a synthetic shop for a
demo or a first try (as `make run` does), or an Online Retail file mapped onto the contract.

These let a run started from the Prefect UI choose its data with the flow's parameters,
where the CLI has `nightshift generate` and `nightshift ingest --source online-retail`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.errors import ContractError
from nightshift.online_retail import CATALOGUE_FILE, CATALOGUE_LINES_DIR, write_landing_files
from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    loaded_archive_files,
    open_warehouse,
    orders_present,
    query_sql,
    registered_frames,
)


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
    orders_path, _ = write_landing_files(
        path,
        settings.landing_dir,
        settings.non_product_sku_pattern,
        settings.active_window_days,
        check_catalogue=lambda catalogue, orders_file: require_sold_products_kept(
            settings, catalogue, orders_file
        ),
    )
    task_logger(__name__).info("mapped %s to %s", path, orders_path)
    return orders_path


def require_sold_products_kept(
    settings: Settings, catalogue: pl.DataFrame, orders_file: str
) -> None:
    """Refuse a derived catalogue that lacks products the loaded one had and loaded orders
    still sell (file rule `keeps_sold_products`).

    Each catalogue is derived from the catalogue lines of every file mapped so far, kept in
    landing/online_retail/. A shop that cleared that folder with its loaded files had the
    next file's catalogue replace the loaded one without the earlier products, and the
    night quarantined their order lines as unknown_sku.

    Raises:
        ContractError: naming how many products, one of them and where it sells, and the
            ways out; nothing has been written.
    """
    if not settings.warehouse_path.exists():
        return
    with open_warehouse(settings, read_only=True) as con:
        archived = loaded_archive_files(con).get(f"products/{CATALOGUE_FILE}")
        if archived is None or not (settings.home / archived).exists():
            return
        with registered_frames(con, {"new_catalogue": catalogue.select("sku")}):
            dropped = query_sql(
                con,
                "raw/catalogue_products_dropped.sql",
                {"orders_file": orders_file, "archived_catalogue": str(settings.home / archived)},
            )
    if dropped:
        sku, source_file, lines = dropped[0]
        raise ContractError(
            f"landing/{CATALOGUE_LINES_DIR}/",
            "keeps_sold_products",
            f"the catalogue derived from it lacks {len(dropped):,} products that loaded orders "
            f"sell (e.g. {sku}, {lines:,} lines in {source_file}): the catalogue lines of files "
            "mapped before are gone. Map those files again first, or restore the folder; "
            "nothing was written",
        )
