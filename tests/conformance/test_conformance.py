"""The ONNX conformance baseline may not regress: no crashes, no wrong results, and every
case that passed when the baseline was committed still passes."""

import json
from pathlib import Path

import pytest

from mlc.testing.conformance import collect_cases, run_all, summarize

BASELINE = Path(__file__).parent / "baseline.json"


@pytest.fixture(scope="module")
def results():  # type: ignore[no-untyped-def]
    return run_all(collect_cases())


def test_no_case_crashes_or_is_wrong(results) -> None:  # type: ignore[no-untyped-def]
    bad = [f"{r.name}: {r.status}: {r.detail}" for r in results if r.status in ("crashed", "wrong")]
    assert not bad, "\n".join(bad)


def test_no_regression_against_committed_baseline(results) -> None:  # type: ignore[no-untyped-def]
    baseline = json.loads(BASELINE.read_text())
    now = {r.name: r.status for r in results}
    regressed = [
        name for name, status in baseline["cases"].items() if status == "passed" and now.get(name) != "passed"
    ]
    assert not regressed, f"cases that passed in the baseline now fail: {regressed}"
    summary = summarize(results)
    assert summary["in_scope"]["passed"] >= baseline["summary"]["in_scope"]["passed"]
    assert summary["all"]["passed"] >= baseline["summary"]["all"]["passed"]
