"""The ONNX conformance baseline may not regress: no crashes, no wrong results, and every
case that passed when the baseline was committed still passes, in the interpreter and
natively (compiled with `mlc.compile`).

The interpreter part runs every case (~20 s). The native part (compile + run, ~0.5 s of CPU
per case) runs on a deterministic twelfth of the interpreter-passing cases by default
(about 125 of 1486), to keep this test near a minute on two cores; `MLC_CONFORMANCE_NATIVE=all` runs all of them (as
the CLI does: `python -m mlc.testing.conformance`), `MLC_CONFORMANCE_NATIVE=off` none.
"""

import ctypes
import faulthandler
import json
import multiprocessing
import os
import time
import zlib
from pathlib import Path

import pytest

from mlc.testing import conformance
from mlc.testing.conformance import collect_cases, run_all, summarize

BASELINE = Path(__file__).parent / "baseline.json"
#: run natively every case whose name's CRC-32 is divisible by this
NATIVE_SAMPLE = 12


def _native_selected(name: str) -> bool:
    mode = os.environ.get("MLC_CONFORMANCE_NATIVE", "sample")
    if mode == "all":
        return True
    if mode == "off":
        return False
    return zlib.crc32(name.encode()) % NATIVE_SAMPLE == 0


@pytest.fixture(scope="module")
def results():  # type: ignore[no-untyped-def]
    return run_all(collect_cases(), native=_native_selected)


def test_no_case_crashes_or_is_wrong(results) -> None:  # type: ignore[no-untyped-def]
    bad = [f"{r.name}: {r.status}: {r.detail}" for r in results if r.status in ("crashed", "wrong")]
    bad += [
        f"{r.name}: native {r.native}: {r.native_detail}"
        for r in results
        if r.native in ("crashed", "wrong")
    ]
    assert not bad, "\n".join(bad)


def test_no_regression_against_committed_baseline(results) -> None:  # type: ignore[no-untyped-def]
    baseline = json.loads(BASELINE.read_text())
    now = {r.name: r.status for r in results}
    regressed = [
        name
        for name, status in baseline["cases"].items()
        if status == "passed" and now.get(name) != "passed"
    ]
    assert not regressed, f"cases that passed in the baseline now fail: {regressed}"
    summary = summarize(results)
    assert summary["in_scope"]["passed"] >= baseline["summary"]["in_scope"]["passed"]
    assert summary["all"]["passed"] >= baseline["summary"]["all"]["passed"]


def test_no_native_regression_against_committed_baseline(results) -> None:  # type: ignore[no-untyped-def]
    baseline = json.loads(BASELINE.read_text())["native_cases"]
    native = {r.name: (r.native, r.native_detail) for r in results}
    checked = [name for name in baseline if _native_selected(name)]
    assert checked, "no case was compiled"
    regressed = [
        f"{name}: {native.get(name, ('not compiled', ''))}"
        for name in checked
        if baseline[name] == "passed" and native.get(name, ("",))[0] != "passed"
    ]
    assert not regressed, "cases that passed natively in the baseline now fail:\n" + "\n".join(
        regressed
    )


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="patches the forked workers"
)
def test_a_native_segfault_or_hang_is_a_crash_of_that_case_only(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def fake_run_native(task: conformance.NativeTask) -> tuple[str, str]:
        if task.name == "segfault":
            faulthandler.disable()  # no traceback dump in the test's output
            ctypes.string_at(0)
        if task.name == "hang":
            time.sleep(60)
        return "passed", ""

    monkeypatch.setattr(conformance, "run_native", fake_run_native)
    names = ["a", "segfault", "b", "hang", "c", "d"]
    tasks = [conformance.NativeTask(n, b"", (), [], 1e-4, 1e-6) for n in names]
    got = conformance.run_native_all(tasks, jobs=2, timeout=3, recycle=2)
    assert {n: s for n, (s, _) in got.items()} == {
        "a": "passed",
        "segfault": "crashed",
        "b": "passed",
        "hang": "crashed",
        "c": "passed",
        "d": "passed",
    }
    assert "signal" in got["segfault"][1] and "timeout" in got["hang"][1]
