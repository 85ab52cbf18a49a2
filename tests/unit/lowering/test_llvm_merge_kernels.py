"""`llvm-merge-kernels`: kernels equal up to integer constants share one function, and the
model computes what it computed with a kernel each."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.dialects import llvm
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, f32, i64
from xdsl.ir import Block, Operation

import mlc
from mlc.lowering.llvm_merge_kernels import (
    MAX_RUNTIME_PRODUCTS_PER_BLOCK,
    LlvmMergeKernelsPass,
    _affine,
    _Kernel,
    _relate,
    _strides_in_registers,
    _Use,
)
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.targets.compiled import NativeFunction, _signature, compile_model
from mlc.targets.cpu import JitEngine, load_openmp, target_machine
from mlc.targets.llvm_emit import emit_module
from mlc.targets.pipeline import MlcCpuPipelinePass
from mlc.testing.coverage import covers
from mlc.transforms.loops.outline import KERNEL_PREFIX

UNARY = ("relu", "exp", "neg", "sigmoid", "abs")
BINARY = ("add", "mul", "sub", "max")


def _program(op: str, rows: list[int], cols: int, concat: bool) -> str:
    """The same op on inputs with different row counts (kernels that differ in trip
    counts and strides); `concat`: the results concatenated (written in place at
    different offsets of one buffer)."""
    args = ", ".join(f"%x{i}: tensor<{n}x{cols}xf32>" for i, n in enumerate(rows))
    lines = []
    for i, n in enumerate(rows):
        ty = f"tensor<{n}x{cols}xf32>"
        if op in BINARY:
            lines.append(f"  %y{i} = graph.{op} %x{i}, %x{i} : ({ty}, {ty}) -> {ty}")
        else:
            lines.append(f"  %y{i} = graph.{op} %x{i} : ({ty}) -> {ty}")
    types = [f"tensor<{n}x{cols}xf32>" for n in rows]
    if concat:
        total = f"tensor<{sum(rows)}x{cols}xf32>"
        operands = ", ".join(f"%y{i}" for i in range(len(rows)))
        lines.append(
            f"  %c = graph.concat {operands} {{axis = 0 : i64}} : ({', '.join(types)}) -> {total}"
        )
        lines.append(f"  func.return %c : {total}")
        results = total
    else:
        lines.append(
            f"  func.return {', '.join(f'%y{i}' for i in range(len(rows)))} : {', '.join(types)}"
        )
        results = f"({', '.join(types)})"
    return f"func.func @main({args}) -> {results} {{\n" + "\n".join(lines) + "\n}\n"


def _run(module: ModuleOp, signature: tuple, inputs: list[np.ndarray]) -> list[np.ndarray]:
    load_openmp()
    tm = target_machine()
    engine = JitEngine()
    engine.add_module(emit_module(module, tm.triple, str(tm.target_data)))
    name, ins, outs = signature
    return NativeFunction(name, ins, outs, engine.function_address(name))(*inputs)


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """Parallel regions run `count` threads inside (JIT code asks for OpenMP's default
    team size, which `omp_set_num_threads` sets)."""
    import ctypes

    gomp = ctypes.CDLL(load_openmp())
    before = gomp.omp_get_max_threads()
    gomp.omp_set_num_threads(count)
    try:
        yield
    finally:
        gomp.omp_set_num_threads(before)


def _kernels(module: ModuleOp) -> set[str]:
    return {
        op.sym_name.data
        for op in module.ops
        if isinstance(op, llvm.FuncOp)
        and op.sym_name.data.startswith(KERNEL_PREFIX)
        and "_par" not in op.sym_name.data
    }


@covers("llvm-merge-kernels")
@given(
    op=st.sampled_from(UNARY + BINARY),
    rows=st.lists(st.sampled_from([1, 2, 3, 5, 8, 13]), min_size=2, max_size=4),
    cols=st.sampled_from([7, 16, 33, 64]),
    concat=st.booleans(),
    threads=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_merged_kernels_compute_what_each_computed(
    op: str, rows: list[int], cols: int, concat: bool, threads: bool, seed: int
) -> None:
    """The same lowered module with and without the pass, JIT-compiled, on the same
    inputs: equal outputs, bit for bit (each call runs the same code with its own
    constants), and equal to the reference interpreter's."""
    text = _program(op, rows, cols, concat)
    note(text)
    graph = parse_module(make_context(), text)
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal((n, cols)).astype(np.float32) for n in rows]
    signature = _signature(graph, None)
    lowered = graph.clone()
    MlcCpuPipelinePass(merge=False, threads=threads).apply(make_context(), lowered)
    merged = lowered.clone()
    LlvmMergeKernelsPass().apply(make_context(), merged)
    merged.verify()
    note(str(merged))
    before, after = _kernels(lowered), _kernels(merged)
    assert after <= before
    want = _run(lowered, signature, inputs)
    got = _run(merged, signature, inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    for g, r in zip(got, mlc.interpret(graph, *inputs)):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


def test_kernels_that_differ_in_trip_counts_and_offsets_are_merged() -> None:
    """Three row counts of one op, concatenated: one kernel function with arguments (the
    parallel regions get them through their context)."""
    text = _program("exp", [3, 5, 8], 64, concat=True)
    graph = parse_module(make_context(), text)
    lowered = graph.clone()
    MlcCpuPipelinePass(merge=False).apply(make_context(), lowered)
    merged = lowered.clone()
    LlvmMergeKernelsPass().apply(make_context(), merged)
    assert len(_kernels(lowered)) >= 3
    assert len(_kernels(merged)) < len(_kernels(lowered))
    calls = [
        op
        for op in merged.walk()
        if isinstance(op, llvm.CallOp)
        and op.callee is not None
        and op.callee.root_reference.data.startswith(KERNEL_PREFIX)
        and "_par" not in op.callee.root_reference.data
    ]
    assert len({c.callee.root_reference.data for c in calls}) < len(calls)  # type: ignore[union-attr]
    assert any(len(c.args) > 2 for c in calls), "no constant became an argument"


def test_parallel_kernels_get_their_arguments_through_the_context() -> None:
    """Kernels with parallel regions (the arguments go through `GOMP_parallel`'s context
    to each thread and on to the region's body): merged, and bit-identical results at one
    and at two threads."""
    rows = [2048, 2048, 3072]  # the kernels at offsets 2048 and 4096 differ in constants
    graph = parse_module(make_context(), _program("exp", rows, 512, concat=True))
    signature = _signature(graph, None)
    lowered = graph.clone()
    MlcCpuPipelinePass(merge=False).apply(make_context(), lowered)
    merged = lowered.clone()
    LlvmMergeKernelsPass().apply(make_context(), merged)
    merged.verify()
    assert "GOMP_parallel" in str(merged)
    assert len(_kernels(merged)) < len(_kernels(lowered))
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-5, 5, (n, 512)).astype(np.float32) for n in rows]
    want = _run(lowered, signature, inputs)
    for threads in (1, 2):
        with _threads(threads):
            np.testing.assert_array_equal(_run(merged, signature, inputs)[0], want[0])


def test_compile_merges_by_default_and_gives_the_same_outputs() -> None:
    """`mlc.compile`: fewer objects with merging, outputs bit-identical to without."""
    text = _program("sigmoid", [2, 3, 5, 8], 32, concat=True)
    graph = parse_module(make_context(), text)
    inputs = [
        np.random.default_rng(n).standard_normal((n, 32)).astype(np.float32) for n in (2, 3, 5, 8)
    ]
    merged = compile_model(graph, cache=False)
    separate = compile_model(graph, cache=False, merge_kernels=False)
    assert merged.object_count < separate.object_count
    np.testing.assert_array_equal(merged(*inputs)[0], separate(*inputs)[0])


def test_related_constants_stay_related() -> None:
    """A constant that is an affine function of another in every kernel is computed from
    the same argument (two offsets into one buffer must not look independent to LLVM)."""
    assert _affine([551936, 451584, 250880], [501760, 401408, 200704]) == (1, -50176)
    assert _affine([7, 14, 28], [112, 224, 448]) == (16, 0)
    assert _affine([1, 2, 3], [1, 4, 9]) is None
    assert _affine([2, 4], [1, 2]) is None  # scale 1/2 is not an integer


def _address_uses(count: int) -> tuple[Block, list[tuple[llvm.AddOp, llvm.MulOp]]]:
    """A block computing `count` addresses `base[(x + offset_i) * stride_i]` (constants
    as operand 1 of each add and mul)."""
    block = Block(arg_types=[llvm.LLVMPointerType(), i64])
    base, x = block.args
    ops = []
    for _ in range(count):
        offset = llvm.ConstantOp(IntegerAttr(0, i64), i64)
        stride = llvm.ConstantOp(IntegerAttr(1, i64), i64)
        add = llvm.AddOp(x, offset.result)
        mul = llvm.MulOp(add.res, stride.result)
        gep = llvm.GEPOp(base, [llvm.GEP_USE_SSA_VAL], f32, ssa_indices=[mul.res])
        block.add_ops([offset, stride, add, mul, gep])
        ops.append((add, mul))
    return block, ops


def _fake_kernels(uses: list[tuple[Operation, int]], values: list[list[int]]) -> list[_Kernel]:
    """Kernels whose constant uses are `uses`, with one row of `values` each."""
    return [
        _Kernel(f"k{n}", [], uses=tuple(_Use(op, i, "f", v) for (op, i), v in zip(uses, row)))
        for n, row in enumerate(values)
    ]


def test_offsets_into_one_buffer_stay_a_constant_apart() -> None:
    """Two address offsets that differ by different amounts across kernels: the kernels
    are split so that in each merge the second is the first plus a constant (never two
    independent run-time offsets LLVM cannot tell apart)."""
    _, ops = _address_uses(2)
    uses = [(ops[0][0], 1), (ops[1][0], 1)]
    kernels = _fake_kernels(uses, [[100, 150], [200, 250], [300, 310], [400, 410]])
    merges = _relate(kernels, [0, 1])
    assert sorted([k.name for k in m.members] for m in merges) == [["k0", "k1"], ["k2", "k3"]]
    for m in merges:
        assert m.arguments == [0]
        k, scale, shift = m.derived[1]
        assert (k, scale) == (0, 1) and shift == m.members[0].uses[1].value - m.members[0].uses[
            0
        ].value


def test_a_block_multiplies_by_few_run_time_strides() -> None:
    """Up to `MAX_RUNTIME_PRODUCTS_PER_BLOCK` strides of one block may become arguments;
    past that (an unrolled tile's rows) all stay constants."""
    for count, kept in (
        (MAX_RUNTIME_PRODUCTS_PER_BLOCK, 0),
        (MAX_RUNTIME_PRODUCTS_PER_BLOCK + 1, 1),
    ):
        _, ops = _address_uses(count)
        kernel = _fake_kernels([(mul, 1) for _, mul in ops], [[8] * count])[0]
        fixed = _strides_in_registers(kernel, list(range(count)))
        assert fixed == (list(range(count)) if kept else [])


def _hand_written_kernel(name: str, index: int, threaded: bool) -> str:
    """A kernel computing the address `%p[index]`; `threaded`: it also runs a parallel
    region whose context is its argument `%p`, not an `alloca` (not the lowering's shape)."""
    kernel = f"""
  llvm.func @{name}(%p: !llvm.ptr) {{
    %c = llvm.mlir.constant({index} : i64) : i64
    %q = llvm.getelementptr inbounds %p[%c] : (!llvm.ptr, i64) -> !llvm.ptr, f32"""
    if not threaded:
        return kernel + "\n    llvm.return\n  }"
    return f"""
  llvm.func @{name}_par0_body(%p: !llvm.ptr) {{
    llvm.return
  }}
  llvm.func @{name}_par0(%ctx: !llvm.ptr) {{
    llvm.call @{name}_par0_body(%ctx) : (!llvm.ptr) -> ()
    llvm.return
  }}{kernel}
    %f = llvm.mlir.addressof @{name}_par0 : !llvm.ptr
    %z = llvm.mlir.constant(0 : i32) : i32
    llvm.call @GOMP_parallel(%f, %p, %z, %z) : (!llvm.ptr, !llvm.ptr, i32, i32) -> ()
    llvm.return
  }}"""


HAND_WRITTEN = (
    "builtin.module {\n  llvm.func @GOMP_parallel(!llvm.ptr, !llvm.ptr, i32, i32)"
    + _hand_written_kernel("mlc_kernel_a", 7, threaded=False)
    + _hand_written_kernel("mlc_kernel_b", 9, threaded=False)
    + _hand_written_kernel("mlc_kernel_c", 7, threaded=True)
    + _hand_written_kernel("mlc_kernel_d", 9, threaded=True)
    + """
  llvm.func @main(%p: !llvm.ptr) {
    llvm.call @mlc_kernel_a(%p) : (!llvm.ptr) -> ()
    llvm.call @mlc_kernel_b(%p) : (!llvm.ptr) -> ()
    llvm.call @mlc_kernel_c(%p) : (!llvm.ptr) -> ()
    llvm.call @mlc_kernel_d(%p) : (!llvm.ptr) -> ()
    llvm.return
  }
}
"""
)


def test_hand_written_kernels_merge_only_in_the_lowering_s_shape() -> None:
    """Through mlc-opt's parser: two kernels differing in a GEP index constant merge (one
    function, the index an argument); two kernels that differ the same way but hand their
    thread entry a context that is no `alloca` (not what `convert-tl-to-llvm` makes) are
    left alone instead of failing."""
    module = parse_module(make_context(), HAND_WRITTEN)
    before = {op.sym_name.data for op in module.ops if isinstance(op, llvm.FuncOp)}
    LlvmMergeKernelsPass().apply(make_context(), module)
    module.verify()
    after = {op.sym_name.data for op in module.ops if isinstance(op, llvm.FuncOp)}
    assert before - after == {"mlc_kernel_b"}
    calls = [
        op
        for op in module.walk()
        if isinstance(op, llvm.CallOp) and op.parent_op().sym_name.data == "main"  # type: ignore[union-attr]
    ]
    callees = [c.callee.root_reference.data for c in calls]  # type: ignore[union-attr]
    assert callees == ["mlc_kernel_a", "mlc_kernel_a", "mlc_kernel_c", "mlc_kernel_d"]
    assert [len(c.args) for c in calls] == [2, 2, 1, 1]
    values = [c.args[1].owner.value.value.data for c in calls[:2]]  # type: ignore[union-attr]
    assert values == [7, 9]
