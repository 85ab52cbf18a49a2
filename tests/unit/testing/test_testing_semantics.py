"""mlc.testing: strategies, assert_preserves_semantics (report, regression files,
tolerances) and semantic bisection."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from xdsl.dialects.builtin import f32

import mlc
from mlc.testing import (
    SemanticsError,
    assert_preserves_semantics,
    bisect_semantics,
    check_regression,
    graph_programs,
    read_regression,
    tolerance_for,
)
from mlc.testing.faults import AddToSub, BrokenAddToSubPass
from mlc.testing.semantics import compare_outputs

ADD = """
func.func @main(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %r = graph.relu %x : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %a = graph.add %r, %y : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %a : tensor<2x3xf32>
}
"""


@settings(max_examples=25, deadline=None)
@given(graph_programs())
def test_graph_programs_verify_and_run(program) -> None:
    program.module.verify()
    outs = mlc.interpret(program.module, *program.inputs)
    assert outs and all(np.asarray(o).size for o in outs)


def test_broken_pattern_is_reported_and_saved(tmp_path: Path) -> None:
    with pytest.raises(SemanticsError) as info:
        assert_preserves_semantics(AddToSub(), ir=graph_programs(), regression_dir=tmp_path)
    text = str(info.value)
    for part in ("--- IR before ---", "graph.add", "graph.sub", "--- inputs ---", "differ"):
        assert part in text
    path = info.value.regression
    assert path is not None and path.parent == tmp_path
    reg = read_regression(path)
    assert reg.transform == "pattern mlc.testing.faults:AddToSub"
    assert [a.shape for a in reg.inputs] == [a.shape for a in info.value.counterexample.inputs]
    with pytest.raises(SemanticsError):
        check_regression(path)


def test_ir_text_with_inputs_from_signature(tmp_path: Path) -> None:
    with pytest.raises(SemanticsError, match="differ"):
        assert_preserves_semantics(BrokenAddToSubPass(), ir=ADD, regression_dir=tmp_path)
    assert_preserves_semantics("convert-graph-to-tl", ir=ADD, max_examples=10)


def test_correct_pipeline_passes_on_random_programs() -> None:
    assert_preserves_semantics(
        "convert-graph-to-tl", ir=graph_programs(element_types=[f32]), max_examples=15
    )


def test_tolerances() -> None:
    assert tolerance_for(np.dtype(np.int32), 100).rtol == 0
    tol = tolerance_for(np.dtype(np.float32), 10)
    assert tol.rtol == pytest.approx(4 * 2.0**-23 * 10)
    want = np.array([1.0, np.nan, np.inf, 0.0], np.float32)
    assert not compare_outputs([want], [np.array([1.0, np.nan, np.inf, -0.0], np.float32)], 1)
    assert compare_outputs([want], [np.array([1.001, np.nan, np.inf, 0.0], np.float32)], 1)
    assert compare_outputs([want], [np.array([1.0, 0.0, np.inf, 0.0], np.float32)], 1)
    assert compare_outputs([np.array([1], np.int32)], [np.array([2], np.int32)], 1)


def test_bisect_names_first_bad_pass_and_shrinks() -> None:
    from mlc.parser.mlir import parse_module

    module = parse_module(mlc.context(), ADD, "add")
    passes = ["canonicalize", BrokenAddToSubPass(), "convert-graph-to-tl"]
    from mlc.testing.semantics import available_passes

    pipeline = [available_passes()[p]()() if isinstance(p, str) else p for p in passes]
    result = bisect_semantics(module, pipeline, mlc.context())
    assert result is not None and result.pass_name == "mlc-test-add-to-sub"
    assert "graph.relu" not in result.reduced.before
    assert bisect_semantics(module, "canonicalize,convert-graph-to-tl", mlc.context()) is None
