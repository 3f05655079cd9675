"""A store written before version 5 gets its keys recomputed once, losing nothing: the committed
store of tests/data/results_page was written by the version before (store version 4)."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from lengthgen import migrate
from lengthgen import store as store_module
from lengthgen.cli import main
from lengthgen.config import load_run_config
from lengthgen.store import SCHEMA_VERSION, ResultsStore

DATA = Path(__file__).resolve().parent / "data" / "results_page"


def _dump(path: Path) -> dict:
    """Every row of every table, keyed by run name where a row belongs to a run."""
    conn = sqlite3.connect(path / "results.sqlite")
    names = dict(conn.execute("SELECT key, name FROM runs"))
    tables = {}
    for table, column in migrate.KEY_TABLES:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        at = [d[0] for d in conn.execute(f"SELECT * FROM {table}").description].index(column)
        tables[table] = sorted(tuple(names.get(v, v) if i == at else v for i, v in enumerate(r)) for r in rows)
    return tables


@pytest.fixture
def old_store(tmp_path):
    shutil.copytree(DATA / "store", tmp_path / "store")
    shutil.copy(DATA / "tiny.yaml", tmp_path)
    root = tmp_path / "store"
    keys = [k for (k,) in sqlite3.connect(root / "results.sqlite").execute("SELECT key FROM runs")]
    for key in keys:  # the files a run leaves: a model, a checkpoint set aside, a TensorBoard folder
        model, _, aside, board = ResultsStore(root).run_files(key)
        for path in (model, aside, board / "events"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(key)
    return root, keys


def test_opening_an_older_store_recomputes_every_key_and_loses_nothing(old_store, monkeypatch):
    root, old_keys = old_store
    before = _dump(root)
    runs = ResultsStore(root).runs()
    assert sqlite3.connect(root / "results.sqlite").execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for run in runs:
        config = {k: v for k, v in run.config.items() if k != "resolved"}
        assert run.key == load_run_config(config).key() and run.key not in old_keys
        model, _, aside, board = ResultsStore(root).run_files(run.key)
        for path in (model, aside, board / "events"):
            assert path.read_text() in old_keys  # the old run's file, under its new name
    assert _dump(root) == before  # the same rows, run by run
    text = "\n".join("\n".join(map(str, r)) for r in sqlite3.connect(root / "results.sqlite").iterdump())
    assert not any(key in text for key in old_keys)
    assert not any(p.name.startswith(tuple(old_keys)) for p in root.rglob("*"))
    # The runs are recognised as the experiment's: running it again trains nothing.
    finished = {r.key: r.finished_at for r in runs}
    monkeypatch.chdir(root.parent)
    assert main(["--root", "store", "run", "tiny.yaml", "--no-report"]) == 0
    assert {r.key: r.finished_at for r in ResultsStore(root).runs()} == finished


def test_a_migration_cut_short_is_finished_by_the_next_opening(old_store, monkeypatch):
    root, old_keys = old_store

    def crash(conn, keys):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "rename_rows", crash)
    with pytest.raises(KeyboardInterrupt):
        ResultsStore(root).runs()
    assert sqlite3.connect(root / "results.sqlite").execute("PRAGMA user_version").fetchone()[0] == 4
    assert sorted(k for (k,) in sqlite3.connect(root / "results.sqlite").execute("SELECT key FROM runs")) == \
        sorted(old_keys)
    monkeypatch.undo()
    runs = ResultsStore(root).runs()
    assert len(runs) == len(old_keys)
    for run in runs:
        assert ResultsStore(root).run_files(run.key)[0].read_text() in old_keys


def test_a_run_whose_config_does_not_load_keeps_its_key(old_store):
    root, old_keys = old_store
    with sqlite3.connect(root / "results.sqlite") as conn:
        conn.execute("UPDATE runs SET config=? WHERE key=?", (json.dumps({"task": {"name": "no_such_task"}}),
                                                              old_keys[0]))
    with pytest.warns(UserWarning, match=f"1 run\\(s\\) keep their key.*{old_keys[0]}"):
        keys = {r.key for r in ResultsStore(root).runs()}
    assert old_keys[0] in keys and not keys & set(old_keys[1:])
