"""Native code for scheduled loops: `vectorize` / `unroll` / `parallel` loop kinds and the
default CPU schedules, each compared with the reference interpreter on random kernels
(exact for integers, allclose for floats)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.dialects.builtin import UnitAttr, f32, i32

import mlc
from mlc.dialects.tl import ForOp, LoopKind
from mlc.interpreters.tl import run_buffers
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import compile_model
from mlc.testing.coverage import covers
from mlc.testing.schedules import schedules
from mlc.testing.strategies import KernelCase, Program, graph_programs, kernel_modules
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules


def _compare(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(g, w)


@covers("convert-tl-to-llvm")
@given(st.data(), kernel_modules())
def test_scheduled_kernels_compile_to_the_interpreters_results(
    data: st.DataObject, case: KernelCase
) -> None:
    """Random schedules (vectorize with any width, masked or not, unroll, parallel,
    splits that leave predicates, packing) give the interpreter's results natively."""
    sch = data.draw(schedules(case, max_steps=8))
    module = sch.root
    note(sch.text())
    kinds = {op.loop_kind for op in module.walk() if isinstance(op, ForOp)}
    note(f"loop kinds: {sorted(kinds)}")
    want = run_buffers(module, *case.arrays)
    got = compile_model(module).run_buffers(*case.arrays)
    _compare(got, want)


@covers("convert-tl-to-llvm")
@given(kernel_modules(), st.sampled_from([128, 256, 512]), st.booleans())
def test_default_schedules_preserve_semantics(
    case: KernelCase, vector_bits: int, threads: bool
) -> None:
    module = case.module.clone()
    strategy = CpuDefaultSchedule(vector_bits=vector_bits, threads=threads)
    texts = apply_default_schedules(module, strategy)
    note("\n".join(texts.values()))
    want = run_buffers(case.module, *case.arrays)
    got = compile_model(module).run_buffers(*case.arrays)
    _compare(got, want)


MATMUL = """
func.func @mm(%A: memref<{m}x{k}xf32>, %B: memref<{k}x{n}xf32>, %C: memref<{m}x{n}xf32>) {{
  tl.kernel "mm" iterators(m: {m} parallel, n: {n} parallel, k: {k} reduction)
      ins(%A[m, k] : memref<{m}x{k}xf32>, %B[k, n] : memref<{k}x{n}xf32>)
      outs(%C[m, n] init 0.0 : memref<{m}x{n}xf32>) {{
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }}
  func.return
}}
"""


@pytest.mark.parametrize(("m", "n", "k"), [(64, 64, 64), (13, 40, 7), (24, 96, 1100)])
def test_default_matmul_schedule_is_register_blocked(m: int, n: int, k: int) -> None:
    module = parse_module(mlc.context(), MATMUL.format(m=m, n=n, k=k))
    (text,) = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512)).values()
    assert "decompose_reduction mm" in text
    assert "vectorize mm/n.i" in text and "unroll mm/m.i" in text
    if k > 512:
        assert "split mm/k 256" not in text or k % 256 == 0
    kinds = [op.loop_kind for op in module.walk() if isinstance(op, ForOp)]
    assert LoopKind.VECTORIZE in kinds and LoopKind.UNROLL in kinds
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    (_, _, c) = compile_model(module).run_buffers(a, b, np.zeros((m, n), np.float32))
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


def test_vectorized_code_uses_vector_instructions() -> None:
    module = parse_module(mlc.context(), MATMUL.format(m=16, n=64, k=16))
    apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512))
    ir = compile_model(module).llvm_ir
    assert "<16 x float>" in ir


PADDED = """
func.func @f(%x: memref<{c}x{w}xf32>, %y: memref<{c}x{w}xf32>) {{
  tl.kernel "blur" iterators(c: {c} parallel, w: {w} parallel, kw: 3 reduction)
      ins(%x[c, w + kw - 1] pad 0.5 : memref<{c}x{w}xf32>)
      outs(%y[c, w] init 0.0 : memref<{c}x{w}xf32>) {{
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %acc, %a : f32
    tl.yield %s : f32
  }}
  func.return
}}
"""

TRANSPOSE = """
func.func @f(%x: memref<{w}x{c}xi32>, %y: memref<{c}x{w}xi32>) {{
  tl.kernel "t" iterators(c: {c} parallel, w: {w} parallel)
      ins(%x[w, c] : memref<{w}x{c}xi32>) outs(%y[c, w] : memref<{c}x{w}xi32>) {{
  ^bb0(%a: i32, %b: i32):
    %i = tl.index "w"
    %j = arith.index_cast %i : index to i32
    %s = arith.addi %a, %j : i32
    tl.yield %s : i32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm")
@given(
    st.sampled_from([PADDED, TRANSPOSE]),
    st.integers(1, 3),
    st.integers(1, 40),
    st.sampled_from([4, 8, 16]),
    st.booleans(),
)
def test_padded_reads_and_gathers_vectorize(
    text: str, c: int, w: int, width: int, masked: bool
) -> None:
    """Guarded reads along the vector lanes become masked loads with the pad value as the
    pass-through; strided reads become gathers; remainders masked or scalar."""
    from mlc.transforms.loops import Schedule

    module = parse_module(mlc.context(), text.format(c=c, w=w))
    rng = np.random.default_rng(w)
    if text is PADDED:
        arrays = [rng.standard_normal((c, w)).astype(np.float32), np.zeros((c, w), np.float32)]
    else:
        arrays = [rng.integers(-9, 9, (w, c)).astype(np.int32), np.zeros((c, w), np.int32)]
    want = run_buffers(module, *arrays)
    sch = Schedule(module)
    label = "blur" if text is PADDED else "t"
    sch.lower(label)
    if text is PADDED:
        sch.reorder(f"{label}/c", f"{label}/kw", f"{label}/w")
    if w > width:
        sch.split(f"{label}/w", width)
        sch.vectorize(f"{label}/w.i", width)
    else:
        sch.vectorize(f"{label}/w", width)
    if masked:
        for op in module.walk():
            if isinstance(op, ForOp) and op.loop_kind == LoopKind.VECTORIZE:
                op.masked = UnitAttr()
    note(str(module))
    got = compile_model(module).run_buffers(*arrays)
    _compare(got, want)


@covers("convert-tl-to-llvm")
@given(graph_programs(element_types=[f32, i32]))
def test_graph_programs_compile_to_the_interpreters_results(program: Program) -> None:
    """Whole random graph programs through mlc.compile's default pipeline (default
    schedules, threads) against the graph-level reference interpreter."""
    want = mlc.interpret(program.module, *program.inputs)
    got = compile_model(program.module)(*program.inputs)
    _compare(list(got), list(want))


def test_lane_form_keeps_floordiv_and_mod_that_no_lane_carries() -> None:
    """With k = 16 * ko + ki and ki the lane (16 lanes): k floordiv 64 is the same in every
    lane, k mod 64 moves with it; floordiv 8 and a misaligned base are not linear."""
    from xdsl.ir.affine import AffineExpr

    from mlc.lowering.tl_vector_to_llvm import LaneForm, lane_form

    ko, ki = AffineExpr.dimension(0), AffineExpr.dimension(1)
    k = ko * 16 + ki
    aligned = [LaneForm(0, 1), LaneForm(1, 16)]  # ki's base is a multiple of 16
    assert lane_form(k // 64, aligned, 16) == LaneForm(0, 1)
    assert lane_form(k % 64, aligned, 16) == LaneForm(1, 16)
    assert lane_form((k % 64) * 3 + k // 192 * 48, aligned, 16) == LaneForm(3, 48)
    assert lane_form(k // 8, aligned, 16) is None
    assert lane_form(k % 64, [LaneForm(0, 1), LaneForm(1, 4)], 16) is None
    assert lane_form((k + 1) // 64, aligned, 16) is None


UNFLATTEN = """
func.func @f(%x: memref<{p}x{b}x{c}xi32>, %y: memref<{p}x{bc}xi32>) {{
  tl.kernel "rows" iterators(p: {p} parallel, k: {bc} parallel)
      ins(%x[p, k floordiv {c} - 1, k mod {c}] pad 7 : memref<{p}x{b}x{c}xi32>)
      outs(%y[p, k] : memref<{p}x{bc}xi32>) {{
  ^bb0(%a: i32, %o: i32):
    tl.yield %a : i32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm")
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.sampled_from([1, 3, 4, 8, 16, 24, 32]),
    st.sampled_from([4, 8, 16]),
    st.booleans(),
)
def test_floordiv_mod_reads_vectorize(p: int, b: int, c: int, width: int, masked: bool) -> None:
    """A padded read through `k floordiv c` / `k mod c` (an im2col row) with k vectorized:
    contiguous vector loads where no lane crosses a multiple of c, scalar copies where one
    may; both equal the interpreter."""
    from mlc.targets.compiled import lower_model
    from mlc.transforms.loops import Schedule

    module = parse_module(mlc.context(), UNFLATTEN.format(p=p, b=b, c=c, bc=b * c))
    rng = np.random.default_rng(c)
    arrays = [rng.integers(-9, 9, (p, b, c)).astype(np.int32), np.zeros((p, b * c), np.int32)]
    want = run_buffers(module, *arrays)
    sch = Schedule(module)
    sch.lower("rows")
    if b * c > width:
        sch.split("rows/k", width)
        sch.vectorize("rows/k.i", width)
    else:
        sch.vectorize("rows/k", width)
    if masked:
        for op in module.walk():
            if isinstance(op, ForOp) and op.loop_kind == LoopKind.VECTORIZE:
                op.masked = UnitAttr()
    note(str(module))
    if c % width == 0:
        assert f"<{width} x i32>" in lower_model(module, schedule=None).llvm_ir_unoptimized
    got = compile_model(module).run_buffers(*arrays)
    _compare(got, want)


STRIDED = """
func.func @f(%x: memref<{c}x{n}xf32>, %y: memref<{c}x{w}xf32>) {{
  tl.kernel "pool" iterators(c: {c} parallel, w: {w} parallel, k: {k} reduction) ins(%x[c, w * {s} + k] : memref<{c}x{n}xf32>) outs(%y[c, w] init 0xff800000 : memref<{c}x{w}xf32>) {{
  ^bb0(%a: f32, %b: f32):
    %m = arith.maximumf %b, %a : f32
    tl.yield %m : f32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm")
@given(
    st.integers(1, 3),
    st.integers(1, 40),
    st.integers(2, 5),
    st.integers(1, 3),
    st.integers(0, 2),
    st.sampled_from([4, 8]),
    st.booleans(),
)
def test_strided_reads_vectorize_as_wide_loads(
    c: int, w: int, s: int, k: int, extra: int, width: int, masked: bool
) -> None:
    """A read that moves by 2-4 elements per lane (a stride-2 pooling window) is
    contiguous loads and a shuffle, never reading past the buffer (the row is exactly as
    long as the last window needs, or a little longer); stride 5 stays a gather; masked
    remainders stay lane by lane. All give the interpreter's results (NaN
    propagating through `maximumf` included)."""
    from mlc.transforms.loops import Schedule

    n = s * (w - 1) + k + extra
    module = parse_module(mlc.context(), STRIDED.format(c=c, w=w, n=n, k=k, s=s))
    rng = np.random.default_rng(n)
    x = rng.standard_normal((c, n)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    arrays = [x, np.zeros((c, w), np.float32)]
    want = run_buffers(module, *arrays)
    sch = Schedule(module)
    sch.lower("pool")
    if w > width:
        outer, inner = sch.split("pool/w", width)
        sch.reorder("pool/c", outer, "pool/k", inner)
        sch.vectorize(inner, width)
    else:
        sch.reorder("pool/c", "pool/k", "pool/w")
        sch.vectorize("pool/w", width)
    if masked:
        for op in module.walk():
            if isinstance(op, ForOp) and op.loop_kind == LoopKind.VECTORIZE:
                op.masked = UnitAttr()
    note(str(module))
    compiled = compile_model(module)
    got = compiled.run_buffers(*arrays)
    np.testing.assert_array_equal(got[0], want[0])  # max: exact, NaN where the window has one
    # the shuffle picking every s-th element (a splat's picks are all 0)
    deinterleaved = f"<{width} x i32> <i32 0, i32 {s}," in compiled.llvm_ir_unoptimized
    if s > 4:
        assert not deinterleaved  # a gather
    elif w >= width and not masked and (s == 2 or extra >= s - 1):
        # stride 2: two overlapping loads; 3 and 4: one wide load, where the read past the
        # last lane's element stays in the buffer (else a gather)
        assert deinterleaved


COLUMN_SUM = """
func.func @f(%x: memref<{r}x{c}xf32>, %y: memref<{c}xf32>) {{
  tl.kernel "colsum" iterators(i: {r} reduction, j: {c} parallel)
      ins(%x[i, j] : memref<{r}x{c}xf32>) outs(%y[j] init {init} : memref<{c}xf32>) {{
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %acc, %a : f32
    tl.yield %s : f32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm")
@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 20),
    width=st.sampled_from([4, 8]),
    init=st.sampled_from(["0.0", "1.5", "-2.0"]),
    seed=st.integers(0, 2**16),
)
def test_vector_reductions_with_kept_inits(
    rows: int, cols: int, width: int, init: str, seed: int
) -> None:
    """A column sum lowered with its init kept in the block (a select of the init where
    the reduction iterator is 0) and its output axis vectorized (masked where the width
    does not divide it): natively the interpreter's results, the init counted once."""
    from mlc.transforms.loops.schedule import Schedule

    module = parse_module(mlc.context(), COLUMN_SUM.format(r=rows, c=cols, init=init))
    sch = Schedule(module)
    sch.lower("colsum", keep_inits=True)
    inner = "colsum/j"
    if cols > width:
        inner = sch.split(inner, width)[1]
    sch.vectorize(inner, width)
    note(sch.text())
    x = np.random.default_rng(seed).uniform(-1, 1, (rows, cols)).astype(np.float32)
    arrays = [x, np.full(cols, 7.0, np.float32)]  # the init replaces the old contents
    want = run_buffers(sch.root, *arrays)
    np.testing.assert_allclose(want[1], x.sum(axis=0) + float(init), rtol=1e-5, atol=1e-5)
    _compare(compile_model(sch.root).run_buffers(*arrays), want)


STRIDED_WINDOW = """
func.func @f(%x: memref<{c}x{w2}xf32>, %y: memref<{c}x{w}xf32>) {{
  tl.kernel "pool" iterators(c: {c} parallel, w: {w} parallel, kw: 3 reduction)
      ins(%x[c, 2 * w + kw] : memref<{c}x{w2}xf32>)
      outs(%y[c, w] init 0.0 : memref<{c}x{w}xf32>) {{
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %acc, %a : f32
    tl.yield %s : f32
  }}
  func.return
}}
"""


@pytest.mark.parametrize(("w", "lanes"), [(56, 8), (64, 16), (28, 16), (6, 4)])
def test_strided_window_vectors_divide_the_row(w: int, lanes: int) -> None:
    """A stride-2 window (pooling) on a 512-bit target: 16-lane vectors where 16 divides
    the output row, else 8 where that divides it (56 = 7 x 8, not 3 x 16 and a masked
    tail); the compiled kernel sums the right inputs."""
    c, w2 = 3, 2 * w + 1
    module = parse_module(mlc.context(), STRIDED_WINDOW.format(c=c, w=w, w2=w2))
    (text,) = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512)).values()
    assert f"vectorize pool/w.i {lanes}" in text or f"vectorize pool/w {lanes}" in text, text
    x = np.random.default_rng(0).standard_normal((c, w2)).astype(np.float32)
    want = x[:, 0 : 2 * w : 2] + x[:, 1 : 2 * w + 1 : 2] + x[:, 2 : 2 * w + 2 : 2]
    (_, y) = compile_model(module).run_buffers(x, np.zeros((c, w), np.float32))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


NARROW = """
func.func @f(%x: memref<{c}x{w}x{src}>, %y: memref<{c}x{w}x{dst}>) {{
  tl.kernel "k" iterators(c: {c} parallel, w: {w} parallel)
      ins(%x[{index}] pad 7 : memref<{c}x{w}x{src}>) outs(%y[c, w] : memref<{c}x{w}x{dst}>) {{
  ^bb0(%a: {src}, %b: {dst}):
    {body}
  }}
  func.return
}}
"""

COPY = "tl.yield %a : i8"
WIDEN = "%e = arith.extui %a : i8 to i32\n    %s = arith.addi %e, %e : i32\n    tl.yield %s : i32"


@pytest.mark.parametrize(
    ("bits", "src", "dst", "index", "body", "lanes"),
    [
        (512, "i8", "i8", "c, w - 1", COPY, 64),  # an im2col-like shifted copy: one zmm
        (256, "i8", "i8", "c, w - 1", COPY, 32),
        (512, "i8", "i32", "c, w - 1", WIDEN, 16),  # widened to i32: one zmm of i32
        (512, "i8", "i8", "w, c", COPY, 16),  # a transposition's gathers stay narrow
    ],
)
def test_narrow_bodies_fill_a_register(
    bits: int, src: str, dst: str, index: str, body: str, lanes: int
) -> None:
    """A body of 8-bit values only is vectorized one register wide (64 u8 lanes on
    AVX-512, not 16); a body that widens to i32, or reads transposed, keeps 16 lanes; the
    compiled kernel (masked tail, padded reads) equals the interpreter."""
    c, w = (150, 150) if index == "w, c" else (3, 150)
    text = NARROW.format(c=c, w=w, src=src, dst=dst, index=index, body=body)
    module = parse_module(mlc.context(), text)
    x = np.random.default_rng(0).integers(-128, 128, (c, w)).astype(np.int8)
    y = np.zeros((c, w), np.int8 if dst == "i8" else np.int32)
    want = run_buffers(module, x, y)
    (schedule,) = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=bits)).values()
    assert f"vectorize k/w.i {lanes}" in schedule, schedule
    got = compile_model(module).run_buffers(x, y)
    np.testing.assert_array_equal(got[-1], want[-1])


RUNS = """
func.func @f(%x: memref<3x{groups}x{run}xi8>, %y: memref<3x{w}xi8>) {{
  tl.kernel "k" iterators(c: 3 parallel, w: {w} parallel)
      ins(%x[c, (w floordiv {run}) mod {groups}, w mod {run}] : memref<3x{groups}x{run}xi8>)
      outs(%y[c, w] : memref<3x{w}xi8>) {{
  ^bb0(%a: i8, %b: i8):
    tl.yield %a : i8
  }}
  func.return
}}
"""


@pytest.mark.parametrize(("run", "lanes"), [(32, 32), (64, 64), (8, 16)])
def test_narrow_vectors_do_not_straddle_runs(run: int, lanes: int) -> None:
    """A byte copy that reads runs of `run` contiguous elements (`w mod run`, as an
    im2col patch reads a pixel's channels) gets vectors of at most `run` lanes (16, the
    width of other bodies, at least): a vector never needs two runs, i.e. a gather; the
    outer `(w floordiv run) mod groups` does not shorten the runs."""
    groups, w = 3, 3 * 2 * run
    text = RUNS.format(groups=groups, run=run, w=w)
    module = parse_module(mlc.context(), text)
    x = np.random.default_rng(1).integers(-128, 128, (3, groups, run)).astype(np.int8)
    y = np.zeros((3, w), np.int8)
    want = run_buffers(module, x, y)
    (schedule,) = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512)).values()
    assert f"vectorize k/w.i {lanes}" in schedule, schedule
    got = compile_model(module).run_buffers(x, y)
    np.testing.assert_array_equal(got[-1], want[-1])
