"""`mlc tune`: a real (tiny) tuning run from the command line, then compiling with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import mlc
from mlc.tools import mlc as mlc_cli
from mlc.tuning.database import TuningDatabase


def _relu_model(path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 40])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 40])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_tune_prints_each_kernel_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, db = tmp_path / "relu.onnx", tmp_path / "tuning.db"
    _relu_model(model)
    argv = ["tune", str(model), "--db", str(db), "--trials", "3", "--seed", "1"]
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
