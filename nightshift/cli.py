"""The `nightshift` command line. Heavy libraries are imported inside commands so that
`nightshift --help` stays instant."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from nightshift.errors import NightshiftError, failure_text
from nightshift.settings import Settings, load_settings

if TYPE_CHECKING:
    from nightshift.generator import GenerateResult

T = TypeVar("T")

app = typer.Typer(
    help="nightshift: nightly ML pipeline for online shops (ingest, model, publish).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings wrap at 100 columns: rejoin their lines
)


class ProfileName(StrEnum):
    tiny = "tiny"
    small = "small"
    medium = "medium"
    large = "large"


class FileFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


class Source(StrEnum):
    landing = "landing"
    online_retail = "online-retail"


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


HomeOption = Annotated[
    Path | None, typer.Option("--home", help="Override NIGHTSHIFT_HOME (default ./.nightshift).")
]


def settings_for(home: Path | None) -> Settings:
    return load_settings(home=home)


# `nightshift run`'s exit codes besides 0 (the night published whole): 2 our own one-line
# error (an option, setting or input file that cannot work; nothing published), 1 any other
# failure (a traceback; nothing published).
EXIT_DEGRADED = 3  # the night published, but one or more model branches failed


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def use_prefect_home(settings: Settings) -> None:
    """Point Prefect at the home's prefect/ folder unless the user configured Prefect."""
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home.resolve()))
    # The embedded server's telemetry cannot reach the internet from a shop's batch host.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The first start in a new home migrates its database, which took over Prefect's default
    # 20 s on a busy 2-core machine and failed the run before it began.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@app.command()
def generate(
    profile: Annotated[
        ProfileName, typer.Option(help="Size of the synthetic shop.")
    ] = ProfileName.small,
    seed: Annotated[int, typer.Option(help="Random seed; same seed and end, same files.")] = 7,
    end: Annotated[
        str | None, typer.Option(help="Last day of data, YYYY-MM-DD (default: yesterday).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Landing folder to write (default: the home's landing/).")
    ] = None,
    file_format: Annotated[
        FileFormat, typer.Option("--format", help="Landing file format.")
    ] = FileFormat.csv,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing if orders have already landed.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Write a synthetic shop (orders, events, products, inventory) and its planted truth."""
    from nightshift.contract import landed_source_files, names_shown
    from nightshift.warehouse import loaded_source_files, orders_present

    settings = settings_for(home)
    landing = out or settings.landing_dir
    try:
        end_date = date.fromisoformat(end) if end else settings.default_as_of()
    except ValueError:
        fail(f"--end {end!r} is not a date (use YYYY-MM-DD)")
    if end_date > settings.today():
        fail(f"--end {end_date} is in the future; data must end on or before today")
    # Into the home's landing folder, take turns with the runs that read it: files replaced
    # while a night ingests them would be judged half old, half new.
    turn = contextlib.nullcontext()
    if out is None:
        from nightshift.runlock import home_lock

        turn = home_lock(
            settings.lock_path,
            f"generate --profile {profile.value}",
            settings.lock_timeout_seconds,
            lambda holder: typer.echo(f"waiting for {holder} to finish with {settings.home}"),
        )
    with turn:
        # the home's warehouse counts too: a shop may clear landing/ once its files loaded
        home_settings = settings if out is None else None
        if if_missing and (present := orders_present(landing, home_settings)):
            typer.echo(f"{present}; not generating")
            return
        loaded = loaded_source_files(settings) if home_settings else []
        if shops_own := sorted(
            name
            for name in {*landed_source_files(landing), *loaded}
            if not Path(name).name.startswith("synthetic_")
        ):
            fail(
                f"{landing} holds or loaded files that are not a synthetic shop's "
                f"({names_shown(shops_own)}): a synthetic shop written beside them would be "
                "ingested with them. Generate into another home (--home DIR) or folder (--out DIR)"
            )
        result = write_shop(profile.value, landing, seed, end_date, file_format.value)
    dirty = sum(sum(v.values()) for v in result.dirty_counts.values())
    typer.echo(
        f"wrote {len(result.files)} files to {landing}: "
        + ", ".join(f"{n:,} {t}" for t, n in result.rows_clean.items())
        + f" clean rows, {dirty:,} planted dirty rows; truth in {landing.parent / 'truth'}"
    )


def write_shop(
    profile: str, landing: Path, seed: int, end: date, file_format: str
) -> GenerateResult:
    """Generate a shop into `landing`, with a progress bar."""
    from rich.progress import Progress

    from nightshift.generator import PROFILES, generate_shop

    with Progress(transient=True) as progress:
        bar = progress.add_task(f"generating {profile}", total=None)

        def advance(step: str, done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total, description=f"generating {step}")

        return generate_shop(
            PROFILES[profile], landing, seed=seed, end=end, fmt=file_format, progress=advance
        )


@app.command()
def ingest(
    path: Annotated[
        Path | None, typer.Argument(help="Source file for --source online-retail.")
    ] = None,
    source: Annotated[
        Source, typer.Option(help="landing: the home's landing/ folder.")
    ] = Source.landing,
    full_refresh: Annotated[
        bool,
        typer.Option(
            help="Reload every landing file and judge every row again (loaded files no "
            "longer in landing/ keep their rows)."
        ),
    ] = False,
    forget: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FILE",
            help="Take a loaded file's rows out, e.g. orders/2024-01.csv or a glob such as "
            "'orders/synthetic_*' (repeatable); move the files out of landing/ first.",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Load landing files (or an Online Retail file) into the warehouse and clean them."""
    settings = settings_for(home)
    use_prefect_home(settings)
    from tasks.ingest import ingest_landing
    from tasks.runs import abandon_dead_runs, close_run, new_run_id, open_run

    label = "landing"
    if source is Source.online_retail:
        from tasks.landing import map_online_retail

        if path is None:
            fail(
                "--source online-retail needs the file: nightshift ingest --source online-retail FILE"
            )
        orders_path = map_online_retail.fn(settings, path)
        label = f"online-retail:{path}"
        typer.echo(f"mapped {path} to {orders_path.parent.parent}")
    elif path is not None:
        fail(
            "a PATH is only taken with --source online-retail; landing files go in landing/<table>/"
        )
    from nightshift.runlock import home_lock

    run_id = new_run_id(None)
    with home_lock(
        settings.lock_path,
        run_id,
        settings.lock_timeout_seconds,
        lambda holder: typer.echo(f"waiting for {holder} to finish with {settings.home}"),
    ):
        abandon_dead_runs.fn(settings)
        open_run.fn(settings, run_id, None, label, [], full_refresh, None)
        try:
            summary = ingest_landing.fn(settings, run_id, full_refresh, forget or [])
        except BaseException as exc:
            close_run.fn(settings, run_id, "failed", error=failure_text(exc))
            raise
        close_run.fn(
            settings,
            run_id,
            "succeeded",
            None,
            summary.input_digests,
            summary.audit,
            summary.defaults_used,
        )
    print_ingest_summary(summary)


def plural(count: int, noun: str) -> str:
    """'1 file', '2 files'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def print_ingest_summary(summary) -> None:  # noqa: ANN001 - IngestSummary, imported lazily
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"ingest {summary.run_id}")
    for column in ("table", "rows in", "staged", "quarantined", "duplicate", "new"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, audit in sorted(summary.audit.items()):
        table.add_row(
            name,
            *(
                f"{audit[k]:,}"
                for k in (
                    "rows_in",
                    "rows_staged",
                    "rows_quarantined",
                    "rows_duplicate",
                    "rows_new",
                )
            ),
        )
    console.print(table)
    for name, reasons in sorted(summary.quarantined_by_reason.items()):
        console.print(f"quarantined {name}: " + ", ".join(f"{r} {n:,}" for r, n in reasons.items()))
    console.print(
        f"orders {summary.orders_first_date} .. {summary.orders_last_date}, "
        f"{summary.customers:,} customers, {summary.skus:,} SKUs; "
        f"{plural(len(summary.files_loaded), 'file')} loaded, {summary.files_unchanged} unchanged"
        + (
            f", {len(summary.files_only_archived)} only in the raw archive"
            if summary.files_only_archived
            else ""
        )
        + {
            "nothing": "; staging already judged from these files",
            "changed files": "; judged the changed files' rows only",
        }.get(summary.staging_judged, "")
    )
    for source_file in summary.files_forgotten:
        console.print(f"forgot {source_file}: its rows are no longer staged")
    for item in summary.defaults_used:
        console.print(f"default: {item}")
    warn_files_not_read(summary.files_not_read)


def warn_files_not_read(files_not_read: dict[str, str]) -> None:
    """Name on stderr what sits in landing/ unread: its rows are in no table."""
    for path, why in files_not_read.items():
        typer.secho(f"not read: landing/{path}: {why}", fg=typer.colors.YELLOW, err=True)


@app.command()
def run(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Business date YYYY-MM-DD (default: yesterday).")
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model branches (default: all).")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option(help="Reload every landing file and judge every row again.")
    ] = False,
    source: Annotated[
        Source,
        typer.Option(
            help="landing: the home's landing/ files; online-retail: first map the UCI "
            "Online Retail file at --source-path into landing/."
        ),
    ] = Source.landing,
    source_path: Annotated[
        Path | None,
        typer.Option(
            "--source-path", help="The Online Retail file (CSV, .csv.gz, Parquet or .xlsx)."
        ),
    ] = None,
    profile: Annotated[
        ProfileName | None,
        typer.Option(
            help="If no orders have landed yet, first generate this synthetic shop, ending "
            "on the as_of (what make run does)."
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run the nightly flow on Prefect (ephemeral API unless PREFECT_API_URL is set).

    The data options are the flow's own parameters, as the Prefect UI offers them."""
    settings = settings_for(home)
    if home is not None:
        os.environ["NIGHTSHIFT_HOME"] = str(home)
    use_prefect_home(settings)
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date (use YYYY-MM-DD)")
    chosen = [m.strip() for m in models.split(",") if m.strip()] if models is not None else None
    require_servers_answer(settings)
    from nightshift.prefect_api import ephemeral_api_starting, exit_on_termination
    from nightshift.stopping import note_interrupts

    exit_on_termination()  # so that a stopped night still stops its Prefect API server
    note_interrupts()  # and Ctrl-C is told from SIGTERM when DuckDB swallows either
    stop_orphaned_api_servers(settings)
    set_aside_damaged_prefect_database()
    path = str(source_path.resolve()) if source_path is not None else None
    shop = profile.value if profile is not None else None
    # comes up while the flow's libraries import
    with ephemeral_api_starting(settings.prefect_servers_dir):
        from flows.nightly import nightly, selected_models, source_label

        if chosen is not None:
            selected_models(chosen)  # a clear error for an unknown name, without waiting
        source_label(source.value, path, shop)  # and for options that cannot go together
    result = run_with_terminal_progress(
        lambda: nightly(
            as_of=day,
            models=chosen,
            full_refresh=full_refresh,
            source=source.value,
            source_path=path,
            profile=shop,
        )
    )
    typer.echo(
        f"run {result['run_id']} for {result['as_of']} published {', '.join(result['published'])} "
        f'to {result["marts"]}\nquery it: nightshift query "select * from kpi_daily order by date desc limit 7"'
    )
    warn_files_not_read(result.get("files_not_read") or {})
    if result["failed_branches"]:
        # Published, but not whole: a scheduler or script that only sees the exit code must
        # not take a degraded night for a good one.
        for name, error in result["failed_branches"].items():
            typer.secho(
                f"degraded: branch {name} failed, its tables keep their last rows: {error}",
                fg=typer.colors.YELLOW,
                err=True,
            )
        raise typer.Exit(code=EXIT_DEGRADED)


def set_aside_damaged_prefect_database() -> None:
    """Move the ephemeral API's database aside when it is damaged, saying so (it holds only
    the embedded Prefect UI's history of flow runs; `prefect_api.set_aside_damaged_database`)."""
    from nightshift.prefect_api import ephemeral_database, set_aside_damaged_database

    database = ephemeral_database()
    if database is not None and (moved := set_aside_damaged_database(database)):
        aside, problem = moved
        typer.secho(
            f"Prefect's database {database} was damaged ({problem}): moved aside to "
            f"{aside.name}; the embedded API starts a new one (it held only the Prefect UI's "
            "history of flow runs; nightshift's record of its nights is the runs table)",
            fg=typer.colors.YELLOW,
            err=True,
        )


def stop_orphaned_api_servers(settings: Settings) -> None:
    """Stop the Prefect API servers that killed runs of this home left running, saying so."""
    from nightshift.prefect_api import stop_orphaned_servers

    for pid in stop_orphaned_servers(settings.prefect_servers_dir):
        typer.secho(
            f"stopped a Prefect API server (pid {pid}) that a killed run had left running",
            fg=typer.colors.YELLOW,
            err=True,
        )


def report_orphaned_api_servers(settings: Settings, checkup: Checkup) -> None:
    from nightshift.prefect_api import orphaned_servers

    for pid in orphaned_servers(settings.prefect_servers_dir):
        checkup.problem(
            "prefect",
            f"a Prefect API server (pid {pid}) that a killed run left is still running; "
            f"the next nightshift run stops it, or: kill {pid}",
        )


def run_with_terminal_progress(run: Callable[[], T], console: object | None = None) -> T:
    """Run a flow in this process with rich bars for its long steps (training epochs, SKU
    batches, landing files) on `console`, or on stderr when that is a terminal."""
    from nightshift.runlog import show_progress_on

    if console is None and sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
    show_progress_on(console)
    try:
        return run()
    finally:
        show_progress_on(None)


@app.command()
def serve(
    schedule: Annotated[
        bool, typer.Option(help="Attach the nightly cron schedule (--no-schedule: UI only).")
    ] = True,
    home: HomeOption = None,
) -> None:
    """Serve the deployments (nightly, retrain, backfill, train-branch/gpu) from this process.

    Runs triggered by the schedule or the Prefect UI execute here, against PREFECT_API_URL
    (or the home's Prefect profile). Stop with Ctrl-C.
    """
    settings = settings_for(home)
    if home is not None:
        os.environ["NIGHTSHIFT_HOME"] = str(home)
    use_prefect_home(settings)
    from prefect import serve as prefect_serve

    from flows.deployments import build_deployments
    from nightshift.prefect_api import ephemeral_api_starting, exit_on_termination

    exit_on_termination()  # Prefect's runner takes SIGTERM over; a hangup now reaches it too
    stop_orphaned_api_servers(settings)
    with ephemeral_api_starting(settings.prefect_servers_dir):
        deployments = build_deployments(settings, schedule=schedule)
    prefect_serve(*deployments)


@app.command()
def deploy(home: HomeOption = None) -> None:
    """Create the work pools and apply prefect.yaml's deployments to PREFECT_API_URL.

    prefect.yaml's placeholders come from the environment, with settings filling the gaps
    (NIGHTSHIFT_TIMEZONE, NIGHTSHIFT_NIGHTLY_CRON, NIGHTSHIFT_CPU_POOL, NIGHTSHIFT_GPU_POOL,
    NIGHTSHIFT_PROJECT_DIR). Then start a worker: prefect worker start --pool nightshift-cpu
    """
    from nightshift.services import deploy as apply_deployments

    settings = settings_for(home)
    if not os.environ.get("PREFECT_API_URL"):
        fail("PREFECT_API_URL is not set: deployments need a Prefect server (make services)")
    typer.echo(apply_deployments(settings, dict(os.environ)))


services_app = typer.Typer(
    help="Local Prefect server, MLflow server and workers on loopback.",
    rich_markup_mode="markdown",
)
app.add_typer(services_app, name="services")


@services_app.command("start")
def services_start(
    prefect_port: Annotated[int, typer.Option(help="Prefect server port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow server port.")] = 5000,
    gpu_pool: Annotated[
        str | None,
        typer.Option(help="Also start a worker on this pool and route torch branches to it."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Start the servers and a process worker, and deploy prefect.yaml to them."""
    from nightshift.services import start_services

    settings = settings_for(home)
    urls = start_services(settings, prefect_port, mlflow_port, gpu_pool or settings.gpu_pool)
    typer.echo(
        f"Prefect UI  http://127.0.0.1:{prefect_port}\nMLflow UI   {urls.mlflow_uri}\n"
        f"logs        {settings.services_dir}\n"
        f"point a shell at them: source {settings.services_dir / 'services.env'}\n"
        "run a night now: prefect deployment run nightly/nightly"
    )


@services_app.command("stop")
def services_stop(home: HomeOption = None) -> None:
    """Stop the services started from this home."""
    from nightshift.services import stop_services

    stopped = stop_services(settings_for(home))
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "no services were running")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A read-only SQL query over the published marts.")],
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format (parquet needs --out).")
    ] = OutputFormat.table,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    home: HomeOption = None,
) -> None:
    """Query marts.duckdb read-only (the tables analysts use each morning); writes are refused.

    The result is streamed, never held whole: the table shows its first 50 rows and counts
    the rest; csv, json and parquet write every row."""
    import duckdb

    from nightshift import query_output
    from nightshift.catalog import open_marts, refuse_writes
    from nightshift.files import written_atomically

    settings = settings_for(home)
    refuse_writes(sql)
    if output is OutputFormat.parquet and out is None:
        fail("--format parquet writes a file: give --out FILE")
    con = open_marts(settings.marts_path)
    try:
        relation = con.sql(sql)
        if relation is None:
            fail("the statement returned no rows to show; queries must be SELECTs")
        reader = relation.to_arrow_reader()
        if out is None:  # a closed pipe (`| head`) ends it quietly: click exits 1 on EPIPE
            if output is OutputFormat.table:
                sys.stdout.write(preview_text(query_output.preview(reader)))
            else:
                query_output.write_text(reader, output.value, sys.stdout)
            return
        with written_atomically(out) as partial:
            if output is OutputFormat.table:
                shown = query_output.preview(reader)
                partial.write_text(preview_text(shown))
                rows = shown.rows.height
            elif output is OutputFormat.parquet:
                rows = query_output.write_parquet(reader, partial)
            else:
                with partial.open("w") as handle:
                    rows = query_output.write_text(reader, output.value, handle)
        typer.echo(f"wrote {rows:,} rows to {out}", err=True)
    except duckdb.Error as exc:
        fail(str(exc).splitlines()[0])
    finally:
        con.close()


def preview_text(shown) -> str:  # noqa: ANN001 - query_output.Preview, imported lazily
    """The table format: the first rows as a table, and how many there are in all when
    there are more."""
    import polars as pl

    with pl.Config(
        tbl_rows=shown.rows.height, tbl_cols=30, fmt_str_lengths=60, tbl_width_chars=250,
        tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
    ):  # fmt: skip
        text = f"{shown.rows}\n"
    if shown.total > shown.rows.height:
        text += (
            f"first {shown.rows.height:,} of {shown.total:,} rows "
            "(--format csv, json or parquet with --out FILE writes them all)\n"
        )
    return text


@app.command()
def tables(home: HomeOption = None) -> None:
    """List the published tables with row counts, newest as_of and description."""
    from rich.console import Console
    from rich.table import Table

    from nightshift.catalog import open_marts, published_tables

    con = open_marts(settings_for(home).marts_path)
    try:
        infos = published_tables(con)
    finally:
        con.close()
    table = Table(title="published tables (marts.duckdb)")
    for column in ("table", "rows", "as_of", "description"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for info in infos:
        rows = f"{info.rows:,}" if info.rows is not None else info.kind
        table.add_row(info.name, rows, info.as_of or "", info.description)
    Console().print(table)


@app.command()
def describe(
    table: Annotated[str, typer.Argument(help="A published table or view, e.g. inventory_plan.")],
    home: HomeOption = None,
) -> None:
    """Print a published table's meaning and every column's type and description."""
    from nightshift.catalog import open_marts, published_tables, table_columns

    con = open_marts(settings_for(home).marts_path)
    try:
        columns = table_columns(con, table)
        info = next(i for i in published_tables(con, counts=False) if i.name == table)
    finally:
        con.close()
    typer.echo(f"{table} ({info.kind}): {info.description}\n")
    width = max(len(c) for c, _, _ in columns)
    for column, dtype, description in columns:
        typer.echo(f"  {column:<{width}}  {dtype:<24} {description}")


@app.command()
def dictionary(
    out: Annotated[Path, typer.Option("--out", help="Where to write the markdown.")] = Path(
        "docs/data_dictionary.md"
    ),
    home: HomeOption = None,
) -> None:
    """Generate the data dictionary (markdown) from the published marts' descriptions."""
    from nightshift.catalog import data_dictionary, open_marts

    con = open_marts(settings_for(home).marts_path)
    try:
        text = data_dictionary(con)
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out}")


@app.command()
def report(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The night to report (default: the newest).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the HTML.")] = None,
    home: HomeOption = None,
) -> None:
    """Write a published night's self-contained HTML report.

    KPIs, forecasts, inventory risk, segments, prices, model and data quality."""
    from tasks.html_report import write_report

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date (use YYYY-MM-DD)")
    path = write_report(settings_for(home), day, out)
    typer.echo(f"wrote {path}")


@app.command()
def doctor(home: HomeOption = None) -> None:
    """Report versions, device, servers, landing files, the data's age and the last run.

    What to check first when a night failed: whether the configured servers answer, and
    whether the orders feed has stalled (a stale night stops before modelling). Exits 1
    when it finds a problem (a missing package, a server that does not answer, a landing
    file not read, stale data, a last run that failed, a Prefect API server left running by
    a killed run), so a monitor can run it.
    """
    import importlib.metadata as md
    import shutil
    from collections import Counter

    from nightshift.services import health_problem

    settings = settings_for(home)
    checkup = Checkup()
    print(f"python        {sys.version.split()[0]}")
    for package in (
        "prefect",
        "mlflow",
        "torch",
        "polars",
        "duckdb",
        "statsmodels",
        "scikit-learn",
        "pulp",
    ):
        try:
            print(f"{package:<13} {md.version(package)}")
        except md.PackageNotFoundError:
            checkup.problem(package, "MISSING")
    from models.device import choose_device

    try:
        import torch

        cuda = torch.cuda.is_available()
        print(
            f"device        {choose_device(settings.device, cuda)} (setting {settings.device}, cuda {cuda})"
        )
    except (ImportError, ValueError) as exc:
        checkup.problem("device", f"PROBLEM: {exc}")
    print(f"home          {settings.home.resolve()}")
    free = shutil.disk_usage(settings.home if settings.home.exists() else Path.cwd()).free
    print(f"disk free     {free / 2**30:.1f} GiB")
    print(f"timezone      {settings.timezone}")
    print(f"mlflow        {settings.tracking_uri}")
    if warning := settings.ignored_mlflow_variable():
        print(f"mlflow        WARNING: {warning}")
    for name, url in configured_servers(settings).items():
        if not url:
            print(f"{name:<13} embedded (no server configured)")
            report_damaged_store(settings, name, checkup)
            if name == "prefect":
                report_orphaned_api_servers(settings, checkup)
        elif problem := health_problem(url):
            checkup.problem(name, f"{url} DOES NOT ANSWER: {problem}")
        else:
            print(f"{name:<13} {url} answers")
    print_landing_state(settings, checkup)
    print_warehouse_state(settings, checkup)
    if not settings.dask_address:
        print(f"{'dask':<13} not configured (inventory batches use local processes)")
    else:
        import socket
        from urllib.parse import urlparse

        address = urlparse(settings.dask_address)
        try:
            with socket.create_connection((address.hostname, address.port or 8786), timeout=3):
                print(f"{'dask':<13} {settings.dask_address} answers")
        except (OSError, TypeError) as exc:
            checkup.problem("dask", f"{settings.dask_address} DOES NOT ANSWER: {exc}")
    if checkup.problems:
        counts = Counter(checkup.problems)
        typer.secho(
            f"doctor found {plural(len(checkup.problems), 'problem')}: "
            + ", ".join(f"{name} ({n})" if n > 1 else name for name, n in counts.items()),
            fg=typer.colors.YELLOW,
            err=True,
        )
        raise typer.Exit(code=1)


class Checkup:
    """doctor's problems, by the name of the line that shows each."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, name: str, text: str) -> None:
        self.problems.append(name)
        print(f"{name:<13} {text}")


def configured_servers(settings: Settings) -> dict[str, str | None]:
    """The MLflow and Prefect servers this home is pointed at; None where it runs embedded
    (a SQLite tracking store, Prefect's ephemeral API)."""
    urls = {"mlflow": settings.mlflow_uri, "prefect": os.environ.get("PREFECT_API_URL")}
    return {name: url if url and url.startswith("http") else None for name, url in urls.items()}


# What to do about a configured server that does not answer, by server.
SERVER_REMEDIES = {
    "mlflow": "start it (nightshift services start), or unset NIGHTSHIFT_MLFLOW_URI to "
    "track in the home's SQLite store",
    "prefect": "start it (nightshift services start), or unset PREFECT_API_URL to run on "
    "Prefect's ephemeral API",
}


def require_servers_answer(settings: Settings) -> None:
    """Stop a run at once, in one line, when a configured server is down: the night would
    otherwise fail minutes later (MLflow's client retries each call for about four) or with
    Prefect's traceback."""
    from nightshift.services import health_problem

    for name, url in configured_servers(settings).items():
        if url and (problem := health_problem(url)):
            fail(f"the {name} server at {url} does not answer ({problem}): {SERVER_REMEDIES[name]}")


# The embedded stores' SQLite files, and what a damaged one means.
EMBEDDED_STORES = {
    "mlflow": (
        lambda settings: settings.mlflow_dir / "mlflow.db",
        "restore it from a backup: it holds the runs' metrics and the model registry",
    ),
    "prefect": (
        lambda settings: settings.prefect_home / "prefect.db",
        "the next `nightshift run` moves it aside and starts a new one",
    ),
}


def report_damaged_store(settings: Settings, name: str, checkup: Checkup) -> None:
    """Name an embedded store's SQLite file that is damaged (a full disk, a restore cut
    short): MLflow's fails every night at its first log call, with SQLAlchemy's words."""
    from nightshift.files import sqlite_damage

    where, advice = EMBEDDED_STORES[name]
    database = where(settings)
    if database.is_file() and (problem := sqlite_damage(database)):
        checkup.problem(name, f"{database} is damaged ({problem}): {advice}")


def print_landing_state(settings: Settings, checkup: Checkup) -> None:
    """How many landing files each table has, and what sits in landing/ unread: the first
    question when a night's numbers miss rows that a shop says it sent."""
    from nightshift import contract

    counts = {t: len(contract.landing_files(settings.landing_dir, t)) for t in contract.CONTRACTS}
    print(f"{'landing':<13} " + ", ".join(f"{t} {n}" for t, n in counts.items()) + " file(s)")
    for path, why in contract.files_not_read(settings.landing_dir).items():
        checkup.problem("landing", f"NOT READ landing/{path}: {why}")


def print_warehouse_state(settings: Settings, checkup: Checkup) -> None:
    """The newest order tonight's run would see and the last run's outcome: the first two
    questions when a night failed (a stalled feed stops the night: tasks/freshness.py)."""
    from nightshift.warehouse import DamagedFileError, FileInUseError, connect, damage_explained

    if not settings.warehouse_path.exists():
        print(f"{'data':<13} no warehouse yet (nightshift ingest or run creates it)")
        return
    try:
        con = connect(settings.warehouse_path, settings, read_only=True)
    except FileInUseError as exc:
        print(f"{'data':<13} warehouse busy: in use by {exc.holder} (a run, or a session)")
        return
    except DamagedFileError as exc:
        checkup.problem("warehouse", str(exc))
        return
    try:
        with damage_explained(settings.warehouse_path):
            print_data_and_last_run(settings, con, checkup)
    except DamagedFileError as exc:
        checkup.problem("warehouse", str(exc))
    finally:
        con.close()


def print_data_and_last_run(settings: Settings, con, checkup: Checkup) -> None:  # noqa: ANN001
    """The staged orders' age, the raw archive and the last run, read from the warehouse."""
    import duckdb

    from nightshift.freshness import freshness_problem
    from nightshift.warehouse import query_sql

    as_of = settings.default_as_of()
    try:
        first, newest = query_sql(con, "staging/orders_span.sql", {"as_of": as_of})[0]
    except duckdb.CatalogException:
        first = newest = None
    if newest is None:
        print(f"{'data':<13} no staged orders")
    else:
        stale = freshness_problem(as_of, first, newest, settings.max_data_age_days)
        verdict = f" STALE (over {settings.max_data_age_days})" if stale else ""
        age = (as_of - newest).days
        text = (
            f"orders {first} .. {newest}: the newest is {age} day(s) before "
            f"tonight's as_of {as_of}{verdict}"
        )
        if stale:
            checkup.problem("data", text)
        else:
            print(f"{'data':<13} {text}")
    print_archive_state(settings, con)
    runs = query_sql(con, "meta/last_run.sql")
    if runs:
        run_id, run_as_of, status, started, _, error = runs[0]
        what = f"for {run_as_of}" if run_as_of else "(an ingest, no night)"
        text = f"{run_id} {what}: {status} (started {started:%Y-%m-%d %H:%M %Z})"
        text += f": {error}" if error else ""
        if status in ("failed", "degraded", "abandoned"):
            checkup.problem("last run", text)
        else:
            print(f"{'last run':<13} {text}")


def print_archive_state(settings: Settings, con) -> None:  # noqa: ANN001 - DuckDB connection
    """How many files the warehouse loaded, and which are no longer in landing/: their rows
    stay, so this is where rows come from that no landing file explains."""
    from nightshift.contract import landed_source_files, names_shown
    from nightshift.warehouse import loaded_files_in

    loaded = loaded_files_in(con)
    landed = set(landed_source_files(settings.landing_dir))
    text = f"{plural(len(loaded), 'file')} in the raw archive"
    if gone := [name for name in loaded if name not in landed]:
        text += (
            f", {len(gone)} no longer in landing/ ({names_shown(gone)}): their rows stay; "
            "`nightshift ingest --forget FILE` takes them out"
        )
    print(f"{'loaded':<13} {text}")


def main() -> None:
    """Entry point that turns our errors into one clear line and exit code 2, and a stop
    signal that DuckDB turned into an error back into the stop (`nightshift.stopping`)."""
    from nightshift.stopping import reraise_stop

    try:
        app()
    except RuntimeError as exc:
        reraise_stop(exc)
        raise
    except NightshiftError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        # The traceback's frames hold DuckDB objects; freeing them now keeps DuckDB's
        # bindings from reporting them as leaked at interpreter exit.
        traceback.clear_frames(exc.__traceback__)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
