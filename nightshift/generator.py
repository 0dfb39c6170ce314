"""Synthetic shop: landing files for orders, events, products and inventory, plus the truth.

The generator plants structure that each model family must recover, and records it under
`truth/` beside the landing folder:

- **Taste** (`truth/user_factors.parquet`, `truth/item_factors.parquet`): every customer u and
  item i has a latent vector (dimension 8); affinity is `alpha * u.v + popularity_i` with a
  Zipf-like popularity bias. Each customer considers the 48 (or fewer) items with the highest
  Gumbel-perturbed affinity — their consideration set — and every basket and product view is
  drawn from that set (with weights softmax(affinity)), so purchases and views follow the
  factors with a popularity skew.
- **Demand** (`truth/sku_params.parquet`, `truth/prices.parquet`): orders arrive per customer
  at a rate times a global multiplier with weekly seasonality (weekends ~35% lower), yearly
  seasonality per category (e.g. christmas peaks in December, garden in June) and 15%/year
  growth. In an order each considered item appears a Poisson number of times with mean
  `basket * softmax(affinity)_i * m_i(t)`, where
  `m_i(t) = yearly_cat(t) * exp(trend_i * years) * (price_i(t) / base_price_i) ** elasticity_i`,
  so a SKU's expected daily units are proportional to `m_i(t)` times the day's order volume.
  Prices move in steps every few weeks (-20%..+15%), so elasticity (-0.4..-3.5, by category)
  is identifiable from the data. SKUs launch late (about 8%) or are discontinued (about 5%).
- **Customers** (`truth/customers.parquet`): six archetypes that differ in rate, basket,
  units per line and lifetime: champion, loyal, wholesale, occasional, new, lapsed.
- **Returns**: about 3% of lines are returned 1-30 days later as order `R<order_id>` with
  the same line number and a negative quantity.
- **Inventory**: one snapshot per SKU at the end date with lead times by category. Stock
  covers 3-60 days of the SKU's demand but is at least a case of 1-6 units, and about 5% of
  SKUs are out of stock.
- **Dirty rows** (`truth/dirty_counts.json`): exact duplicates and rows that break one rule
  each (null_key, bad_value, bad_timestamp, future_timestamp, negative_price,
  non_product_sku, stock_adjustment, unknown_sku, bad_event_type, duplicate_key_conflict), at
  known counts per table. Every other row is clean, so the planted counts are exactly what
  ingest must quarantine and count as duplicates.

Output is deterministic for a (profile, seed, end date). Customers are generated in chunks
and each chunk's orders are written as monthly files, so `large` never holds all lines at once.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from nightshift.errors import ConfigError

log = logging.getLogger(__name__)

FACTOR_DIM = 8
AFFINITY_SCALE = 1.2
WEEKLY_PROFILE = np.array([1.05, 1.10, 1.10, 1.05, 1.00, 0.62, 0.72])  # Monday first
GROWTH_PER_YEAR = 0.15
RETURN_RATE = 0.03
# Distinct lines per unit of basket mean: Poisson item counts repeat items (a count of 2 is
# one line) and leave some orders empty. Measured on tiny and small (0.76, 0.79).
LINES_PER_BASKET_UNIT = 0.78


@dataclass(frozen=True)
class Profile:
    name: str
    customers: int
    skus: int
    days: int
    lines_target: int
    customer_chunk: int = 25_000


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("tiny", 300, 60, 180, 8_000),
        Profile("small", 5_000, 500, 730, 300_000),
        Profile("medium", 50_000, 5_000, 730, 3_000_000),
        Profile("large", 500_000, 20_000, 730, 30_000_000),
    )
}


@dataclass(frozen=True)
class Category:
    name: str
    peak_day: int  # day of year of the seasonal peak
    amplitude: float  # log-amplitude of yearly seasonality
    elasticity: float  # category mean price elasticity
    price: float  # median base price
    lead_time_days: int


CATEGORIES = (
    Category("christmas", 350, 1.2, -1.6, 6.0, 28),
    Category("garden", 170, 0.6, -1.2, 14.0, 21),
    Category("kitchen", 0, 0.05, -2.2, 9.0, 14),
    Category("home_decor", 320, 0.3, -1.8, 18.0, 21),
    Category("stationery", 245, 0.35, -2.6, 3.5, 7),
    Category("toys", 340, 0.5, -1.4, 12.0, 28),
    Category("bags", 120, 0.1, -2.0, 8.0, 14),
    Category("candles", 310, 0.45, -1.0, 5.0, 10),
)


@dataclass(frozen=True)
class Archetype:
    name: str
    share: float
    rate: float  # relative order rate
    basket: float  # mean lines per order
    units: float  # mean units per line
    lifetime: str  # always | new | lapsed


ARCHETYPES = (
    Archetype("champion", 0.12, 4.0, 4.0, 2.0, "always"),
    Archetype("loyal", 0.22, 1.6, 3.0, 1.6, "always"),
    Archetype("wholesale", 0.08, 1.0, 6.0, 12.0, "always"),
    Archetype("occasional", 0.30, 0.35, 2.0, 1.3, "always"),
    Archetype("new", 0.12, 2.0, 2.5, 1.5, "new"),
    Archetype("lapsed", 0.16, 1.5, 2.5, 1.5, "lapsed"),
)

COUNTRIES = ("United Kingdom", "Germany", "France", "Netherlands", "Ireland", "Spain")
COUNTRY_WEIGHTS = (0.7, 0.09, 0.08, 0.05, 0.05, 0.03)
NON_PRODUCT_CODES = ("POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE", "gift_0001_20")
BAD_NUMBERS = ("two", "1.5", "n/a", "3,0")

ORDER_REASONS = (
    "null_key", "bad_value", "bad_timestamp", "future_timestamp", "negative_price",
    "non_product_sku", "stock_adjustment", "unknown_sku", "duplicate_key_conflict",
)  # fmt: skip
EVENT_REASONS = ("null_key", "bad_timestamp", "future_timestamp", "bad_event_type", "unknown_sku")
PRODUCT_REASONS = ("null_key", "negative_price", "duplicate_key_conflict")
INVENTORY_REASONS = ("null_key", "bad_value", "unknown_sku")
REASONS = {
    "orders": ORDER_REASONS,
    "events": EVENT_REASONS,
    "products": PRODUCT_REASONS,
    "inventory": INVENTORY_REASONS,
}


@dataclass(frozen=True)
class DirtyMix:
    """How many dirty rows to plant: a rate of the clean rows per reason, or exact counts.

    `counts[table][reason]` (reason `duplicate` for exact copies) wins over the rate. Counts
    are planted per file in proportion to its clean rows, and the exact totals are returned.
    """

    rate: float = 0.002
    duplicate_rate: float = 0.005
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def wanted(self, table: str, clean_rows: int, total_rows: int) -> dict[str, int]:
        """Dirty rows of each reason for one file holding `clean_rows` of the table's total."""
        share = clean_rows / total_rows if total_rows else 0.0
        out = {}
        for reason in (*REASONS[table], "duplicate"):
            if table in self.counts and reason in self.counts[table]:
                out[reason] = _share_of(self.counts[table][reason], share)
            else:
                rate = self.duplicate_rate if reason == "duplicate" else self.rate
                minimum = 1 if table in ("products", "inventory") else 0
                out[reason] = max(minimum, int(round(rate * total_rows))) if share else 0
                out[reason] = _share_of(out[reason], share)
        return out


def _share_of(total: int, share: float) -> int:
    return int(np.floor(total * share + 1e-9)) if share < 1 else total


# --------------------------------------------------------------------------------------------
# The planted world


@dataclass
class World:
    """Everything planted that is not a row: factors, parameters, price paths."""

    profile: Profile
    start: date
    end: date
    customer_ids: np.ndarray
    archetype: np.ndarray
    country: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    user_factors: np.ndarray
    sku_ids: np.ndarray
    category: np.ndarray
    item_factors: np.ndarray
    popularity: np.ndarray
    base_price: np.ndarray
    unit_cost: np.ndarray
    elasticity: np.ndarray
    trend: np.ndarray
    launch_day: np.ndarray
    retire_day: np.ndarray
    price: np.ndarray  # skus x days
    day_multiplier: np.ndarray  # days
    item_multiplier: np.ndarray  # skus x days (0 before launch / after retirement)

    @property
    def days(self) -> int:
        return self.profile.days


def build_world(profile: Profile, seed: int, end: date) -> World:
    """Draw every planted parameter for a profile; deterministic for (profile, seed, end)."""
    rng = np.random.default_rng([seed, 1])
    n_c, n_s, n_d = profile.customers, profile.skus, profile.days
    start = end - timedelta(days=n_d - 1)
    dates = np.arange(np.datetime64(start), np.datetime64(end) + 1)
    doy = (dates - dates.astype("datetime64[Y]")).astype(int) + 1
    dow = (dates.astype("datetime64[D]").astype(int) - 4) % 7  # 1970-01-01 was a Thursday
    years = np.arange(n_d) / 365.25

    shares = np.array([a.share for a in ARCHETYPES])
    archetype = rng.choice(len(ARCHETYPES), size=n_c, p=shares / shares.sum())
    first_day = np.zeros(n_c, dtype=np.int64)
    last_day = np.full(n_c, n_d - 1, dtype=np.int64)
    for idx, arch in enumerate(ARCHETYPES):
        members = archetype == idx
        count = int(members.sum())
        if arch.lifetime == "always":
            first_day[members] = rng.integers(0, max(1, n_d // 3), count)
        elif arch.lifetime == "new":
            new_lo = max(0, n_d - 60)
            first_day[members] = rng.integers(new_lo, max(new_lo + 1, n_d - 7), count)
        else:  # lapsed: active early, gone for the last ~40% of the period
            first_day[members] = rng.integers(0, max(1, n_d // 6), count)
            last_day[members] = rng.integers(int(n_d * 0.35), int(n_d * 0.6), count)

    n_cat = len(CATEGORIES)
    category = rng.integers(0, n_cat, n_s)
    cat_center = rng.normal(0, 1, (n_cat, FACTOR_DIM)) * 0.8
    item_factors = (cat_center[category] + rng.normal(0, 0.7, (n_s, FACTOR_DIM))) / np.sqrt(
        FACTOR_DIM
    )
    user_factors = rng.normal(0, 1, (n_c, FACTOR_DIM)) / np.sqrt(FACTOR_DIM) * 2.0
    rank = rng.permutation(n_s) + 1
    popularity = -0.9 * np.log(rank) + 0.9 * np.log(n_s) / 2

    cat_price = np.array([c.price for c in CATEGORIES])
    base_price = np.round(cat_price[category] * np.exp(rng.normal(0, 0.45, n_s)), 2) + 0.49
    unit_cost = np.round(base_price * rng.uniform(0.35, 0.65, n_s), 2)
    cat_elasticity = np.array([c.elasticity for c in CATEGORIES])
    elasticity = np.clip(cat_elasticity[category] + rng.normal(0, 0.45, n_s), -3.5, -0.4)
    trend = rng.normal(0, 0.2, n_s)

    launch_day = np.zeros(n_s, dtype=np.int64)
    late = rng.random(n_s) < 0.08
    launch_lo = max(1, n_d - 90)
    launch_day[late] = rng.integers(launch_lo, max(launch_lo + 1, n_d - 14), int(late.sum()))
    retire_day = np.full(n_s, n_d, dtype=np.int64)
    retired = (~late) & (rng.random(n_s) < 0.05)
    retire_day[retired] = rng.integers(n_d // 2, max(n_d // 2 + 1, n_d - 30), int(retired.sum()))

    price = _price_paths(rng, base_price, n_d)

    amp = np.array([c.amplitude for c in CATEGORIES])
    peak = np.array([c.peak_day for c in CATEGORIES])
    yearly = np.exp(amp[:, None] * np.cos(2 * np.pi * (doy[None, :] - peak[:, None]) / 365.25))
    yearly /= yearly.mean(axis=1, keepdims=True)
    alive_item = (np.arange(n_d)[None, :] >= launch_day[:, None]) & (
        np.arange(n_d)[None, :] < retire_day[:, None]
    )
    item_multiplier = (
        yearly[category]
        * np.exp(trend[:, None] * years[None, :])
        * (price / base_price[:, None]) ** elasticity[:, None]
        * alive_item
    )
    global_yearly = np.exp(0.25 * np.cos(2 * np.pi * (doy - 340) / 365.25))
    day_multiplier = WEEKLY_PROFILE[dow] * global_yearly * np.exp(GROWTH_PER_YEAR * years)

    country = rng.choice(len(COUNTRIES), size=n_c, p=COUNTRY_WEIGHTS)
    return World(
        profile=profile,
        start=start,
        end=end,
        customer_ids=pl.select(customer_code(pl.int_range(n_c))).to_series().to_numpy(),
        archetype=archetype,
        country=country,
        first_day=first_day,
        last_day=last_day,
        user_factors=user_factors,
        sku_ids=pl.select(sku_code(pl.int_range(n_s))).to_series().to_numpy(),
        category=category,
        item_factors=item_factors,
        popularity=popularity,
        base_price=base_price,
        unit_cost=unit_cost,
        elasticity=elasticity,
        trend=trend,
        launch_day=launch_day,
        retire_day=retire_day,
        price=price,
        day_multiplier=day_multiplier,
        item_multiplier=item_multiplier,
    )


def _price_paths(rng: np.random.Generator, base_price: np.ndarray, n_days: int) -> np.ndarray:
    """Step price paths: a new multiplier of the base price every ~5 weeks per SKU."""
    steps = np.array([0.8, 0.85, 0.9, 0.95, 1.0, 1.0, 1.0, 1.05, 1.1, 1.15])
    n_s = base_price.size
    n_segments = n_days // 7 + 2
    lengths = rng.geometric(1 / 35, size=(n_s, n_segments))
    boundaries = np.cumsum(lengths, axis=1)
    day = np.arange(n_days)
    segment = np.empty((n_s, n_days), dtype=np.int64)
    for s in range(n_s):  # searchsorted per row; n_skus iterations of vectorised work
        segment[s] = np.searchsorted(boundaries[s], day, side="right")
    multipliers = rng.choice(steps, size=(n_s, n_segments + 1))
    multipliers[:, 0] = 1.0
    mult = np.take_along_axis(multipliers, segment, axis=1)
    return np.round(base_price[:, None] * mult, 2)


def expected_lines_rate(world: World) -> float:
    """Orders per unit of customer rate per day that hits the profile's order-line target."""
    rate = np.array([a.rate for a in ARCHETYPES])[world.archetype]
    basket = np.array([a.basket for a in ARCHETYPES])[world.archetype]
    alive_days = (world.last_day - world.first_day + 1).clip(min=0)
    mean_mult = world.day_multiplier.mean()
    lines = (rate * basket * alive_days).sum() * mean_mult
    return world.profile.lines_target / (lines * LINES_PER_BASKET_UNIT * (1 + RETURN_RATE))


# --------------------------------------------------------------------------------------------
# Clean rows


def consideration_sets(
    world: World, customers: np.ndarray, rng: np.random.Generator, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the item indices they consider and the affinity of each.

    Computed in blocks of customers so the customers x items matrix never exists whole.
    """
    size = min(48, max(4, world.profile.skus // 2))
    items = np.empty((customers.size, size), dtype=np.int64)
    affinity = np.empty((customers.size, size))
    for lo in range(0, customers.size, block):
        part = customers[lo : lo + block]
        full = AFFINITY_SCALE * world.user_factors[part] @ world.item_factors.T
        full += world.popularity[None, :]
        top = np.argpartition(-(full + rng.gumbel(size=full.shape)), size - 1, axis=1)[:, :size]
        items[lo : lo + block] = top
        affinity[lo : lo + block] = np.take_along_axis(full, top, axis=1)
    return items, affinity


def draw_orders(
    world: World,
    customers: np.ndarray,
    sets: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    block: int = 100_000,
) -> pl.DataFrame:
    """Order lines for a chunk of customers (indices into the world's customers).

    Returns one row per line with `order_key` (0.. in order of day), `line_no`, customer,
    guest flag, sku index, day, second of day, quantity and channel.
    """
    arch = world.archetype[customers]
    rate = np.array([a.rate for a in ARCHETYPES])[arch] * expected_lines_rate(world)
    basket = np.array([a.basket for a in ARCHETYPES])[arch]
    units = np.array([a.units for a in ARCHETYPES])[arch]
    first, last = world.first_day[customers], world.last_day[customers]
    cust_parts, day_parts = [], []
    for day in range(world.days):
        alive = (first <= day) & (day <= last)
        counts = rng.poisson(rate * world.day_multiplier[day] * alive)
        who = np.flatnonzero(counts)
        cust_parts.append(np.repeat(who, counts[who]))
        day_parts.append(np.full(int(counts[who].sum()), day))
    cust_local = np.concatenate(cust_parts)
    order_day = np.concatenate(day_parts)
    n_orders = cust_local.size
    items, affinity = sets
    share = np.exp(affinity - affinity.max(axis=1, keepdims=True))
    share /= share.sum(axis=1, keepdims=True)
    line_parts = []
    for lo in range(0, n_orders, block):
        sl = slice(lo, lo + block)
        who = cust_local[sl]
        # Each considered item enters the order a Poisson number of times with mean
        # basket x share x m_i(t): expected units stay proportional to the planted multiplier
        # (seasonality, trend, price effect), with no saturation for favourite items.
        lam = (
            basket[who, None] * share[who] * world.item_multiplier[items[who], order_day[sl, None]]
        )
        counts = rng.poisson(lam)
        order_idx, pos = np.nonzero(counts)
        line_parts.append((order_idx + lo, items[who[order_idx], pos], counts[order_idx, pos]))
    order_idx = np.concatenate([p[0] for p in line_parts])
    line_no = np.arange(order_idx.size) - np.searchsorted(order_idx, order_idx) + 1
    seconds = rng.integers(7 * 3600, 22 * 3600, n_orders)
    guest = rng.random(n_orders) < 0.06
    web = rng.random(n_orders) < 0.7
    per_unit = 1 + rng.poisson(units[cust_local[order_idx]] - 1)
    quantity = np.concatenate([p[2] for p in line_parts]) * per_unit
    return pl.DataFrame(
        {
            "order_key": order_idx.astype(np.int64),
            "line_no": line_no.astype(np.int64),
            "customer": customers[cust_local[order_idx]],
            "guest": guest[order_idx],
            "sku_idx": np.concatenate([p[1] for p in line_parts]),
            "day": order_day[order_idx],
            "second": seconds[order_idx],
            "quantity": quantity.astype(np.int64),
            "channel": np.where(web[order_idx], "web", "app"),
        }
    )


def _timestamps(world: World, day: np.ndarray, second: np.ndarray) -> np.ndarray:
    start = np.datetime64(world.start, "s")
    seconds = (day.astype(np.int64) * 86400 + second).astype("timedelta64[s]")
    return (start + seconds).astype("datetime64[ms]")


def order_rows(
    world: World, lines: pl.DataFrame, chunk: int, rng: np.random.Generator
) -> pl.DataFrame:
    """Contract order rows (as text) for a chunk's lines, with returns appended."""
    sku_idx = lines["sku_idx"].to_numpy()
    day = lines["day"].to_numpy()
    customer = lines["customer"].to_numpy()
    ts = _timestamps(world, day, lines["second"].to_numpy())
    sales = pl.DataFrame(
        {
            "order_id": lines["order_key"],
            "line_no": lines["line_no"],
            "customer_id": customer,
            "sku": sku_idx,
            "quantity": lines["quantity"],
            "unit_price": world.price[sku_idx, day],
            "ordered_at": ts,
            "country": np.array(COUNTRIES)[world.country[customer]],
            "channel": lines["channel"],
        }
    ).with_columns(
        pl.format(
            "O{}{}", pl.lit(f"{chunk:02d}"), pl.col("order_id").cast(pl.String).str.zfill(8)
        ).alias("order_id"),
        pl.when(lines["guest"])
        .then(None)
        .otherwise(customer_code(pl.col("customer_id")))
        .alias("customer_id"),
        sku_code(pl.col("sku")).alias("sku"),
    )
    returned = rng.random(sales.height) < RETURN_RATE
    delay = rng.integers(1, 31, sales.height) * 86400 + rng.integers(-3600, 3600, sales.height)
    return_ts = ts + delay.astype("timedelta64[s]")
    returned &= return_ts <= (np.datetime64(world.end, "s") + np.timedelta64(86399, "s"))
    back = rng.integers(1, lines["quantity"].to_numpy() + 1)
    returns = sales.filter(returned).with_columns(
        ("R" + pl.col("order_id")).alias("order_id"),
        (-pl.Series(back[returned])).alias("quantity"),
        pl.Series(return_ts[returned]).alias("ordered_at"),
    )
    both = pl.concat([sales, returns]).sort("ordered_at", "order_id", "line_no")
    return both.with_columns(
        pl.col("line_no").cast(pl.String),
        pl.col("quantity").cast(pl.String),
        pl.col("unit_price").round(2).cast(pl.String),
        pl.col("ordered_at").dt.strftime("%Y-%m-%d %H:%M:%S"),
    )


def customer_code(index: pl.Expr) -> pl.Expr:
    """Customer ids (C0000001, ...) from 0-based indices: the text of World.customer_ids."""
    return pl.format("C{}", (index + 1).cast(pl.String).str.zfill(7))


def sku_code(index: pl.Expr) -> pl.Expr:
    """SKU codes (SKU000001, ...) from 0-based indices: the text of World.sku_ids."""
    return pl.format("SKU{}", (index + 1).cast(pl.String).str.zfill(6))


EVENT_KINDS = {0: "impression", 1: "view", 2: "add_to_cart", 3: "purchase"}


def event_rows(
    world: World,
    lines: pl.DataFrame,
    customers: np.ndarray,
    sets: tuple[np.ndarray, np.ndarray],
    chunk: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Click-stream for a chunk: one purchase session per order plus browse-only sessions.

    A purchase session shows, per line, an impression, a view, an add_to_cart and a purchase,
    plus one impression of another considered item that was not clicked; guests appear as
    `anon-<chunk>-<session>`. Browse sessions (one per two orders, spread evenly over the
    customers' active days) come in two kinds: 25% land
    on a product page and leave (one view: a bounce); the rest view 1-4 considered items, each
    after an impression, plus one impression that was not clicked. Rows are built as integer
    codes and turned into text once, at the end, to keep memory low.
    """
    items, affinity = sets
    order_first = lines.group_by("order_key").agg(pl.all().first()).sort("order_key")
    n_orders = order_first.height

    kind_idx = np.tile(np.arange(4, dtype=np.int8), lines.height)
    picked = lines.select("order_key", "guest", "customer", "sku_idx", "day", "second", "line_no")
    picked = picked[np.repeat(np.arange(lines.height), 4)]
    purchase = pl.DataFrame(
        {
            "browse": np.zeros(picked.height, dtype=bool),
            "session": picked["order_key"],
            "guest": picked["guest"],
            "customer": picked["customer"],
            "sku_idx": picked["sku_idx"],
            "kind": kind_idx,
            "ts": _timestamps(
                world,
                picked["day"].to_numpy(),
                picked["second"].to_numpy()
                - 600
                + kind_idx * 60
                + picked["line_no"].to_numpy() * 7,
            ),
        }
    )
    del picked
    local = np.searchsorted(customers, order_first["customer"].to_numpy())
    unclicked = pl.DataFrame(
        {
            "browse": np.zeros(n_orders, dtype=bool),
            "session": order_first["order_key"],
            "guest": order_first["guest"],
            "customer": order_first["customer"],
            "sku_idx": items[local, rng.integers(0, items.shape[1], n_orders)],
            "kind": np.zeros(n_orders, dtype=np.int8),
            "ts": _timestamps(
                world, order_first["day"].to_numpy(), order_first["second"].to_numpy() - 900
            ),
        }
    )

    n_browse = n_orders // 2
    # Browsers are drawn per customer-day, not per customer: drawn per customer, a customer
    # acquired in the last weeks got as many browse sessions as a two-year one, all in those
    # weeks, and sessions tripled in the final month while conversion fell from 0.74 to 0.52.
    alive = (world.last_day[customers] - world.first_day[customers] + 1).clip(min=1)
    who = rng.choice(customers.size, n_browse, p=alive / alive.sum())
    day = rng.integers(world.first_day[customers[who]], world.last_day[customers[who]] + 1)
    bounce = rng.random(n_browse) < 0.25
    n_views = np.where(bounce, 1, 1 + rng.binomial(3, 0.3, n_browse))
    sess = np.repeat(np.arange(n_browse), n_views)
    pos = np.arange(sess.size) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    probs = np.exp(affinity - affinity.max(axis=1, keepdims=True))
    cum = (probs / probs.sum(axis=1, keepdims=True)).cumsum(axis=1)
    pick = (cum[who[sess]] < rng.random(sess.size)[:, None]).sum(axis=1)
    secs = rng.integers(7 * 3600, 22 * 3600, n_browse)
    views = pl.DataFrame(
        {
            "browse": np.ones(sess.size, dtype=bool),
            "session": sess,
            "guest": np.zeros(sess.size, dtype=bool),
            "customer": customers[who[sess]],
            "sku_idx": items[who[sess], np.minimum(pick, items.shape[1] - 1)],
            "kind": np.ones(sess.size, dtype=np.int8),
            "ts": _timestamps(world, day[sess], secs[sess] + pos * 45),
        }
    )
    shown = views.filter(~pl.Series(bounce[sess])).with_columns(
        pl.lit(0, dtype=pl.Int8).alias("kind"), pl.col("ts") - pl.duration(seconds=20)
    )
    browsing = np.flatnonzero(~bounce)
    ignored = pl.DataFrame(
        {
            "browse": np.ones(browsing.size, dtype=bool),
            "session": browsing,
            "guest": np.zeros(browsing.size, dtype=bool),
            "customer": customers[who[browsing]],
            "sku_idx": items[who[browsing], rng.integers(0, items.shape[1], browsing.size)],
            "kind": np.zeros(browsing.size, dtype=np.int8),
            "ts": _timestamps(world, day[browsing], secs[browsing] - 30),
        }
    )
    frames = [purchase, unclicked, views, shown, ignored]
    schema = {"session": pl.Int64, "customer": pl.Int64, "sku_idx": pl.Int64, "kind": pl.Int8}
    codes = pl.concat([f.cast(schema) for f in frames]).sort("ts", "browse", "session")
    prefix = pl.when(pl.col("browse")).then(pl.lit("B")).otherwise(pl.lit("S"))
    return codes.select(
        pl.when(pl.col("guest"))
        .then(pl.format("anon-{}-{}", pl.lit(chunk), pl.col("session")))
        .otherwise(customer_code(pl.col("customer")))
        .alias("user_id"),
        pl.format("{}{}-{}", prefix, pl.lit(chunk), pl.col("session")).alias("session_id"),
        sku_code(pl.col("sku_idx")).alias("sku"),
        pl.col("kind").replace_strict(EVENT_KINDS, return_dtype=pl.String).alias("event_type"),
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
    )


def product_rows(world: World) -> pl.DataFrame:
    """The catalogue: names from category and colour, cost, list price, active flag."""
    colours = np.array(["RED", "BLUE", "WHITE", "PINK", "GREEN", "GOLD", "IVORY", "BLACK"])
    nouns = np.array(["SET", "HOLDER", "BOX", "LANTERN", "TIN", "JAR", "SIGN", "BAG"])
    idx = np.arange(world.profile.skus)
    cat = np.array([c.name for c in CATEGORIES])[world.category]
    names = [
        f"{colours[i % 8]} {cat[i].replace('_', ' ').upper()} {nouns[(i // 8) % 8]} {i}"
        for i in idx
    ]
    return pl.DataFrame(
        {
            "sku": world.sku_ids,
            "name": names,
            "category": cat,
            "unit_cost": np.round(world.unit_cost, 2).astype(str),
            "list_price": np.round(world.base_price, 2).astype(str),
            "active": np.where(world.retire_day < world.days, "false", "true"),
        }
    )


def inventory_rows(world: World, daily_units: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """One snapshot per SKU at the end date; some SKUs are out of stock.

    A shop stocks at least a case of what it lists: days of cover alone left 60% of the
    `large` catalogue (its slow sellers) at zero, which no price can sell."""
    lead = np.array([c.lead_time_days for c in CATEGORIES])[world.category]
    cover = rng.uniform(3, 60, world.profile.skus)
    case = rng.integers(1, 7, world.profile.skus)
    on_hand = np.maximum(np.round(daily_units * cover), case).astype(np.int64)
    on_hand[rng.random(world.profile.skus) < 0.05] = 0
    on_order = np.where(rng.random(world.profile.skus) < 0.3, np.round(daily_units * lead), 0)
    std = pl.Series(np.round(lead * rng.uniform(0.1, 0.3, world.profile.skus), 1)).cast(pl.String)
    std = std.scatter(np.flatnonzero(rng.random(world.profile.skus) < 0.3), None)
    return pl.DataFrame(
        {
            "sku": world.sku_ids,
            "on_hand": on_hand.astype(str),
            "on_order": on_order.astype(np.int64).astype(str),
            "lead_time_days": lead.astype(str),
            "lead_time_std_days": std,
            "as_of": np.full(world.profile.skus, world.end.isoformat()),
        }
    )


# --------------------------------------------------------------------------------------------
# Dirty rows


def plant_dirty_rows(
    clean: pl.DataFrame, table: str, wanted: Mapping[str, int], rng: np.random.Generator
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Insert dirty rows into a clean text frame; returns the frame and the counts planted.

    Each dirty row is a changed copy of a distinct clean row and breaks exactly one rule, so
    ingest must quarantine exactly `wanted[reason]` rows per reason and count
    `wanted['duplicate']` exact copies. Copies are placed right after their original, so the
    original is always the first seen (the one a key conflict keeps).
    """
    mutate = _MUTATIONS[table]
    eligible = _eligible_rows(clean, table)
    total = sum(wanted.values())
    if total == 0 or clean.height == 0:
        return clean, {reason: 0 for reason in wanted}
    take = min(total, eligible.size)
    bases = rng.choice(eligible, size=take, replace=False)
    planted: dict[str, int] = {}
    pieces, cursor = [], 0
    for reason, count in wanted.items():
        count = min(count, take - cursor)
        chosen = bases[cursor : cursor + count]
        cursor += count
        planted[reason] = count
        if count:
            rows = clean[np.sort(chosen)]
            dirty = rows if reason == "duplicate" else mutate[reason](rows, rng)
            pieces.append(dirty.with_columns(pl.Series("_after", np.sort(chosen))))
    ordered = clean.with_columns(
        pl.Series("_after", np.arange(clean.height)), pl.lit(0).alias("_k")
    )
    dirty = pl.concat(pieces).with_columns(pl.lit(1).alias("_k"))
    out = pl.concat([ordered, dirty]).sort("_after", "_k", maintain_order=True)
    return out.drop("_after", "_k"), planted


def _eligible_rows(clean: pl.DataFrame, table: str) -> np.ndarray:
    """Rows a dirty copy may be made of (an unknown_sku event needs a sku, for instance)."""
    if table == "events":
        return np.flatnonzero(clean["sku"].is_not_null().to_numpy())
    if table == "orders":
        return np.flatnonzero((clean["quantity"].cast(pl.Int64) > 0).to_numpy())
    return np.arange(clean.height)


def _pick(values: tuple[str, ...], n: int, rng: np.random.Generator) -> pl.Series:
    return pl.Series(np.array(values)[rng.integers(0, len(values), n)])


def _bad_timestamp(column: str) -> Callable[[pl.DataFrame, np.random.Generator], pl.DataFrame]:
    """Day 32 of the original month: unparseable, and still unique per original row, so two
    dirty rows never become exact copies of each other."""

    def apply(rows: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        broken = pl.col(column).str.slice(0, 8) + "32" + pl.col(column).str.slice(10)
        return rows.with_columns(broken.alias(column))

    return apply


def _future(column: str) -> Callable[[pl.DataFrame, np.random.Generator], pl.DataFrame]:
    def apply(rows: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        moved = pl.col(column).str.to_datetime("%Y-%m-%d %H:%M:%S").dt.offset_by("50y")
        return rows.with_columns(moved.dt.strftime("%Y-%m-%d %H:%M:%S").alias(column))

    return apply


def _unknown_sku(rows: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    return rows.with_columns(
        pl.Series("sku", [f"ZZ{n:06d}" for n in rng.integers(0, 999_999, rows.height)])
    )


_MUTATIONS: dict[str, dict[str, Callable[[pl.DataFrame, np.random.Generator], pl.DataFrame]]] = {
    "orders": {
        "null_key": lambda r, g: r.with_columns(pl.lit(None, pl.String).alias("order_id")),
        "bad_value": lambda r, g: r.with_columns(_pick(BAD_NUMBERS, r.height, g).alias("quantity")),
        "bad_timestamp": _bad_timestamp("ordered_at"),
        "future_timestamp": _future("ordered_at"),
        "negative_price": lambda r, g: r.with_columns(
            ("-" + pl.col("unit_price")).alias("unit_price")
        ),
        "non_product_sku": lambda r, g: r.with_columns(
            _pick(NON_PRODUCT_CODES, r.height, g).alias("sku")
        ),
        "stock_adjustment": lambda r, g: r.with_columns(
            pl.lit("0").alias("unit_price"),
            pl.lit(None, pl.String).alias("customer_id"),
            ("-" + pl.col("quantity")).alias("quantity"),
        ),  # fmt: skip
        "unknown_sku": _unknown_sku,
        "duplicate_key_conflict": lambda r, g: r.with_columns(
            (pl.col("quantity").cast(pl.Int64) + 1).cast(pl.String).alias("quantity")
        ),
    },
    "events": {
        "null_key": lambda r, g: r.with_columns(pl.lit(None, pl.String).alias("user_id")),
        "bad_timestamp": _bad_timestamp("ts"),
        "future_timestamp": _future("ts"),
        "bad_event_type": lambda r, g: r.with_columns(
            _pick(("hover", "click!", "wishlist"), r.height, g).alias("event_type")
        ),
        "unknown_sku": _unknown_sku,
    },
    "products": {
        "null_key": lambda r, g: r.with_columns(pl.lit(None, pl.String).alias("sku")),
        "negative_price": lambda r, g: r.with_columns(
            ("-" + pl.col("list_price")).alias("list_price"),
            ("NEG" + pl.col("sku")).alias("sku"),
        ),
        "duplicate_key_conflict": lambda r, g: r.with_columns(
            (pl.col("list_price").cast(pl.Float64) + 1).round(2).cast(pl.String).alias("list_price")
        ),
    },
    "inventory": {
        # the snapshot date, not the sku: two SKUs may share every other value
        "null_key": lambda r, g: r.with_columns(pl.lit(None, pl.String).alias("as_of")),
        "bad_value": lambda r, g: r.with_columns(_pick(BAD_NUMBERS, r.height, g).alias("on_hand")),
        "unknown_sku": _unknown_sku,
    },
}


# --------------------------------------------------------------------------------------------
# Writing

# Where a shop is written before it is moved into the landing folder whole (a hidden folder,
# which ingest does not read).
GENERATING_DIR = ".generating"


@dataclass
class GenerateResult:
    out_dir: Path
    rows_clean: dict[str, int]
    dirty_counts: dict[str, dict[str, int]]
    files: list[Path]


def write_table(frame: pl.DataFrame, path: Path, fmt: str) -> Path:
    path = path.with_suffix(f".{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def generate_shop(
    profile: str | Profile,
    out_dir: Path,
    seed: int = 7,
    end: date | None = None,
    fmt: str = "csv",
    dirty: DirtyMix | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> GenerateResult:
    """Write landing files for all four tables and the planted truth under `out_dir`.

    Args:
        profile: tiny, small, medium, large, or a Profile.
        out_dir: the landing folder; `truth/` is written beside it.
        seed: the random seed; output is identical for the same (profile, seed, end).
        end: the last day of data (default yesterday in UTC).
        fmt: csv or parquet.
        dirty: how many dirty rows to plant (default: DirtyMix()).
        progress: called with (step, done, total) as chunks are written.
    """
    spec = PROFILES[profile] if isinstance(profile, str) else profile
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"format must be csv or parquet, not {fmt!r}")
    end = end or (date.today() - timedelta(days=1))
    dirty = dirty or DirtyMix()
    world = build_world(spec, seed, end)
    files: list[Path] = []
    rows_clean = {"orders": 0, "events": 0, "products": 0, "inventory": 0}
    dirty_counts: dict[str, dict[str, int]] = {t: {} for t in rows_clean}
    staging = out_dir / GENERATING_DIR
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted run left

    chunks = np.array_split(
        np.arange(spec.customers), max(1, int(np.ceil(spec.customers / spec.customer_chunk)))
    )
    units_by_sku = np.zeros(spec.skus)
    expected_lines = spec.lines_target * (1 + RETURN_RATE)
    for chunk_no, customers in enumerate(chunks):
        rng = np.random.default_rng([seed, 2, chunk_no])
        sets = consideration_sets(world, customers, rng)
        lines = draw_orders(world, customers, sets, rng)
        recent = lines.filter(pl.col("day") >= spec.days - 28)
        np.add.at(units_by_sku, recent["sku_idx"].to_numpy(), recent["quantity"].to_numpy() / 28)
        orders = order_rows(world, lines, chunk_no, rng)
        events = event_rows(world, lines, customers, sets, chunk_no, rng)
        for table, frame, column in (("orders", orders, "ordered_at"), ("events", events, "ts")):
            frame = frame.with_columns(pl.col(column).str.slice(0, 7).alias("_month"))
            for (month,), part in frame.group_by("_month", maintain_order=True):
                part = part.drop("_month")
                rows_clean[table] += part.height
                total = expected_lines if table == "orders" else expected_lines * 3
                wanted = dirty.wanted(table, part.height, int(total))
                noisy, planted = plant_dirty_rows(part, table, wanted, rng)
                _add_counts(dirty_counts[table], planted)
                suffix = f"_part{chunk_no:02d}" if len(chunks) > 1 else ""
                name = f"synthetic_{table}_{month}{suffix}"
                files.append(write_table(noisy, staging / table / name, fmt))
        if progress:
            progress("customers", chunk_no + 1, len(chunks))

    rng = np.random.default_rng([seed, 3])
    for table, frame in (
        ("products", product_rows(world)),
        ("inventory", inventory_rows(world, units_by_sku, rng)),
    ):
        rows_clean[table] = frame.height
        wanted = dirty.wanted(table, frame.height, frame.height)
        noisy, planted = plant_dirty_rows(frame, table, wanted, rng)
        _add_counts(dirty_counts[table], planted)
        files.append(write_table(noisy, staging / table / f"synthetic_{table}", fmt))

    write_truth(world, out_dir.parent / "truth", rows_clean, dirty_counts, seed)
    files = place_generated(files, staging, out_dir, fmt)
    return GenerateResult(out_dir, rows_clean, dirty_counts, files)


def place_generated(files: list[Path], staging: Path, out_dir: Path, fmt: str) -> list[Path]:
    """Move a whole generated shop from `staging` into the landing folder, replacing the
    previous synthetic files of that format.

    Written in place, an interrupted `generate` (Ctrl-C in `make run`'s first minute) left
    part of a shop in landing/, and `generate --if-missing` then took it for a landed shop:
    the night ran on a few months of orders, one file cut mid-row."""
    for folder in ("orders", "events", "products", "inventory"):
        for old in (out_dir / folder).glob(f"synthetic_*.{fmt}"):
            old.unlink()
    placed = []
    for path in files:
        final = out_dir / path.relative_to(staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        path.replace(final)
        placed.append(final)
    shutil.rmtree(staging)
    return placed


def _add_counts(into: dict[str, int], planted: Mapping[str, int]) -> None:
    for reason, count in planted.items():
        into[reason] = into.get(reason, 0) + count


def write_truth(
    world: World,
    truth_dir: Path,
    rows_clean: dict[str, int],
    dirty_counts: dict[str, dict[str, int]],
    seed: int,
) -> None:
    """Record what was planted, for tests and benchmarks to check models against."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    arch_names = np.array([a.name for a in ARCHETYPES])
    pl.DataFrame(
        {
            "customer_id": world.customer_ids,
            "archetype": arch_names[world.archetype],
            "first_active_date": [world.start + timedelta(days=int(d)) for d in world.first_day],
            "last_active_date": [world.start + timedelta(days=int(d)) for d in world.last_day],
        }
    ).write_parquet(truth_dir / "customers.parquet")
    pl.DataFrame({"customer_id": world.customer_ids, "factors": world.user_factors}).write_parquet(
        truth_dir / "user_factors.parquet"
    )
    pl.DataFrame(
        {"sku": world.sku_ids, "factors": world.item_factors, "popularity": world.popularity}
    ).write_parquet(truth_dir / "item_factors.parquet")
    cat = np.array([c.name for c in CATEGORIES])[world.category]
    pl.DataFrame(
        {
            "sku": world.sku_ids,
            "category": cat,
            "base_price": world.base_price,
            "unit_cost": world.unit_cost,
            "elasticity": world.elasticity,
            "trend_per_year": world.trend,
            "launch_date": [world.start + timedelta(days=int(d)) for d in world.launch_day],
            "retire_date": [
                world.start + timedelta(days=int(d)) if d < world.days else None
                for d in world.retire_day
            ],
        }
    ).write_parquet(truth_dir / "sku_params.parquet")
    n_s, n_d = world.price.shape
    pl.DataFrame(
        {
            "sku": np.repeat(world.sku_ids, n_d),
            "date": np.tile(
                np.arange(np.datetime64(world.start), np.datetime64(world.end) + 1), n_s
            ),
            "price": world.price.ravel(),
            "demand_multiplier": world.item_multiplier.ravel() * np.tile(world.day_multiplier, n_s),
        }
    ).write_parquet(truth_dir / "prices.parquet")
    meta = {
        "profile": asdict(world.profile),
        "seed": seed,
        "start": world.start.isoformat(),
        "end": world.end.isoformat(),
        "weekly_profile_monday_first": WEEKLY_PROFILE.tolist(),
        "growth_per_year": GROWTH_PER_YEAR,
        "return_rate": RETURN_RATE,
        "affinity_scale": AFFINITY_SCALE,
        "categories": [asdict(c) for c in CATEGORIES],
        "archetypes": [asdict(a) for a in ARCHETYPES],
        "rows_clean": rows_clean,
    }
    (truth_dir / "world.json").write_text(json.dumps(meta, indent=2))
    (truth_dir / "dirty_counts.json").write_text(json.dumps(dirty_counts, indent=2, sort_keys=True))
