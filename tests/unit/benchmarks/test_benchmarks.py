"""The benchmark harness (`mlc.benchmarks`): valid models, matching baselines, and an end to
end run on tiny shapes. No timing is asserted here; the benchmarks themselves time things."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from mlc.benchmarks import run as bench
from mlc.benchmarks.models import BENCHMARKS, Case

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_small_model_is_valid_and_numpy_baseline_matches_ort(name: str) -> None:
    case = BENCHMARKS[name].make(small=True)
    onnx.checker.check_model(case.model, full_check=True)
    expected = case.onnxruntime_outputs()
    if case.numpy_fn is None:
        return
    actual = case.numpy_fn(*case.inputs)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)


def test_models_are_deterministic() -> None:
    a, b = BENCHMARKS["mlp"].make(small=True), BENCHMARKS["mlp"].make(small=True)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    np.testing.assert_array_equal(a.inputs[0], b.inputs[0])


def test_full_size_shapes_and_ops() -> None:
    """The full-size graphs (built, not run): the shapes and ops the issue asks for."""
    from mlc.benchmarks import models

    g = models.gemm()
    assert [n.op_type for n in g.model.graph.node] == ["MatMul"]
    assert g.flops == 2 * 1024**3
    m = models.mlp()
    assert [n.op_type for n in m.model.graph.node] == ["Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    assert m.inputs[0].shape == (64, 784)
    r = models.resnet_basic_block()
    ops = [n.op_type for n in r.model.graph.node]
    assert ops == ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Add"] + [
        "Relu"
    ]
    assert r.inputs[0].shape == (1, 64, 56, 56)


def test_harness_end_to_end_on_small_shapes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    md, js = tmp_path / "out.md", tmp_path / "out.json"
    argv = ["--small", "--only", "gemm,conv", "--repeat", "2", "--quiet"]
    assert bench.main([*argv, "--markdown", str(md), "--json", str(js)]) == 0
    table = md.read_text()
    assert table == capsys.readouterr().out
    header = table.splitlines()[0]
    for col in [
        "model",
        "mlc compile s",
        "mlc ms",
        "ORT 1t ms",
        "ORT 2t ms",
        "numpy ms",
        "mlc/ORT 1t",
        "mlc/ORT 2t",
        "mlc GFLOP/s",
        "mlc max abs diff",
    ]:
        assert f"| {col} |" in header
    lines = table.splitlines()
    assert lines[2].startswith("| gemm |") and lines[3].startswith("| conv |")
    assert "MISMATCH" not in table and "error" not in table
    data = json.loads(js.read_text())
    assert [r["model"] for r in data["results"]] == ["gemm", "conv"]
    for r in data["results"]:
        for name in ("mlc", "ort1", "ort2", "numpy"):
            m = r["measurements"][name]
            assert len(m["times_s"]) == 2 and m["median_s"] > 0 and m["ok"] is True


def test_custom_runner_budget_and_columns() -> None:
    """A new variant is a `Runner`, a new metric an `extra` entry plus a `Column`; a runner
    over its budget share stops after one sample; a failing runner is reported, not fatal."""
    case = BENCHMARKS["gemm"].make(small=True)
    (a,) = case.inputs
    weight = case.numpy_fn
    assert weight is not None

    def slow(c: Case) -> tuple[bench.RunFn, dict[str, object]]:
        import time

        def fn() -> list[np.ndarray]:
            time.sleep(0.02)
            return weight(a)

        return fn, {"setup_s": 0.5, "buffer_bytes": 1234}

    def broken(c: Case) -> tuple[bench.RunFn, dict[str, object]]:
        raise RuntimeError("no such pass")

    runners = [
        bench.Runner("slow", "slow", slow),
        bench.ort_runner(1),
        bench.Runner("broken", "broken", broken),
    ]
    result = bench.benchmark_case(case, runners, repeat=5, budget_s=0.01)
    assert len(result.measurements["slow"].times_s) == 1
    assert len(result.measurements["ort1"].times_s) >= 1
    assert result.measurements["slow"].ok is True
    assert result.measurements["broken"].error == "RuntimeError: no such pass"
    cols = [
        *bench.default_columns(runners, primary="slow"),
        bench.Column("bytes", lambda r: str(r.measurements["slow"].extra["buffer_bytes"])),
    ]
    table = bench.markdown_table([result], cols)
    assert "| slow/ORT 1t |" in table and "| 1234 |" in table
    assert "- gemm / broken: RuntimeError: no such pass" in table


def test_unknown_benchmark_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--only", "nope"])


def test_compile_time_benchmark_runs_a_small_model(capsys) -> None:  # type: ignore[no-untyped-def]
    """`python -m mlc.benchmarks.compile_time --small squeezenet`: cold then warm compile
    in a fresh cache (every object a hit the second time), checked against onnxruntime."""
    from mlc.benchmarks.compile_time import main, measure

    row = measure("squeezenet", small=True)
    assert row["warm_hits"] == row["kernels"] + 1
    assert row["cold_s"] > 0 and row["ort_s"] > 0
    assert main(["cnn", "--small"]) == 0
    assert "mlc cold s" in capsys.readouterr().out


def test_compile_time_benchmark_rejects_unknown_models() -> None:
    import pytest

    from mlc.benchmarks.compile_time import main

    with pytest.raises(SystemExit):
        main(["alexnet"])


def test_compile_time_scaling_lowers_chains_that_compute_the_chain() -> None:
    """`--scaling`'s chain model fuses into one kernel that computes the whole chain."""
    import mlc
    from mlc.benchmarks.compile_time import chain_model, scaling

    rows = scaling((3, 6))
    assert [n for n, _ in rows] == [3, 6]
    model = chain_model(9)
    x = np.linspace(-2, 2, 64, dtype=np.float32).reshape(4, 16)
    expected = mlc.interpret(mlc.import_onnx(model), x)[0]
    np.testing.assert_allclose(mlc.compile(model)(x)[0], expected, rtol=1e-6, atol=1e-6)


def test_tuning_benchmark_tunes_compiles_and_times_a_tiny_kernel(capsys) -> None:  # type: ignore[no-untyped-def]
    """`python -m mlc.benchmarks.tuning --small --trials 2 --only gemm`: a search into a
    fresh database, then default, tuned and onnxruntime timed with matching outputs."""
    from mlc.benchmarks.tuning import main, measure

    row = measure("gemm", trials=2, jobs=1, small=True, repeat=3, backend="process")
    assert row.outputs_ok and row.trials >= 1
    assert row.default_ms and row.tuned_ms and row.ort_ms
    args = ["--small", "--trials", "1", "--only", "grouped1x1", "--repeat", "2"]
    assert main([*args, "--backend", "process"]) == 0
    assert "tuned/ORT" in capsys.readouterr().out


def test_the_efficiency_benchmark_runs_both_searches(capsys) -> None:  # type: ignore[no-untyped-def]
    """`--efficiency`: random and guided search on a tiny kernel's main task, each
    measured (speed-ups over the default, which is measured in each run)."""
    from mlc.benchmarks.tuning import main

    args = ["--efficiency", "--small", "--only", "gemm", "--backend", "process"]
    assert main([*args, "--random-trials", "3", "--guided-trials", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].split()[:3] == ["kernel", "random", "speed-up"]
    row = out[-1].split()
    assert row[0] == "gemm" and row[1] == "3" and float(row[2]) > 0 and row[4] == "3"
