"""`mlc tune`: a real (tiny) tuning run from the command line, then compiling with it;
--kernels, --plot and the measurement backend (never Ray here: `--backend process`, a
fake measurer or a fake `tune`)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlc
from mlc.tools import mlc as mlc_cli
from mlc.tuning import plot as tuning_plot
from mlc.tuning import search
from mlc.tuning.database import TuningDatabase
from mlc.tuning.measure import MeasureResult
from mlc.tuning.task import KernelPatternError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _relu_model(path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 40])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 40])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _two_kernel_model(path: Path) -> None:
    """relu + transpose (one fused kernel, "relu_transpose"), then a matmul ("matmul")."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 40])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [40, 8])
    w = numpy_helper.from_array(np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8), "w")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),
        helper.make_node("MatMul", ["t", "w"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


class _FakeMeasurer:
    """Seconds from a hash of the trace; Ctrl-C after `interrupt_after` measurements."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.interrupt_after = interrupt_after
        self.measured = 0

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]:
        for i, request in enumerate(requests):
            if self.interrupt_after is not None and self.measured >= self.interrupt_after:
                raise KeyboardInterrupt
            self.measured += 1
            digest = int(hashlib.sha256(request["trace"].encode()).hexdigest(), 16)
            yield i, MeasureResult("ok", seconds=(digest % 1000 + 1) * 1e-6)

    def close(self) -> None:
        pass


def test_tune_prints_each_kernel_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, db = tmp_path / "relu.onnx", tmp_path / "tuning.db"
    _relu_model(model)
    argv = ["tune", str(model), "--db", str(db), "--trials", "3", "--seed", "1"]
    argv += ["--backend", "process"]
    assert mlc_cli.main([*argv, "--time-budget", "2m"]) == 0
    out = capsys.readouterr().out
    assert "relu: default" in out and "speed-up" in out and "3 trials" in out
    assert "1 kernels, 3 trials" in out
    with TuningDatabase(db) as records:
        measured = [r for r in records.records() if r.status != "invalid"]
    # 3 candidates, then all 3 measured 3 times more (the confirmation)
    assert len({r.trace for r in measured}) == 3 and len(measured) == 12
    assert all(r.status == "ok" for r in measured)
    x = np.linspace(-1, 1, 160, dtype=np.float32).reshape(4, 40)
    np.testing.assert_array_equal(mlc.compile(model, tuning_db=db)(x)[0], np.maximum(x, 0))


def test_tune_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "relu.onnx"
    _relu_model(model)
    db = str(tmp_path / "t.db")
    assert mlc_cli.main(["tune", str(model), "--db", db, "--time-budget", "soon"]) == 1
    assert "--time-budget" in capsys.readouterr().err
    assert mlc_cli.main(["tune", str(tmp_path / "none.onnx"), "--db", db]) == 1
    assert "no such file" in capsys.readouterr().err
    assert mlc_cli.main(["tune", str(model), "--db", db, "--trials", "0"]) == 1
    assert mlc_cli._duration("10m") == 600 and mlc_cli._duration("90") == 90


def test_tune_progress_shows_trials_and_the_best_time_per_kernel(capsys) -> None:  # type: ignore[no-untyped-def]
    """`mlc tune`'s bar (on a terminal): one per kernel, trials of --trials, best so far."""
    from types import SimpleNamespace

    from mlc.tools.mlc import _TuneProgress

    bars = _TuneProgress(4)
    first, second = SimpleNamespace(name="relu"), SimpleNamespace(name="gemm")
    for trials, task in [(1, first), (2, first), (1, second)]:
        bars.record(SimpleNamespace(task=task, trials=trials, best_seconds=2e-4 / trials), None)
    assert bars.bar.desc.startswith("gemm") and bars.bar.n == 1
    bars.close()
    err = capsys.readouterr().err
    assert "relu" in err and "2/4" in err and "best 100.0 us" in err


def _drawn_curves(monkeypatch: pytest.MonkeyPatch) -> list[list[tuning_plot.KernelCurve]]:
    """The curves of each plot drawn (`plot_curves` still draws them)."""
    drawn: list[list[tuning_plot.KernelCurve]] = []
    real_plot = tuning_plot.plot_curves

    def plot_curves(curves: Sequence[tuning_plot.KernelCurve], path: Any, **kw: Any) -> Path:
        drawn.append(list(curves))
        return real_plot(curves, path, **kw)

    monkeypatch.setattr(tuning_plot, "plot_curves", plot_curves)
    return drawn


def test_tune_kernels_tunes_only_the_matching_kernels_and_plots_their_curves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    model, db, png = tmp_path / "m.onnx", tmp_path / "t.db", tmp_path / "curves.png"
    _two_kernel_model(model)
    drawn = _drawn_curves(monkeypatch)
    argv = ["tune", str(model), "--db", str(db), "--trials", "2", "--backend", "process"]
    assert mlc_cli.main([*argv, "--kernels", "mat*", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "matmul: default" in out and "relu_transpose" not in out and "1 kernels" in out
    assert f"tuning curves in {png}" in out
    with TuningDatabase(db) as records:
        measured = [r for r in records.records() if r.status != "invalid"]
    assert {r.task_name for r in measured} == {"matmul"}
    assert png.read_bytes()[:8] == PNG_MAGIC
    # the curve is the two trials as recorded (the confirmation measurements follow)
    ((curve,),) = drawn
    assert curve.name == "matmul" and len(measured) > 2
    assert curve.times == [r.seconds if r.status == "ok" else None for r in measured[:2]]


def test_tune_kernels_matching_nothing_lists_the_kernels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, db = tmp_path / "m.onnx", tmp_path / "t.db"
    _two_kernel_model(model)
    argv = ["tune", str(model), "--db", str(db), "--backend", "process"]
    assert mlc_cli.main([*argv, "--kernels", "matmul", "conv*", "--kernels", "gemm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'conv*', 'gemm'" in err and "relu_transpose, matmul" in err
    assert not db.exists()  # nothing was tuned


def test_tune_plot_without_matplotlib_fails_before_tuning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, db = tmp_path / "relu.onnx", tmp_path / "t.db"
    _relu_model(model)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    argv = ["tune", str(model), "--db", str(db), "--plot", str(tmp_path / "c.png")]
    assert mlc_cli.main(argv) == 1
    assert "--plot needs matplotlib: pip install 'mlc[plot]'" in capsys.readouterr().err
    assert not db.exists()


def test_an_interrupted_tune_still_writes_its_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    model, db, png = tmp_path / "m.onnx", tmp_path / "t.db", tmp_path / "curves.png"
    _two_kernel_model(model)
    drawn = _drawn_curves(monkeypatch)
    # the first kernel: 4 trials, then 4 traces measured again 3 times; then 2 trials
    fake = _FakeMeasurer(interrupt_after=4 + 4 * 3 + 2)
    monkeypatch.setattr(search, "make_measurer", lambda **kw: fake)
    argv = ["tune", str(model), "--db", str(db), "--trials", "4", "--plot", str(png)]
    assert mlc_cli.main(argv) == 130
    out = capsys.readouterr().out
    assert "(interrupted)" in out and f"tuning curves in {png}" in out
    assert png.read_bytes()[:8] == PNG_MAGIC
    ((first, second),) = drawn
    assert (first.name, len(first.times)) == ("relu_transpose", 4)
    assert (second.name, len(second.times)) == ("matmul", 2)
    with TuningDatabase(db) as records:
        matmul = [r for r in records.records() if r.task_name == "matmul" and r.status != "invalid"]
        assert [r.seconds for r in matmul] == second.times


def test_tune_passes_the_backend_and_kernels_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "relu.onnx"
    _relu_model(model)
    calls: list[dict[str, Any]] = []

    def fake_tune(model_or_task: Any, **kw: Any) -> search.TuneReport:
        calls.append(kw)
        return search.TuneReport([])

    monkeypatch.setattr(search, "tune", fake_tune)
    find_spec = importlib.util.find_spec
    installed = {"ray": True}
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            (object() if installed[name] else None) if name in installed else find_spec(name, *a)
        ),
    )
    argv = ["tune", str(model), "--db", str(tmp_path / "t.db")]
    ray = ["--backend", "ray", "--ray-address", "ray://head:10001"]
    assert mlc_cli.main([*argv, *ray, "--kernels", "a", "b*", "--kernels", "c"]) == 0
    assert calls[-1]["backend"] == "ray" and calls[-1]["ray_address"] == "ray://head:10001"
    assert calls[-1]["kernels"] == ["a", "b*", "c"]
    assert mlc_cli.main(argv) == 0
    assert calls[-1]["backend"] == "auto" and calls[-1]["kernels"] is None
    assert mlc_cli.main([*argv, "--backend", "process", "--ray-address", "x:1"]) == 1
    assert "--ray-address needs --backend ray" in capsys.readouterr().err
    installed["ray"] = False
    assert mlc_cli.main([*argv, "--backend", "ray"]) == 1
    assert "pip install 'mlc[distributed]'" in capsys.readouterr().err
    assert len(calls) == 2


def test_the_library_tunes_only_the_kernels_asked_for(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    _two_kernel_model(model)
    with TuningDatabase(tmp_path / "t.db") as db:
        report = search.tune(model, db=db, trials=2, measurer=_FakeMeasurer(), kernels=["relu*"])
        assert {r.task_name for r in db.records()} == {"relu_transpose"}
    assert [r.task.name for r in report.tasks] == ["relu_transpose"]
    with pytest.raises(KernelPatternError, match="relu_transpose, matmul"):
        search.tune(model, db=tmp_path / "u.db", measurer=_FakeMeasurer(), kernels=["gemm"])
    assert not (tmp_path / "u.db").exists()
