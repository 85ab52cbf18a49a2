"""Schedule reuse (`transforms.loops.schedule_reuse`): scheduling a module with reuse
builds exactly the IR and schedule texts that scheduling every kernel does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from xdsl.dialects.builtin import ModuleOp

from mlc.benchmarks import zoo
from mlc.benchmarks.models import mlp
from mlc.dialects.tl import KernelOp
from mlc.parser.mlir import parse_module
from mlc.parser.onnx import import_onnx
from mlc.registry import make_context
from mlc.targets.pipeline import MlcCpuPipelinePass, default_strategy, run_passes
from mlc.tests.unit.targets.test_compile_cache import repeated_subgraphs
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules
from mlc.transforms.loops.schedule import Schedule
from mlc.transforms.loops.schedule_reuse import ScheduleReuse


def _before_scheduling(module: ModuleOp) -> ModuleOp:
    """`module` taken through `mlc-cpu-pipeline` up to (not including) scheduling."""
    passes = MlcCpuPipelinePass().passes(module)
    end = [p.name for p in passes].index("tl-default-schedule")
    run_passes(passes[:end], make_context(), module)
    return module


def _both_ways(module: ModuleOp) -> tuple[str, dict[str, str], str, dict[str, str], int]:
    plain, reusing = module.clone(), module.clone()
    plain_texts = apply_default_schedules(plain, default_strategy(), reuse=False)
    counter = ScheduleReuse()
    reused_texts = apply_default_schedules(reusing, default_strategy(), reuse=counter)
    return str(plain), plain_texts, str(reusing), reused_texts, counter.reused


@settings(max_examples=10)
@given(repeated_subgraphs())
def test_reuse_builds_what_scheduling_builds(case: tuple[str, list[np.ndarray], int]) -> None:
    """Repeated and near-repeated subgraphs: the repeat is reused, the near-repeat is
    scheduled on its own, and the module is the one scheduling every kernel gives."""
    text, _, _ = case
    module = _before_scheduling(parse_module(make_context(), text))
    plain, plain_texts, reusing, reused_texts, reused = _both_ways(module)
    assert reusing == plain
    assert reused_texts == plain_texts
    assert reused >= 1


def test_reuse_on_a_resnet() -> None:
    """A (narrow) ResNet-50: blocked convolutions with fused epilogues and padded inputs;
    most scopes are repeats, and the result is the same module and texts."""
    module = _before_scheduling(import_onnx(zoo.resnet50(size=32, width=0.25).model))
    scopes = sum(1 for op in module.walk() if isinstance(op, KernelOp))
    plain, plain_texts, reusing, reused_texts, reused = _both_ways(module)
    assert reusing == plain
    assert reused_texts == plain_texts
    assert reused >= scopes // 3


def test_reuse_of_a_scope_whose_epilogue_did_not_fuse() -> None:
    """An MLP's hidden layers: a matmul whose Relu epilogue stays a kernel of its own
    after the matmul's schedule (scheduled when its turn comes): the repeat must not
    copy the unscheduled Relu."""
    module = _before_scheduling(import_onnx(mlp(4, (16, 16, 16, 16)).model))
    plain, plain_texts, reusing, reused_texts, _ = _both_ways(module)
    assert reusing == plain
    assert reused_texts == plain_texts


class _Counting(CpuDefaultSchedule):
    """The default schedule, counting its calls; `structural` as the test sets it."""

    calls: list[str] = []  # noqa: RUF012 (the calls of one test)

    def schedule_kernel(self, sch: Schedule, kernel: KernelOp) -> None:
        self.calls.append(kernel.label.data)
        super().schedule_kernel(sch, kernel)


_TWO_MATMULS = """
func.func @main(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>, %w: tensor<8x16xf32>,
                %v: tensor<8x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %x = graph.matmul %a, %w : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %y = graph.matmul %b, %v : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  func.return %x, %y : tensor<4x16xf32>, tensor<4x16xf32>
}
"""


def test_only_a_strategy_that_promises_structure_is_reused() -> None:
    """Two identical matmuls: a strategy declaring `structural = True` is called once,
    one without the promise twice (it might decide by label or surroundings)."""
    module = _before_scheduling(parse_module(make_context(), _TWO_MATMULS))
    for structural, calls in ((True, 1), (False, 2)):
        _Counting.calls = []
        strategy = _Counting(vector_bits=256)
        object.__setattr__(strategy, "structural", structural)
        apply_default_schedules(module.clone(), strategy)
        assert len(_Counting.calls) == calls


def _scope_pairs(module: ModuleOp) -> tuple[list[str], list[str]]:
    """Each kernel's `scope_key` and the `structural_key` of its standalone module."""
    from mlc.transforms.loops.kernel_scope import scope_key, standalone_module, structural_key

    kernels = [op for op in module.walk() if isinstance(op, KernelOp)]
    keys = [scope_key([k])[0] for k in kernels]
    printed = [structural_key(standalone_module([k])[0]) for k in kernels]
    return keys, printed


def _same_partition(keys: list[str], printed: list[str]) -> None:
    for i in range(len(keys)):
        for j in range(i):
            assert (keys[i] == keys[j]) == (printed[i] == printed[j]), (i, j)


@settings(max_examples=10)
@given(repeated_subgraphs())
def test_scope_keys_tell_apart_what_printing_tells_apart(
    case: tuple[str, list[np.ndarray], int],
) -> None:
    """`scope_key` (a fingerprint, nothing printed but attributes) groups kernels exactly
    as the printed standalone modules do: repeats share a key, near-repeats do not."""
    module = _before_scheduling(parse_module(make_context(), case[0]))
    keys, printed = _scope_pairs(module)
    _same_partition(keys, printed)
    assert len(set(keys)) < len(keys)  # a repeat


def test_scope_keys_on_a_resnet() -> None:
    module = _before_scheduling(import_onnx(zoo.resnet50(size=32, width=0.25).model))
    keys, printed = _scope_pairs(module)
    _same_partition(keys, printed)
    assert len(set(keys)) < len(keys) // 2


def test_scope_keys_tell_apart_kernels_that_differ_in_a_constant() -> None:
    """LeakyRelu of three inputs, alphas 0.1, 0.1 and 0.2: the first two share a key,
    the third (its alpha a constant in the kernel body) does not."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("LeakyRelu", [f"x{i}"], [f"y{i}"], alpha=alpha)
        for i, alpha in enumerate((0.1, 0.1, 0.2))
    ]
    graph = helper.make_graph(
        nodes,
        "leaky",
        [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [4, 32]) for i in range(3)],
        [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [4, 32]) for i in range(3)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    keys, printed = _scope_pairs(_before_scheduling(import_onnx(model)))
    _same_partition(keys, printed)
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]
