"""The tuning database: records round-trip through SQLite and JSON lines."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mlc.tuning.database import DatabaseError, TuningDatabase, TuningRecord


def record(trace: str, seconds: float | None, status: str = "ok", **kw: object) -> TuningRecord:
    fields: dict[str, object] = {"task_key": "k1", "target": "cpu-a", "timestamp": 1.0}
    fields.update(kw)
    return TuningRecord(trace=trace, status=status, seconds=seconds, **fields)  # type: ignore[arg-type]


def test_add_best_records(tmp_path: Path) -> None:
    with TuningDatabase(tmp_path / "t.db") as db:
        assert db.best("k1", "cpu-a") is None
        db.add(record("lower t0\n", 2e-3, is_default=True, environment={"mlc": "0.1.0"}))
        db.add(record("lower t0\nsplit t0/i 4\n", 1e-3, runs=(1e-3, 1.1e-3), timestamp=2.0))
        db.add(
            record("lower t0\nparallel t0/k\n", None, "invalid", error="reduction", timestamp=3.0)
        )
        db.add(record("lower t0\nunroll t0/i\n", 1e-4, target="cpu-b", timestamp=4.0))
        db.add(record("lower t0\nsplit t0/i 2\n", None, "crash", timestamp=5.0))
        best = db.best("k1", "cpu-a")
        assert best is not None and best.trace == "lower t0\nsplit t0/i 4\n"
        assert best.runs == (1e-3, 1.1e-3)
        assert db.best("k1", "cpu-b").seconds == 1e-4  # type: ignore[union-attr]
        assert db.best("k2", "cpu-a") is None
        assert len(db.records("k1", "cpu-a")) == 4
        assert [r.error for r in db.records(status="invalid")] == ["reduction"]
        assert db.records(status="ok", target="cpu-a")[0].environment == {"mlc": "0.1.0"}
        assert db.records()[0].is_default
        assert not db.add(record("lower t0\n", 2e-3))  # the same record: added once
    # reopened: everything is there
    with TuningDatabase(tmp_path / "t.db") as db:
        assert len(db) == 5


def test_jsonl_round_trip(tmp_path: Path) -> None:
    src = TuningDatabase(tmp_path / "a.db")
    for i, status in enumerate(["ok", "wrong", "timeout", "ok"]):
        src.add(
            record(
                f"lower t0\nsplit t0/i {i + 2}\n",
                1e-3 * (i + 1) if status == "ok" else None,
                status,
                timestamp=float(i),
            )
        )
    src.add(record("lower t0\n", 5e-4, target="cpu-b"))
    assert src.export_jsonl(tmp_path / "all.jsonl") == 5
    assert src.export_jsonl(tmp_path / "a.jsonl", target="cpu-a") == 4
    dst = TuningDatabase(tmp_path / "b.db")
    assert dst.import_jsonl(tmp_path / "all.jsonl") == 5
    assert dst.import_jsonl(tmp_path / "all.jsonl") == 0  # already there
    assert dst.records() == src.records()
    assert dst.best("k1", "cpu-a") == src.best("k1", "cpu-a")
    line = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    assert set(line) >= {
        "task_key",
        "target",
        "trace",
        "status",
        "seconds",
        "environment",
        "timestamp",
    }


def test_bad_records_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="unknown status"):
        record("lower t0\n", 1.0, "fast")
    with pytest.raises(DatabaseError, match="seconds"):
        record("lower t0\n", None, "ok")
    bad = tmp_path / "bad.jsonl"
    good = json.dumps(record("lower t0\n", 1.0).to_json())
    bad.write_text(good + "\n" + '{"task_key": "k1", "target": 3}\n')
    db = TuningDatabase(tmp_path / "t.db")
    with pytest.raises(DatabaseError, match="bad.jsonl:2"):
        db.import_jsonl(bad)
    assert len(db) == 0  # all or nothing
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(DatabaseError, match="not a tuning database"):
        TuningDatabase(tmp_path / "junk.db")
    with pytest.raises(FileNotFoundError):
        TuningDatabase(tmp_path / "missing.db", create=False)


def test_decisions_round_trip(tmp_path: Path) -> None:
    """The sampling decisions of a record (what the evolution mutates) survive SQLite and
    JSON lines exactly; out-of-range ones are refused."""
    decisions = (0.1, 0.7310585786300049, 0.0, 0.9999999999999999)
    with TuningDatabase(tmp_path / "a.db") as db:
        db.add(record("lower t0\n", 1e-3, decisions=decisions))
        assert db.records()[0].decisions == decisions
        db.export_jsonl(tmp_path / "r.jsonl")
    with TuningDatabase(tmp_path / "b.db") as other:
        other.import_jsonl(tmp_path / "r.jsonl")
        assert other.records()[0].decisions == decisions
    with pytest.raises(DatabaseError, match="decisions"):
        record("lower t0\n", 1.0, decisions=(1.5,))


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task_key TEXT NOT NULL, target TEXT NOT NULL,
    task_name TEXT NOT NULL DEFAULT '', trace TEXT NOT NULL, status TEXT NOT NULL,
    seconds REAL, runs TEXT NOT NULL DEFAULT '[]', error TEXT NOT NULL DEFAULT '',
    is_default INTEGER NOT NULL DEFAULT 0, environment TEXT NOT NULL DEFAULT '{}',
    timestamp REAL NOT NULL, UNIQUE (task_key, target, trace, timestamp));
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO records (task_key, target, trace, status, seconds, timestamp)
    VALUES ('k1', 'cpu-a', 'lower t0
', 'ok', 0.002, 1.0);
"""


def test_a_version_1_database_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SCHEMA)
    with TuningDatabase(path) as db:
        (old_record,) = db.records()
        assert old_record.seconds == 0.002 and old_record.decisions == ()
        db.add(record("lower t0\nsplit t0/i 4\n", 1e-3, decisions=(0.5,), timestamp=2.0))
    with TuningDatabase(path) as db:
        assert [r.decisions for r in db.records()] == [(), (0.5,)]
    with sqlite3.connect(path) as newer:
        newer.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(DatabaseError, match="schema version 99"):
        TuningDatabase(path)
