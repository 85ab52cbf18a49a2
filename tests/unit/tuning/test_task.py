"""Tuning tasks: the distinct kernels of a model, keyed by structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.tuning.task import KernelPatternError, Task, extract_tasks, select_tasks, tasks_in

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

TWO_RELUS = """
func.func @f(%x: memref<4x8xf32>, %y: memref<4x8xf32>, %z: memref<4x8xf32>, %w: memref<4x9xf32>, %v: memref<4x9xf32>) {
  tl.kernel "relu_a" iterators(i: 4 parallel, j: 8 parallel) ins(%x[i, j] : memref<4x8xf32>) outs(%y[i, j] : memref<4x8xf32>) {
  ^bb0(%a: f32, %b: f32):
    %z0 = arith.constant 0.0 : f32
    %r = arith.maximumf %a, %z0 : f32
    tl.yield %r : f32
  }
  tl.kernel "relu_b" iterators(i: 4 parallel, j: 8 parallel) ins(%y[i, j] : memref<4x8xf32>) outs(%z[i, j] : memref<4x8xf32>) {
  ^bb0(%c: f32, %d: f32):
    %zero = arith.constant 0.0 : f32
    %s = arith.maximumf %c, %zero : f32
    tl.yield %s : f32
  }
  tl.kernel "relu_c" iterators(i: 4 parallel, j: 9 parallel) ins(%w[i, j] : memref<4x9xf32>) outs(%v[i, j] : memref<4x9xf32>) {
  ^bb0(%c: f32, %d: f32):
    %zero = arith.constant 0.0 : f32
    %s = arith.maximumf %c, %zero : f32
    tl.yield %s : f32
  }
  func.return
}
"""


def test_equal_structures_are_one_task_whatever_their_labels_and_names() -> None:
    module = parse_module(make_context(), TWO_RELUS)
    before = str(module)
    tasks = tasks_in(module)
    assert str(module) == before  # extraction leaves the module as it was
    assert [(t.labels, t.count) for t in tasks] == [(("relu_a",), 2), (("relu_c",), 1)]
    a, c = tasks
    assert a.key != c.key  # another shape
    assert '"t0"' in a.module_text and "relu_a" not in a.module_text
    assert a.arguments == (((4, 8), "float32"), ((4, 8), "float32"))
    assert a.work == 4 * 8 * 2


def test_extract_tasks_runs_the_compile_pipeline_up_to_scheduling() -> None:
    """mlp.onnx: the first Gemm over its packed weight (an einsum), its reshape, bias and
    Relu one elementwise kernel; the 10-column second Gemm with its bias fill separate."""
    tasks = extract_tasks(EXAMPLES / "mlp.onnx")
    labels = [t.labels for t in tasks]
    assert [("einsum",), ("reshape_add_relu",), ("gemm_0",), ("gemm_1",), ("slice",)] == labels
    assert all(t.key and t.module().ops for t in tasks)
    assert len({t.key for t in tasks}) == len(tasks)
    # the same model twice: the same keys
    assert [t.key for t in extract_tasks(EXAMPLES / "mlp.onnx")] == [t.key for t in tasks]


def test_select_tasks_by_name_or_glob() -> None:
    tasks = tasks_in(parse_module(make_context(), TWO_RELUS))  # relu_a (x2), relu_c

    def names(selected: list[Task]) -> list[str]:
        return [t.name for t in selected]

    assert names(select_tasks(tasks, ["relu_c"])) == ["relu_c"]
    assert names(select_tasks(tasks, "relu_?")) == ["relu_a", "relu_c"]
    # the model's order, each task once however many patterns match it
    assert names(select_tasks(tasks, ["relu_c", "relu*", "*_a"])) == ["relu_a", "relu_c"]
    assert names(select_tasks(tasks, ["relu_[a]"])) == ["relu_a"]
    assert select_tasks(tasks, []) == []
    with pytest.raises(KernelPatternError) as info:
        select_tasks(tasks, ["relu_a", "conv*", "RELU_C"])  # case-sensitive
    assert info.value.unmatched == ["conv*", "RELU_C"]
    assert info.value.names == ["relu_a", "relu_c"]
    assert str(info.value) == (
        "no kernel matches 'conv*', 'RELU_C'; the kernels are: relu_a, relu_c"
    )
