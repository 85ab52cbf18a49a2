"""Tuning curves (`mlc.tuning.plot`): collected from `tune`'s records as they are
written, drawn with matplotlib (optional)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mlc.tests.unit.tuning.test_search import matmul_task
from mlc.tuning.database import TuningDatabase, TuningRecord
from mlc.tuning.measure import MeasureResult
from mlc.tuning.plot import (
    CurveRecorder,
    KernelCurve,
    MatplotlibMissingError,
    check_plot_path,
    confirmed_model_speedup,
    model_speedup_curve,
    plot_curves,
)
from mlc.tuning.search import TaskResult, tune

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeMeasurer:
    """Seconds from a hash of the trace (a little noise per call); every fourth
    measurement after the first crashes."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]:
        for i, request in enumerate(requests):
            self.calls += 1
            digest = int(hashlib.sha256(request["trace"].encode()).hexdigest(), 16)
            if self.calls % 4 == 0:
                yield i, MeasureResult("crash", error="fake crash")
            else:
                yield i, MeasureResult("ok", seconds=(digest % 1000 + 1 + self.calls) * 1e-6)

    def close(self) -> None:
        pass


def measured(db: TuningDatabase) -> list[TuningRecord]:
    return [r for r in db.records() if r.status != "invalid"]


def running_min(times: Sequence[float | None]) -> list[float | None]:
    out: list[float | None] = []
    for t in times:
        previous = out[-1] if out else None
        out.append(t if previous is None or (t is not None and t < previous) else previous)
    return out


def test_the_curve_is_the_trials_as_recorded(tmp_path: Path) -> None:
    recorder = CurveRecorder()
    with TuningDatabase(tmp_path / "t.db") as db:
        report = tune(
            matmul_task(),
            db=db,
            trials=10,
            seed=3,
            measurer=FakeMeasurer(),
            confirm=False,
            on_record=recorder.record,
        )
        records = measured(db)
    (result,) = report.tasks
    (curve,) = recorder.curves()
    assert curve.name == "mm" and curve.calls == 1
    # without confirmation every measured record is a trial, in the order written
    assert curve.times == [r.seconds if r.status == "ok" else None for r in records]
    assert len(curve.times) == result.trials == 10 and None in curve.times
    ok = [t for t in curve.times if t is not None]
    assert curve.best_so_far() == running_min(curve.times) and curve.best_so_far()[-1] == min(ok)
    assert curve.default_trial == next(i for i, r in enumerate(records) if r.is_default)
    assert curve.default_seconds == result.default_seconds
    assert curve.best_seconds == result.best_seconds == min(ok)


def test_invalid_candidates_and_confirmation_measurements_are_not_trials(tmp_path: Path) -> None:
    recorder = CurveRecorder()
    with TuningDatabase(tmp_path / "t.db") as db:
        report = tune(
            matmul_task(),
            db=db,
            trials=6,
            seed=1,
            measurer=FakeMeasurer(),
            on_record=recorder.record,
        )
        records = measured(db)
    (result,) = report.tasks
    (curve,) = recorder.curves()
    assert result.confirmed and len(records) > result.trials == len(curve.times) == 6
    assert curve.times == [r.seconds if r.status == "ok" else None for r in records[:6]]
    # the default and best lines are the medians the table reports
    assert (curve.default_seconds, curve.best_seconds) == (
        result.default_seconds,
        result.best_seconds,
    )


def test_a_time_measured_on_another_target_is_no_time_here() -> None:
    task = matmul_task()
    result = TaskResult(task)
    recorder = CurveRecorder(target="here")

    def record(
        trace: str, status: str = "ok", seconds: float | None = 1.0, target: str = "here"
    ) -> None:
        recorder.record(result, TuningRecord(task.key, target, trace, status, seconds))

    record("a", seconds=2.0)
    result._offer("a", 2.0)  # as the tuner does after recording
    record("b", seconds=1.0, target="another kind of node")
    record("c", status="invalid", seconds=None)
    record("d", status="crash", seconds=None)
    record("a", seconds=2.5)  # measured again: a confirmation
    (curve,) = recorder.curves()
    assert curve.times == [2.0, None, None] and curve.best_so_far() == [2.0, 2.0, 2.0]


def test_best_so_far_and_the_model_speedup() -> None:
    a = KernelCurve("a", calls=2, times=[None, 4.0, 5.0, 2.0], default_seconds=4.0, best_seconds=2)
    b = KernelCurve("b", times=[10.0, 5.0], default_seconds=10.0, best_seconds=6.0)
    c = KernelCurve("c", times=[1.0])  # no default time: not in the estimate
    assert a.best_so_far() == [None, 4.0, 4.0, 2.0]
    assert KernelCurve("d").best_so_far() == []
    # defaults 4 x 2 + 10 = 18; a's 2.0 saves 4, b's 5.0 saves 5
    assert model_speedup_curve([a, b, c]) == pytest.approx([1, 1, 1, 18 / 14, 18 / 14, 2, 2])
    assert confirmed_model_speedup([a, b, c]) == pytest.approx(18 / (2 * 2 + 6))
    assert model_speedup_curve([c]) == [] and confirmed_model_speedup([c]) is None


def test_plot_curves_writes_an_image(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    curves = [
        KernelCurve("conv", 2, [1e-3, None, 9e-4, 2e-2, 8e-4], 0, 1e-3, 8.5e-4),
        KernelCurve("relu", 1, [3e-7, 2e-7], 1, 2.5e-7, 2e-7),
        KernelCurve("bias"),  # interrupted before its first trial
    ]
    out = plot_curves(curves, tmp_path / "tuning.png", title="test")
    assert out.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = imread(out).shape
    assert (width, height) == (1260, 640)  # 3 kernels and the model: 3 columns, 2 rows
    plot_curves(curves[:1], tmp_path / "one.svg")  # the format from the suffix
    assert b"<svg" in (tmp_path / "one.svg").read_bytes()[:1000]


def test_check_plot_path(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert check_plot_path(tmp_path / "a.png") == tmp_path / "a.png"
    with pytest.raises(ValueError, match=r"\.png"):
        check_plot_path(tmp_path / "a.curves")
    with pytest.raises(ValueError, match="no such directory"):
        check_plot_path(tmp_path / "missing" / "a.png")


def test_plotting_without_matplotlib_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(MatplotlibMissingError, match=r"pip install 'mlc\[plot\]'"):
        check_plot_path(tmp_path / "a.png")
    with pytest.raises(MatplotlibMissingError):
        plot_curves([KernelCurve("a", times=[1.0])], tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
