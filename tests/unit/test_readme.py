"""The README is how users find a setting or a flag: these keep it in step with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def readme_settings() -> dict[str, str | None]:
    """The README's settings table: {NIGHTSHIFT_NAME: its default as written, or None when
    the row gives prose instead of a literal}. Rows may share a line: `NIGHTSHIFT_A_B` /
    `_C` names NIGHTSHIFT_A_C, `NIGHTSHIFT_A_B/C` names NIGHTSHIFT_A_C, and their defaults
    are `1` / `2` or `1 / 2`."""
    readme = README.read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    documented: dict[str, str | None] = {}
    for line in section.splitlines():
        if not line.startswith("| `NIGHTSHIFT_"):
            continue
        names_cell, default_cell, meaning = line.split("|")[1:4]
        pieces = [
            p.strip() for cell in re.findall(r"`([^`]+)`", names_cell) for p in cell.split("/")
        ]
        first = pieces[0]
        section_prefix = "_".join(first.split("_")[:2])
        names = [first]
        for piece in pieces[1:]:
            if piece.startswith("_"):
                names.append(section_prefix + piece)
            else:
                names.append(first.rsplit("_", 1)[0] + "_" + piece)
        # ranges named in the meaning: `_K_MIN`..`_K_MAX` (`3`..`8`)
        ranged = re.findall(r"`(_[A-Z_]+)`\.\.`(_[A-Z_]+)` \(`([^`]+)`\.\.`([^`]+)`\)", meaning)
        literal = default_cell.strip()
        defaults: list[str | None] = [None] * len(names)
        if literal == "unset":
            defaults = ["unset"] * len(names)
        elif literal.startswith("`") and len(names) == 1:
            defaults = [literal.strip("`")]
        elif literal.startswith("`"):
            values = [value.strip(" `") for value in literal.split("/")]
            defaults = values if len(values) == len(names) else defaults
        documented.update(zip(names, defaults, strict=True))
        for low, high, low_value, high_value in ranged:
            documented[section_prefix + low] = low_value
            documented[section_prefix + high] = high_value
    return documented


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    """The README's settings table is how users find a setting: one added in code but not
    there (NIGHTSHIFT_DUCKDB_THREADS was) is invisible, and a default changed in one place
    only tells users the wrong thing."""
    from pydantic_core import PydanticUndefined

    from nightshift.settings import Settings

    documented = readme_settings()
    in_code = {f"NIGHTSHIFT_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert sorted(set(in_code) - set(documented)) == []
    assert sorted(set(documented) - set(in_code)) == []
    for name, written in documented.items():
        field = in_code[name]
        default = field.default
        if default is PydanticUndefined:
            default = field.default_factory()
        if written is None or "…" in written:
            continue  # prose (a computed default) or an abbreviated list
        if written == "unset":
            assert default is None, name
        elif isinstance(default, bool):
            assert written == str(default).lower(), name
        elif isinstance(default, (int, float)):
            assert float(written) == default, name
        elif isinstance(default, (list, dict)):
            assert json.loads(written) == default, name
        elif isinstance(default, Path):
            assert Path(written) == default, name
        else:
            assert written == str(default), name


def test_every_command_line_option_is_in_the_readme() -> None:
    """Each command's long options appear in the README's CLI block (`--home`, which every
    command takes, is described below it). `services start --prefect-port/--mlflow-port`
    were missing."""
    import typer.main

    from nightshift.cli import app

    block = README.read_text().split("\n## CLI\n", 1)[1].split("```", 2)[1]
    group = typer.main.get_command(app)
    commands = {}
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None) or {"": command}
        for sub_name, sub in subcommands.items():
            commands[f"{name} {sub_name}".strip()] = sub
    missing = {
        name: [
            option
            for parameter in command.params
            for option in parameter.opts
            if option.startswith("--")
            and option not in ("--home", "--help")
            and option not in block
            and f"--no-{option[2:]}" not in block
        ]
        for name, command in commands.items()
    }
    assert {name: options for name, options in missing.items() if options} == {}
    unlisted = [name for name in commands if not re.search(rf"\b{name.split()[-1]}\b", block)]
    assert unlisted == []


def test_the_readme_names_every_published_table() -> None:
    """The table of what `make run` leaves names the tables in `marts.duckdb`, and the
    Tables section describes each; `model_quality` was missing from the first."""
    from nightshift.tables import MARTS

    readme = README.read_text()
    (marts_row,) = [line for line in readme.splitlines() if line.startswith("| `marts.duckdb` |")]
    tables_section = readme.split("\n## Tables\n", 1)[1].split("\n## ", 1)[0]
    published = [*MARTS, "runs"]
    assert [name for name in published if f"`{name}`" not in marts_row] == []
    assert [name for name in published if f"| `{name}` |" not in tables_section] == []


def readme_contract() -> dict[str, tuple[list[tuple[str, str]], str]]:
    """The README's data contract table: {table: ([(column, what the parentheses say)], key)}."""
    section = README.read_text().split("\n## Data contract\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("table", "---"):
            continue
        columns, depth, current = [], 0, ""
        for char in cells[1] + ",":
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                name, _, note = current.strip().partition(" (")
                columns.append((name, note.rstrip(")")))
                current = ""
            else:
                current += char
        rows[cells[0]] = (columns, cells[2])
    return rows


def test_the_readme_data_contract_is_the_declared_one() -> None:
    """Columns, their order, which are optional, their kind where the README gives one, and
    the keys, as `nightshift.contract` declares them (what ingest enforces)."""
    from nightshift.contract import CONTRACTS

    documented = readme_contract()
    assert sorted(documented) == sorted(CONTRACTS)
    kinds = {"str": "str", "int": "int", "decimal": "decimal", "float": "float",
             "timestamp": "timestamp", "date": "date", "bool": "bool"}  # fmt: skip
    for table, contract in CONTRACTS.items():
        columns, key = documented[table]
        assert [name for name, _ in columns] == contract.column_names, table
        for (name, note), column in zip(columns, contract.columns, strict=True):
            words = re.findall(r"[a-z_]+", note)
            assert ("optional" in words) is (not column.required), (table, name)
            written = [kinds[w] for w in words if w in kinds]
            assert written in ([], [column.kind]), (table, name, note)
        assert key == (", ".join(contract.key) if contract.key else "—"), table
