"""Run work in forked child processes with a timeout, a few at a time.

Each child gets its own working directory (its current directory, `TMPDIR` and the
place its stderr goes), a private compile cache (`MLC_CACHE_DIR`), `MLC_NUM_THREADS=1`,
no core dumps, no `.pyc` writes and optionally a cap on its address space. The work function runs in the
child and returns a JSON-able dict, which the child writes as `report.json`; the parent
reads it back (no pickle). A child that dies from a signal, exits without a report or
runs past the timeout (then its process group is killed) is reported as such.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

Work = Callable[[Path], dict[str, Any]]
"""Runs in the child with its working directory; returns a JSON-able report."""

K = TypeVar("K")

REPORT = "report.json"
STDERR = "stderr.txt"
_CHILD_FAILED = 70  # exit status of a child whose work function raised


@dataclass
class ChildResult:
    """What became of one child."""

    report: dict[str, Any] | None
    """The work function's report; None when it did not finish."""
    status: int | None = None
    """The exit status, when the child exited."""
    signal: int | None = None
    """The signal that ended the child (not counting our own kill after a timeout)."""
    timed_out: bool = False
    stderr: str = ""
    """The last 8000 characters the child wrote to stderr."""
    seconds: float = 0.0


def child_environment(workdir: Path, cache_dir: Path) -> dict[str, str]:
    """The environment variables a child sets before it runs its work."""
    return {
        "MLC_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MLC_COMPILE_JOBS": "1",
        "MLC_CACHE_DIR": str(cache_dir),
        "MLC_REGRESSION_DIR": str(workdir),
        "TMPDIR": str(workdir),
    }


def _child(work: Work, workdir: Path, cache_dir: Path, memory_limit: int | None) -> None:
    """The child's side: set up, run `work`, write the report, `_exit` (never returns)."""
    code = _CHILD_FAILED
    try:
        os.setpgid(0, 0)
        err = open(workdir / STDERR, "a", buffering=1)
        null_fd = os.open(os.devnull, os.O_RDWR)
        os.dup2(null_fd, 0)
        os.dup2(null_fd, 1)
        os.dup2(err.fileno(), 2)
        sys.stdin = open(os.devnull)
        sys.stdout = open(os.devnull, "w")
        sys.stderr = err
        faulthandler.cancel_dump_traceback_later()
        faulthandler.enable(file=err)  # a crash shows the Python stack in the stderr tail
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_limit:
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            if hard != resource.RLIM_INFINITY:
                memory_limit = min(memory_limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, hard))
        os.environ.update(child_environment(workdir, cache_dir))
        tempfile.tempdir = str(workdir)
        sys.dont_write_bytecode = True  # nothing written into the source tree
        os.chdir(workdir)
        report = work(workdir)
        partial = workdir / (REPORT + ".part")
        partial.write_text(json.dumps(report, allow_nan=True))
        partial.rename(workdir / REPORT)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


def _start(work: Work, workdir: Path, cache_dir: Path, memory_limit: int | None) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        _child(work, workdir, cache_dir, memory_limit)
    try:
        os.setpgid(pid, pid)  # also here: no race with a kill before the child's own call
    except OSError:
        pass
    return pid


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except OSError:
            continue


def _collect(
    workdir: Path, wait_status: int | None, timed_out: bool, seconds: float
) -> ChildResult:
    report = None
    path = workdir / REPORT
    if path.exists():
        report = json.loads(path.read_text())
    stderr = ""
    if (workdir / STDERR).exists():
        stderr = (workdir / STDERR).read_text(errors="replace")[-8000:]
    result = ChildResult(report, timed_out=timed_out, stderr=stderr, seconds=seconds)
    if wait_status is not None and not timed_out:
        if os.WIFSIGNALED(wait_status):
            result.signal = os.WTERMSIG(wait_status)
        elif os.WIFEXITED(wait_status):
            result.status = os.WEXITSTATUS(wait_status)
    return result


def run_children(
    works: Iterable[tuple[K, Work]],
    *,
    root: Path,
    cache_dir: Path,
    jobs: int = 1,
    timeout: float = 10.0,
    memory_limit: int | None = None,
    keep: bool = False,
) -> Iterator[tuple[K, ChildResult]]:
    """Run each work function in a forked child (at most `jobs` at once, each in
    `root/<n>`); yields `(key, result)` in the order the children finish."""
    pending = iter(works)
    running: dict[int, tuple[K, Path, float]] = {}
    counter = 0
    try:
        while True:
            while len(running) < max(1, jobs):
                item = next(pending, None)
                if item is None:
                    break
                key, work = item
                workdir = root / f"case{counter}"
                counter += 1
                pid = _start(work, workdir, cache_dir, memory_limit)
                running[pid] = (key, workdir, time.monotonic())
            if not running:
                return
            finished = False
            for pid, (key, workdir, started) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                elapsed = time.monotonic() - started
                timed_out = not done and elapsed > timeout
                if timed_out:
                    _kill(pid)
                    os.waitpid(pid, 0)
                if done or timed_out:
                    finished = True
                    del running[pid]
                    result = _collect(workdir, status if done else None, timed_out, elapsed)
                    if not keep:
                        shutil.rmtree(workdir, ignore_errors=True)
                    yield key, result
            if not finished:
                time.sleep(0.005)
    finally:
        for pid in running:  # interrupted: no orphans
            _kill(pid)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def run_child(
    work: Work, *, root: Path, timeout: float = 10.0, memory_limit: int | None = None
) -> ChildResult:
    """Run one work function in a forked child; see `run_children`."""
    ((_, result),) = run_children(
        [(0, work)], root=root, cache_dir=root / "cache", timeout=timeout, memory_limit=memory_limit
    )
    return result
