"""The view definitions (``nbs/store/views/*.sql``) are the database's: applied after the
migrations on a new database and on an upgraded one, again when a file changes, and
otherwise never (a command on an up-to-date database only reads)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import duckdb
import pytest

from nbs import store

schema = importlib.import_module("nbs.store.schema")

_DEFINED = re.compile(r"^CREATE OR REPLACE (VIEW|MACRO) (\w+)", re.M)


def _definitions(db: Path) -> dict[str, str]:
    """The views' and table macros' definitions as DuckDB keeps them."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        views = con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
        macros = con.execute(
            "SELECT function_name, macro_definition FROM duckdb_functions() "
            "WHERE function_type = 'table_macro' AND NOT internal"
        ).fetchall()
    finally:
        con.close()
    return dict(views) | dict(macros)


def _mark(db: Path) -> str | None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return schema._applied_views(con)
    finally:
        con.close()


def _at_migration(db: Path, last: int) -> None:
    """A database as migration ``last`` left it (made by an older version)."""
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMP NOT NULL)"
    )
    for number, name, sql in store.migration_scripts():
        if number <= last:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, name])
    con.close()


def test_every_file_defines_one_object_named_as_the_file() -> None:
    scripts = store.view_scripts()
    assert [n for n, _, _ in scripts] == list(range(1, len(scripts) + 1))
    for _, name, sql in scripts:
        assert [m.group(2) for m in _DEFINED.finditer(sql)] == [name]


def test_a_new_database_has_the_views_of_the_files(db_path: Path) -> None:
    store.migrate(db_path)
    defined = _definitions(db_path)
    assert {name for _, name, _ in store.view_scripts()} == set(defined)
    # the files applied again change nothing: the database holds their definitions
    con = duckdb.connect(str(db_path))
    for _, _, sql in store.view_scripts():
        con.execute(sql)
    con.close()
    assert _definitions(db_path) == defined
    assert _mark(db_path) == schema.views_mark()


def test_an_upgraded_database_gets_the_views_of_the_files(db_path: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.duckdb"
    store.migrate(fresh)
    db_path.parent.mkdir(parents=True)
    _at_migration(db_path, 11)
    assert store.ensure_schema(db_path) == list(range(12, store.schema_version(fresh) + 1))
    assert _definitions(db_path) == _definitions(fresh)
    assert _mark(db_path) == schema.views_mark()


def test_a_database_of_the_previous_version_gets_them_without_a_migration(
    db_path: Path, tmp_path: Path
) -> None:
    """Migrated to the latest number before the views were files: no mark yet."""
    fresh = tmp_path / "fresh.duckdb"
    store.migrate(fresh)
    db_path.parent.mkdir(parents=True)
    _at_migration(db_path, store.schema_version(fresh))
    assert _mark(db_path) is None
    assert store.ensure_schema(db_path) == []
    assert _definitions(db_path) == _definitions(fresh)
    assert _mark(db_path) == schema.views_mark()


def test_an_up_to_date_database_is_only_read(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.migrate(db_path)

    def no_writing(db: Path) -> list[int]:
        raise AssertionError("an up-to-date database was opened for writing")

    monkeypatch.setattr(schema, "migrate", no_writing)
    assert store.ensure_schema(db_path) == []


def test_a_changed_file_is_applied_once(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.migrate(db_path)
    scripts = store.view_scripts()
    changed = [
        (n, name, sql.replace("FROM retests", "FROM retests WHERE status = 'open'"))
        if name == "retest_worklist"
        else (n, name, sql)
        for n, name, sql in scripts
    ]
    monkeypatch.setattr(schema, "view_scripts", lambda: changed)
    assert store.ensure_schema(db_path) == []
    assert "WHERE (status = 'open')" in _definitions(db_path)["retest_worklist"]
    assert _mark(db_path) == schema.views_mark()
    writes = []
    monkeypatch.setattr(schema, "migrate", lambda db: writes.append(db) or [])
    store.ensure_schema(db_path)
    assert writes == []


def test_a_failing_definition_changes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.migrate(db_path)
    before, mark = _definitions(db_path), _mark(db_path)
    scripts = store.view_scripts()
    broken = [
        (n, name, sql.replace("FROM retests", "FROM retests_gone")) for n, name, sql in scripts
    ]
    monkeypatch.setattr(schema, "view_scripts", lambda: broken)
    with pytest.raises(store.MigrationFailed, match=r"view definition 003 \(retest_worklist\)"):
        store.ensure_schema(db_path)
    assert _definitions(db_path) == before and _mark(db_path) == mark


def test_a_database_of_a_newer_version_keeps_its_views(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.migrate(db_path)
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO schema_migrations VALUES (999, 'from_the_future', now())")
    con.execute("CREATE OR REPLACE VIEW retest_worklist AS SELECT 1 AS newer")
    con.execute("COMMENT ON TABLE schema_migrations IS 'view definitions of a newer version'")
    con.close()
    assert store.ensure_schema(db_path) == []
    assert store.migrate(db_path) == []
    assert "newer" in _definitions(db_path)["retest_worklist"]
