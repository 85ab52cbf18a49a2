"""The tree-ensemble benchmark harness runs end to end on a small configuration: every
runner timed, mlc checked against onnxruntime, the table and JSON written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from mlc.benchmarks import trees  # noqa: E402


def test_small_run_times_every_runner_and_agrees_with_onnxruntime(tmp_path: Path) -> None:
    models = trees.make_models(["rf"], n_trees=4)
    cells = trees.run(models, [3, 9], ["perfect", "traversal", "auto"], rounds=1,
                      gemm_limit_gb=1.0, min_time_s=0.001)  # fmt: skip
    assert [c.batch for c in cells] == [3, 9]
    for cell in cells:
        assert not cell.notes, cell.notes  # no strategy failed or disagreed
        assert set(cell.times_ms) == {
            "onnxruntime",
            "library",
            "mlc perfect",
            "mlc traversal",
            "mlc auto",
        }
        assert cell.chosen in ("perfect", "traversal")
    text = trees.table(cells, ["perfect", "traversal", "auto"])
    assert text.count("\n") == 3 and "random forest (4 trees, depth 8)" in text


def test_main_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    argv = ["--models", "rf", "--trees", "2", "--batches", "2", "--strategies", "perfect",
            "--rounds", "1", "--min-time", "0.001", "--json", str(out)]  # fmt: skip
    assert trees.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["cells"][0]["batch"] == 2 and "mlc perfect" in data["cells"][0]["times_ms"]
