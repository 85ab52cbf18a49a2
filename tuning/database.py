"""The tuning database: measured schedules per (task, target), in one SQLite file.

    db = TuningDatabase("tuning.db")                 # created if missing
    db.add(TuningRecord(task.key, target_id(), trace, "ok", seconds=1.2e-4))
    db.best(task.key, target_id())                   # fastest "ok" record, or None
    db.export_jsonl("records.jsonl"); other.import_jsonl("records.jsonl")

Every measured candidate is a record (status "ok", "wrong", "crash", "timeout"), and so
is every rejected one ("invalid", with the reason), each with its environment (mlc
version, CPU, ...) and time. `best` only returns records of the target asked for:
times from another machine are never used. Records are written one by one and
committed at once, so an interrupted tuning run keeps everything measured. JSON lines
(one record per line) share records between machines; importing the same record twice
adds it once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "DatabaseError", "TuningDatabase", "TuningRecord"]

#: what a candidate's measurement can come to ("invalid": rejected before measurement)
STATUSES = ("ok", "invalid", "wrong", "crash", "timeout")

SCHEMA_VERSION = 2
#: what each older schema version lacks, added when such a file is opened
_MIGRATIONS = {
    1: "ALTER TABLE records ADD COLUMN decisions TEXT NOT NULL DEFAULT '[]'",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_key TEXT NOT NULL,
    target TEXT NOT NULL,
    task_name TEXT NOT NULL DEFAULT '',
    trace TEXT NOT NULL,
    status TEXT NOT NULL,
    seconds REAL,
    runs TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    is_default INTEGER NOT NULL DEFAULT 0,
    environment TEXT NOT NULL DEFAULT '{}',
    timestamp REAL NOT NULL,
    decisions TEXT NOT NULL DEFAULT '[]',
    UNIQUE (task_key, target, trace, timestamp)
);
CREATE INDEX IF NOT EXISTS records_by_task ON records (task_key, target, status, seconds);
"""

_COLUMNS = (
    "task_key",
    "target",
    "task_name",
    "trace",
    "status",
    "seconds",
    "runs",
    "error",
    "is_default",
    "environment",
    "timestamp",
    "decisions",
)


class DatabaseError(ValueError):
    """A database file or JSON record that is not what this module writes."""


@dataclass(frozen=True)
class TuningRecord:
    """One measured (or rejected) schedule of a task on a target."""

    task_key: str
    target: str
    trace: str
    status: str
    seconds: float | None = None
    runs: tuple[float, ...] = ()
    error: str = ""
    task_name: str = ""
    #: the trace is the default schedule's (the speed-up baseline)
    is_default: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    #: the search space's decisions that drew the trace (`Candidate.decisions`): what the
    #: evolutionary search mutates; () for the default schedule
    decisions: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise DatabaseError(f"unknown status {self.status!r} (expected one of {STATUSES})")
        if self.status == "ok" and self.seconds is None:
            raise DatabaseError("an 'ok' record needs its measured seconds")
        if not all(isinstance(u, float) and 0.0 <= u < 1.0 for u in self.decisions):
            raise DatabaseError("decisions must be numbers in [0, 1)")

    def to_json(self) -> dict[str, Any]:
        return {
            "task_key": self.task_key,
            "target": self.target,
            "task_name": self.task_name,
            "trace": self.trace,
            "status": self.status,
            "seconds": self.seconds,
            "runs": list(self.runs),
            "error": self.error,
            "is_default": self.is_default,
            "environment": dict(self.environment),
            "timestamp": self.timestamp,
            "decisions": list(self.decisions),
        }

    @staticmethod
    def from_json(data: Any) -> TuningRecord:
        """A record from its JSON object (types checked)."""
        if not isinstance(data, dict):
            raise DatabaseError(f"a record must be a JSON object, got {type(data).__name__}")
        try:
            seconds = data.get("seconds")
            environment = data.get("environment", {})
            if not isinstance(environment, dict):
                raise DatabaseError("'environment' must be an object")
            return TuningRecord(
                task_key=_str(data["task_key"]),
                target=_str(data["target"]),
                trace=_str(data["trace"]),
                status=_str(data["status"]),
                seconds=None if seconds is None else float(seconds),
                runs=tuple(float(x) for x in data.get("runs", [])),
                error=_str(data.get("error", "")),
                task_name=_str(data.get("task_name", "")),
                is_default=bool(data.get("is_default", False)),
                environment={_str(k): _str(v) for k, v in environment.items()},
                timestamp=float(data.get("timestamp", time.time())),
                decisions=tuple(float(u) for u in data.get("decisions", [])),
            )
        except KeyError as e:
            raise DatabaseError(f"a record lacks {e}") from None
        except (TypeError, ValueError) as e:
            raise DatabaseError(f"a bad record: {e}") from None

    def _row(self) -> tuple[Any, ...]:
        return (
            self.task_key,
            self.target,
            self.task_name,
            self.trace,
            self.status,
            self.seconds,
            json.dumps(list(self.runs)),
            self.error,
            int(self.is_default),
            json.dumps(self.environment, sort_keys=True),
            self.timestamp,
            json.dumps(list(self.decisions)),
        )

    @staticmethod
    def _from_row(row: sqlite3.Row) -> TuningRecord:
        return TuningRecord(
            task_key=row["task_key"],
            target=row["target"],
            trace=row["trace"],
            status=row["status"],
            seconds=row["seconds"],
            runs=tuple(json.loads(row["runs"])),
            error=row["error"],
            task_name=row["task_name"],
            is_default=bool(row["is_default"]),
            environment=json.loads(row["environment"]),
            timestamp=row["timestamp"],
            decisions=tuple(json.loads(row["decisions"])),
        )


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise DatabaseError(f"expected a string, got {type(value).__name__}")
    return value


class TuningDatabase:
    """Tuning records in the SQLite file `path` (created unless `create=False`)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise FileNotFoundError(f"no tuning database at {self.path}")
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._open()
        except sqlite3.DatabaseError as e:
            raise DatabaseError(f"{self.path}: not a tuning database ({e})") from None

    def _open(self) -> None:
        """Create the tables in a new file; bring an older schema up to date."""
        has_records = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'"
        ).fetchone()
        if not has_records:
            self._db.executescript(_SCHEMA)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        version = SCHEMA_VERSION if row is None and not has_records else None
        if row is not None and row["value"].isdigit():
            version = int(row["value"])
        if version is None or not 1 <= version <= SCHEMA_VERSION:
            found = "none" if row is None else row["value"]
            raise DatabaseError(
                f"{self.path}: schema version {found}, expected {SCHEMA_VERSION} or older"
            )
        with self._db:
            for old in range(version, SCHEMA_VERSION):
                self._db.execute(_MIGRATIONS[old])
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TuningDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, record: TuningRecord) -> bool:
        """Store `record` (committed at once); False if the same record was there."""
        with self._db:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO records ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                record._row(),
            )
        return cursor.rowcount == 1

    def best(self, task_key: str, target: str) -> TuningRecord | None:
        """The latest "ok" record of the fastest trace of `task_key` on `target` (None if
        there is none). A trace measured several times counts by its median time, so one
        lucky measurement on a noisy machine does not decide once the best candidates
        have been measured again (`tune` does that for its best few)."""
        times: dict[str, list[float]] = {}
        latest: dict[str, sqlite3.Row] = {}
        for row in self._db.execute(
            "SELECT * FROM records WHERE task_key = ? AND target = ? AND status = 'ok' ORDER BY id",
            (task_key, target),
        ):
            times.setdefault(row["trace"], []).append(row["seconds"])
            latest[row["trace"]] = row
        if not times:
            return None
        trace = min(times, key=lambda t: (statistics.median(times[t]), -latest[t]["id"]))
        return TuningRecord._from_row(latest[trace])

    def records(
        self,
        task_key: str | None = None,
        target: str | None = None,
        status: str | None = None,
    ) -> list[TuningRecord]:
        """Records (all, or of a task / target / status), oldest first."""
        return list(self._select(task_key, target, status))

    def _select(
        self, task_key: str | None, target: str | None, status: str | None
    ) -> Iterator[TuningRecord]:
        where, args = [], []
        for column, value in (("task_key", task_key), ("target", target), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM records" + (f" WHERE {' AND '.join(where)}" if where else "")
        for row in self._db.execute(sql + " ORDER BY id", args):
            yield TuningRecord._from_row(row)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def export_jsonl(self, path: str | os.PathLike[str], *, target: str | None = None) -> int:
        """Write the records (of `target`, or all) as JSON lines; returns how many."""
        n = 0
        with open(path, "w", encoding="utf-8") as out:
            for record in self._select(None, target, None):
                out.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
                n += 1
        return n

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Add the records of a JSON-lines file (all or none: a bad line raises
        `DatabaseError` naming it); returns how many were new."""
        records = []
        with open(path, encoding="utf-8") as lines:
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    records.append(TuningRecord.from_json(json.loads(line)))
                except (json.JSONDecodeError, DatabaseError) as e:
                    raise DatabaseError(f"{path}:{lineno}: {e}") from None
        return sum(self.add(r) for r in records)
