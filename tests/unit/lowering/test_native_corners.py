"""Native code at the corners the other property tests rarely reach (issue #22): random
small programs compiled for the host and compared with the interpreter, on

- pads in every mode (constant / reflect / edge / wrap), asymmetric and negative, so the
  index arithmetic sees negative values (floor division and modulo, bounds guards);
- extents that no unroll factor or vector width divides (remainder loops, masked tails);
- NaN, +-0 and +-inf through max / min / clip / relu / reduce_max / max_pool (exact
  values and signs of zero: max / min order -0.0 < +0.0 both ways);
- floordiv / mod / ceildiv index maps with negative offsets, on serial, fully unrolled
  (folded), unrolled and vectorized loops (2 to 16 lanes); `arith.floordivsi` on
  negative values; strided and reshaped reads (their loads never past the span);
- imperfect splits: predicated blocks under vector and unrolled loops (rows past the
  domain must stay untouched), and versioned nests;
- tensorized FMA register tiles (where the host has AVX2 + FMA) with tiles that do not
  fit (the tensorizer must refuse), shifted padded reads and batch indices through
  floordiv / mod; the floordiv / mod simplification; packed layouts;
- fusion through permuted producer outputs, transposed / padded consumer reads and
  contraction epilogues.

Each test draws few examples (a native compile of these small kernels costs 0.05-1 s),
corner cases first (`@example`). The file runs in about 40 s (profile `ci`)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, UnitAttr
from xdsl.ir.affine import AffineExpr

import mlc
from mlc.dialects.hw.x86 import FmaTileOp
from mlc.dialects.tl import ForOp, KernelOp, LoopKind
from mlc.host import host_features
from mlc.interpreters.tl import run_buffers
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import compile_model
from mlc.testing.coverage import covers
from mlc.transforms.loops import Schedule
from mlc.transforms.loops.common import ScheduleError
from mlc.transforms.loops.fusion import TlInlineElementwisePass
from mlc.transforms.loops.tensorize import TlTensorizePass, simplify_divmod

#: extents no small factor or vector width divides (and a few that do)
EXTENTS = [1, 2, 3, 5, 7, 9, 13, 17, 8, 16]
#: float values at the corners of max / min / clip / relu
SPECIAL = np.array(
    [np.nan, -0.0, 0.0, np.inf, -np.inf, 1.5, -2.0, 0.5, -1.0, 1.0, 3e38, -1e-45], np.float32
)
HOST = host_features()


def _same(
    got: list[np.ndarray], want: list[np.ndarray], exact: bool = True, zero_signs: bool = True
) -> None:
    """Equal arrays: NaN where the reference has NaN; with `exact`, equal values (and with
    `zero_signs` the same sign of zero), else within 1e-5."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (i, g.shape, w.shape)
        if not np.issubdtype(w.dtype, np.floating):
            np.testing.assert_array_equal(g, w, err_msg=f"result #{i}")
            continue
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"NaNs of result #{i}")
        if exact:
            np.testing.assert_array_equal(g, w, err_msg=f"result #{i}")
            real = ~np.isnan(w) if zero_signs else ~np.isnan(w) & (w != 0)
            np.testing.assert_array_equal(
                np.signbit(g[real]), np.signbit(w[real]), err_msg=f"signs of result #{i}"
            )
        else:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=f"result #{i}")


def _tensor(shape: list[int], ty: str = "f32") -> str:
    return f"tensor<{'x'.join(map(str, shape))}x{ty}>" if shape else f"tensor<{ty}>"


# --------------------------------------------------------------------------- pads


@st.composite
def padded_programs(draw: st.DrawFn) -> tuple[str, list[np.ndarray]]:
    """main(x) = one elementwise producer and one pad per mode (constant, reflect, edge,
    wrap), each with its own asymmetric, possibly negative (cropping) pads, on x."""
    rank = draw(st.integers(1, 3))
    shape = [draw(st.sampled_from([1, 2, 3, 5, 7])) for _ in range(rank - 1)]
    shape.append(draw(st.sampled_from([3, 5, 7, 9, 13])))
    t = _tensor(shape)
    lines = []
    results = []
    for k, mode in enumerate(("constant", "reflect", "edge", "wrap")):
        pads = []
        for size in shape:
            if mode == "reflect":  # pads < the size kept
                lo = draw(st.integers(-min(1, size - 1), max(0, min(size - 2, 4))))
                hi = draw(st.integers(-min(1, size - 1), max(0, min(size - 2, 4))))
                if size + min(lo, 0) + min(hi, 0) <= max(lo, hi):
                    lo, hi = 0, 0
            elif mode == "constant":
                lo = draw(st.integers(-min(2, size - 1), 5))
                hi = draw(st.integers(-min(2, size - 1), 5))
            else:  # edge / wrap: anything leaving a non-empty axis (wrap: more than once)
                lo = draw(st.integers(-min(2, size - 1), 2 * size + 1))
                hi = draw(st.integers(-min(2, size - 1), 2 * size + 1))
                if size + min(lo, 0) + min(hi, 0) <= 0:
                    lo, hi = 0, 0
            pads.append((lo, hi))
        out = [s + lo + hi for s, (lo, hi) in zip(shape, pads)]
        if any(s <= 0 for s in out):
            continue
        producer = ("neg", "ceil", "abs", "floor")[k]  # distinct: no CSE merges them
        flat = [lo for lo, _ in pads] + [hi for _, hi in pads]
        attrs = f'pads = array<i64: {", ".join(map(str, flat))}>, mode = "{mode}"'
        if mode == "constant":
            attrs += ", value = 2.500000e-01 : f32"
        lines.append(f"  %e{k} = graph.{producer} %x : ({t}) -> {t}")
        lines.append(f"  %p{k} = graph.pad %e{k} {{{attrs}}} : ({t}) -> {_tensor(out)}")
        results.append((f"%p{k}", _tensor(out)))
    note(f"shape {shape}")
    types = ", ".join(ty for _, ty in results)
    text = (
        f"func.func @main(%x: {t}) -> ({types}) {{\n"
        + "\n".join(lines)
        + f"\n  func.return {', '.join(v for v, _ in results)} : {types}\n}}"
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.integers(-50, 50, shape).astype(np.float32)
    return text, [x]


@covers("convert-tl-to-llvm", "convert-graph-to-tl", "tl-inline-elementwise")
@settings(max_examples=10)
@given(padded_programs(), st.sampled_from(["default", None]))
def test_pads_in_every_mode_compile_to_the_references_results(
    case: tuple[str, list[np.ndarray]], schedule: str | None
) -> None:
    """Every pad mode with asymmetric and cropping pads (wrap: more than the axis), its
    producer inlined into it, natively (default schedule: vectorized with masks; or plain
    loops) against the graph-level reference."""
    text, inputs = case
    note(text)
    module = parse_module(mlc.context(), text)
    want = mlc.interpret(module, *inputs)
    _same(list(compile_model(module, schedule=schedule)(*inputs)), list(want))


# --------------------------------------------------------------------------- NaN, +-0, +-inf


@st.composite
def special_floats(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """An f32 array mostly of `SPECIAL` values (NaN, +-0, +-inf, ...)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.choice(SPECIAL, shape).astype(np.float32)
    finite = rng.random(shape) < 0.3
    x[finite] = rng.standard_normal(int(finite.sum())).astype(np.float32)
    return x


@st.composite
def min_max_programs(draw: st.DrawFn) -> tuple[str, list[np.ndarray]]:
    """max / min / clip / relu / reduce_max / reduce_min / max_pool / global_max_pool of
    special values on an N x C x H x W input whose W no vector width divides."""
    c = draw(st.sampled_from([1, 2, 3]))
    h = draw(st.sampled_from([2, 3, 5]))
    w = draw(st.sampled_from([3, 5, 7, 9, 11, 17]))
    t = _tensor([1, c, h, w])
    kh, kw = draw(st.sampled_from([(1, 2), (2, 2), (2, 3)]))
    pool = _tensor([1, c, h - kh + 1, w - kw + 1])
    rows = _tensor([1, c, h])
    lo, hi = draw(st.sampled_from([(-1.0, 1.0), (0.0, 6.0), (-0.0, 0.0), (-np.inf, 0.5)]))
    ops = [
        (f"graph.max %x, %y : ({t}, {t}) -> {t}", t),
        (f"graph.min %x, %y : ({t}, {t}) -> {t}", t),
        (f"graph.relu %x : ({t}) -> {t}", t),
        (
            f"graph.clip %x {{min = {_f32(lo)} : f32, max = {_f32(hi)} : f32}} : ({t}) -> {t}",
            t,
        ),
        (f"graph.reduce_max %x {{axes = array<i64: 3>, keepdims = false}} : ({t}) -> {rows}", rows),
        (f"graph.reduce_min %y {{axes = array<i64: 3>, keepdims = false}} : ({t}) -> {rows}", rows),
        (
            f"graph.max_pool %x {{kernel_shape = array<i64: {kh}, {kw}>, strides = array<i64: 1, 1>,"
            " pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false}"
            f" : ({t}) -> {pool}",
            pool,
        ),
        (f"graph.global_max_pool %y : ({t}) -> {_tensor([1, c, 1, 1])}", _tensor([1, c, 1, 1])),
    ]
    body = "\n".join(f"  %r{k} = {op}" for k, (op, _) in enumerate(ops))
    types = ", ".join(ty for _, ty in ops)
    names = ", ".join(f"%r{k}" for k in range(len(ops)))
    text = (
        f"func.func @main(%x: {t}, %y: {t}) -> ({types}) {{\n{body}\n"
        f"  func.return {names} : {types}\n}}"
    )
    shape = (1, c, h, w)
    return text, [draw(special_floats(shape)), draw(special_floats(shape))]


def _f32(v: float) -> str:
    """An f32 attribute literal (infinities and -0.0 as hex)."""
    if np.isinf(v) or (v == 0 and np.signbit(v)):
        return f"0x{np.float32(v).view(np.uint32):08X}"
    return f"{v:e}"


@covers("convert-tl-to-llvm", "convert-graph-to-tl")
@settings(max_examples=8)
@given(min_max_programs(), st.sampled_from(["default", None]))
def test_min_max_propagate_nan_and_keep_signed_zeros(
    case: tuple[str, list[np.ndarray]], schedule: str | None
) -> None:
    """max / min and everything built on them propagate NaN natively as the reference
    does, with the same values and signs of zero, vectorized (with masked tails) or not."""
    text, inputs = case
    note(text)
    module = parse_module(mlc.context(), text)
    want = mlc.interpret(module, *inputs)
    got = compile_model(module, schedule=schedule)(*inputs)
    _same(list(got), list(want))


MAX_OF_ZEROS = """
func.func @main(%x: tensor<2xf32>, %y: tensor<2xf32>) -> tensor<2xf32> {
  %r = graph.max %x, %y : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %r : tensor<2xf32>
}
"""


def test_maximumf_of_signed_zeros() -> None:
    """Minimal case of a former native / reference difference (issue #22): graph.max of
    -0.0 and +0.0 is +0.0 both ways (the reference's max / min order -0.0 < +0.0, as
    MLIR's arith.maximumf and llvm.maximum do; numpy's maximum returns either zero)."""
    module = parse_module(mlc.context(), MAX_OF_ZEROS)
    x = np.array([-0.0, 0.0], np.float32)
    y = np.array([0.0, -0.0], np.float32)
    want = mlc.interpret(module, x, y)
    _same(list(compile_model(module)(x, y)), list(want))


# --------------------------------------------------------------------------- tl kernels

INDEXED = """
func.func @f(%x: memref<{n}xi32>, %y: memref<{r}x{m}xi32>, %z: memref<{r}x{m}xi32>) {{
  tl.kernel "k" iterators(r: {r} parallel, i: {m} parallel)
      ins(%x[(i + {c}) floordiv {d}] pad 7 : memref<{n}xi32>,
          %x[(i + {c}) mod {d}] pad 5 : memref<{n}xi32>,
          %x[i + r + {c}] pad -1 : memref<{n}xi32>)
      outs(%y[r, i] : memref<{r}x{m}xi32>) {{
  ^bb0(%a: i32, %b: i32, %g: i32, %o: i32):
    %i = tl.index "i"
    %j = arith.index_cast %i : index to i32
    %s = arith.muli %a, %b : i32
    %u = arith.addi %s, %g : i32
    %k = arith.constant 1000 : i32
    %l = arith.muli %j, %k : i32
    %v = arith.addi %u, %l : i32
    tl.yield %v : i32
  }}
  tl.kernel "c" iterators(r: {r} parallel, i: {m} parallel)
      ins(%x[(i + {c}) ceildiv {d} + r] pad 3 : memref<{n}xi32>,
          %x[(i + r) floordiv {d} + {c}] pad 9 : memref<{n}xi32>)
      outs(%z[r, i] : memref<{r}x{m}xi32>) {{
  ^bb0(%a: i32, %b: i32, %o: i32):
    %k = arith.constant 100 : i32
    %s = arith.muli %a, %k : i32
    %v = arith.addi %s, %b : i32
    tl.yield %v : i32
  }}
  func.return
}}
"""

#: how the inner loop `k/i` runs: (kind, factor or width, masked)
LOOP_KINDS = st.sampled_from(
    [
        ("serial", 0, False),
        ("unroll", 0, False),  # fully: every index a constant, folded in Python
        ("vectorize", 2, False),  # 2 lanes: one lane past a multiple of an odd divisor
        ("vectorize", 3, True),
        ("unroll", 2, False),
        ("unroll", 3, False),
        ("unroll", 4, False),
        ("vectorize", 4, False),
        ("vectorize", 4, True),
        ("vectorize", 8, False),
        ("vectorize", 8, True),
        ("vectorize", 16, True),
    ]
)


def _set_masked(module: ModuleOp, masked: bool) -> None:
    """Vector loops end with one masked iteration (`masked`) or a scalar loop."""
    for op in module.walk():
        if isinstance(op, ForOp) and op.loop_kind == LoopKind.VECTORIZE:
            op.masked = UnitAttr() if masked else None


def _run_loop_kind(sch: Schedule, loop: str, trip: int, kind: tuple[str, int, bool]) -> None:
    """Make `loop` (of `trip` iterations) unrolled (factor 0: fully) or vectorized
    (masked tail or scalar)."""
    name, factor, masked = kind
    if name == "unroll":
        sch.unroll(loop, min(factor, trip) or None)
    elif name == "vectorize":
        sch.vectorize(loop, factor)
        _set_masked(sch.root, masked)


def _native_equals_interpreter(module: ModuleOp, arrays: list[np.ndarray]) -> None:
    """The module gives the same buffers natively and in the interpreter."""
    want = run_buffers(module, *arrays)
    note(str(module))
    got = compile_model(module).run_buffers(*arrays)
    _same(list(got), list(want))


@covers("convert-tl-to-llvm", "tl-unroll", "tl-vectorize")
@settings(max_examples=24)
@example(m=13, n=4, c=-7, d=3, rows=1, kind=("unroll", 0, False))
@example(m=13, n=5, c=-9, d=4, rows=2, kind=("vectorize", 4, True))
@example(m=9, n=3, c=-5, d=2, rows=1, kind=("serial", 0, False))
@example(m=13, n=5, c=0, d=3, rows=1, kind=("vectorize", 2, False))
@given(
    m=st.sampled_from(EXTENTS),
    n=st.sampled_from([1, 3, 4, 5]),
    c=st.integers(-12, 3),
    d=st.sampled_from([1, 2, 3, 4, 5, 8]),
    rows=st.integers(1, 2),
    kind=LOOP_KINDS,
)
def test_floordiv_mod_ceildiv_indices_round_toward_minus_infinity(
    m: int, n: int, c: int, d: int, rows: int, kind: tuple[str, int, bool]
) -> None:
    """Guarded reads through `(i + c) floordiv d`, `mod d`, `ceildiv d` and `i + c` with
    negative c: floor rounding and the pad guards, on dynamic indices (serial loops),
    constant ones (fully unrolled: folded at compile time), unrolled bodies with a
    remainder and vector lanes (with a masked or scalar tail)."""
    module = parse_module(mlc.context(), INDEXED.format(n=n, m=m, r=rows, c=c, d=d))
    x = (np.arange(1, n + 1, dtype=np.int32) * 10) + 1
    arrays = [x, np.zeros((rows, m), np.int32), np.zeros((rows, m), np.int32)]
    sch = Schedule(module)
    for label in ("k", "c"):
        sch.lower(label)
        _run_loop_kind(sch, f"{label}/i", m, kind)
    _native_equals_interpreter(module, arrays)


ROWS = """
func.func @f(%x: memref<{m}x{n}xf32>, %b: memref<{n}xf32>, %z: memref<{n}x{m}xf32>,
             %y: memref<{m3}x{n}xf32>) {{
  tl.kernel "k" iterators(i: {m} parallel, j: {n} parallel)
      ins(%x[i, j] : memref<{m}x{n}xf32>, %b[j] : memref<{n}xf32>,
          %x[i, j + {s}] pad 5.000000e-01 : memref<{m}x{n}xf32>,
          %z[j - {s}, i] pad 7.500000e-01 : memref<{n}x{m}xf32>)
      outs(%y[i, j] : memref<{m3}x{n}xf32>) {{
  ^bb0(%a: f32, %c: f32, %e: f32, %t: f32, %o: f32):
    %i = tl.index "j"
    %k = arith.index_cast %i : index to i32
    %f = arith.sitofp %k : i32 to f32
    %p = arith.mulf %a, %c : f32
    %q = arith.addf %p, %f : f32
    %r = arith.maximumf %q, %e : f32
    %u = arith.subf %r, %t : f32
    tl.yield %u : f32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm", "tl-split", "tl-unroll", "tl-vectorize")
@settings(max_examples=30)
@example(m=3, n=13, s=-1, split=4, rsplit=0, order="inner", kind=("vectorize", 4, False))
@example(m=3, n=13, s=1, split=4, rsplit=0, order="outer", kind=("vectorize", 4, True))
@example(m=5, n=7, s=0, split=3, rsplit=0, order="outer", kind=("unroll", 0, False))
@example(m=2, n=17, s=2, split=0, rsplit=0, order="inner", kind=("vectorize", 8, True))
@example(m=2, n=9, s=-2, split=0, rsplit=0, order="inner", kind=("unroll", 4, False))
@example(m=5, n=13, s=1, split=0, rsplit=2, order="inner", kind=("vectorize", 8, True))
@example(m=5, n=13, s=1, split=4, rsplit=3, order="outer", kind=("vectorize", 4, False))
@example(m=7, n=9, s=-1, split=4, rsplit=3, order="outer", kind=("unroll", 0, False))
@given(
    m=st.sampled_from([1, 2, 3, 5, 7]),
    n=st.sampled_from(EXTENTS),
    s=st.integers(-3, 3),
    split=st.sampled_from([0, 2, 3, 4, 5, 8]),
    rsplit=st.sampled_from([0, 0, 2, 3]),
    order=st.sampled_from(["inner", "outer"]),
    kind=LOOP_KINDS,
)
def test_remainders_tails_and_imperfect_splits(
    m: int, n: int, s: int, split: int, rsplit: int, order: str, kind: tuple[str, int, bool]
) -> None:
    """A row kernel (lane-dependent values, shifted padded reads along and across the
    lanes, a NaN-free maximumf) with `j` unrolled or vectorized over extents no factor
    divides, directly (remainder loop, masked or scalar tail) or after a split by a
    non-divisor (a predicated block: lane masks); `i` split by a non-divisor too (a
    predicate uniform over the lanes); with the outer loops outside the inner ones
    (`order="outer"`: i.o, j.o, i.i unrolled, j.i), a versioned nest."""
    module = parse_module(mlc.context(), ROWS.format(m=m, n=n, s=s, m3=m + 3))
    rng = np.random.default_rng(m * 100 + n)
    arrays = [
        rng.integers(-9, 9, (m, n)).astype(np.float32),
        rng.integers(-3, 4, (n,)).astype(np.float32),
        rng.integers(-9, 9, (n, m)).astype(np.float32),
        np.zeros((m + 3, n), np.float32),  # rows past the domain must stay untouched
    ]
    sch = Schedule(module)
    sch.lower("k")
    rows: list[str] = ["k/i"]
    if rsplit and rsplit < m:
        rows = list(sch.split("k/i", rsplit))
    inner, trip = "k/j", n
    if split and split < n:
        outer, inner = sch.split("k/j", split)
        trip = split
        if order == "outer":
            sch.reorder(rows[0], outer, *rows[1:], inner)
            if len(rows) == 2:
                sch.unroll(rows[1])
        if kind[0] == "vectorize":
            kind = (kind[0], split, kind[2])
    _run_loop_kind(sch, inner, trip, kind)
    _native_equals_interpreter(module, arrays)


NEST = """
func.func @f(%x: memref<{m}x{n}x{p}xf32>, %y: memref<{m2}x{n}x{p}xf32>) {{
  tl.kernel "k" iterators(i: {m} parallel, j: {n} parallel, k: {p} parallel)
      ins(%x[i, j, k] : memref<{m}x{n}x{p}xf32>) outs(%y[i, j, k] : memref<{m2}x{n}x{p}xf32>) {{
  ^bb0(%a: f32, %o: f32):
    %i = tl.index "i"
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    %r = arith.addf %a, %f : f32
    tl.yield %r : f32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm", "tl-split", "tl-fuse", "tl-unroll")
@settings(max_examples=6)
@example(m=7, f=4, n=2, p=3)
@given(
    m=st.sampled_from([5, 7, 9, 11]),
    f=st.sampled_from([4, 6]),
    n=st.integers(1, 3),
    p=st.integers(1, 3),
)
def test_versioned_nests_over_fused_loops(m: int, f: int, n: int, p: int) -> None:
    """`i` split by a non-divisor, its inner part split again and fused with `j`, the
    predicate `i < m` then reads `i.o * f + (g floordiv n) * 2 + i.i.i`: the nest around
    the unrolled loops is versioned only on what it can bound (not through the floordiv
    of the fused loop); rows past the domain stay untouched."""
    module = parse_module(mlc.context(), NEST.format(m=m, n=n, p=p, m2=m + f))
    arrays = [
        np.arange(m * n * p, dtype=np.float32).reshape(m, n, p),
        np.zeros((m + f, n, p), np.float32),
    ]
    sch = Schedule(module)
    sch.lower("k")
    io, ii = sch.split("k/i", f)
    iio, iii = sch.split(ii, 2)
    sch.reorder(io, iio, "k/j", iii, "k/k")
    g = sch.fuse(iio, "k/j")
    sch.reorder(io, "k/k", g, iii)
    sch.unroll(g)
    sch.unroll(iii)
    _native_equals_interpreter(module, arrays)


ROW_SUM = """
func.func @f(%x: memref<{r}x{n}xi32>, %y: memref<{r}xi32>) {{
  tl.kernel "s" iterators(r: {r} parallel, i: {n} reduction) ins(%x[r, i] : memref<{r}x{n}xi32>)
      outs(%y[r] init 0 : memref<{r}xi32>) {{
  ^bb0(%a: i32, %o: i32):
    %s = arith.addi %o, %a : i32
    tl.yield %s : i32
  }}
  func.return
}}
"""


@covers("tl-split", "tl-fuse", "convert-tl-to-llvm")
@settings(max_examples=8)
@example(r=2, n=8, first=4, second=3, fuse=False)
@example(r=3, n=6, first=2, second=4, fuse=True)
@given(
    r=st.integers(1, 3),
    n=st.sampled_from([6, 8, 12]),
    first=st.sampled_from([2, 3, 4]),
    second=st.sampled_from([3, 4, 5]),
    fuse=st.booleans(),
)
def test_splits_refuse_what_a_predicate_cannot_mask(
    r: int, n: int, first: int, second: int, fuse: bool
) -> None:
    """A row sum whose reduction loop is split by a divisor and its inner loop again by a
    non-divisor (the excess iterations stay inside the extent: `where(i < n)` cannot
    mask them), or whose loops are fused and split by a non-divisor (two iterators on one
    loop): the split is refused (ScheduleError), never miscomputed; what is accepted
    sums every element once, natively and interpreted."""
    if n % first:
        first = 2
    module = parse_module(mlc.context(), ROW_SUM.format(r=r, n=n))
    arrays = [np.arange(r * n, dtype=np.int32).reshape(r, n) + 1, np.zeros(r, np.int32)]
    sch = Schedule(module)
    sch.lower("s")
    try:
        if fuse:
            loop = sch.fuse("s/r", "s/i")
            sch.split(loop, r * n - 1 if r * n > 2 else 1)
        else:
            _, inner = sch.split("s/i", first)
            sch.split(inner, second)
        refused = False
    except ScheduleError:
        refused = True
    note(f"refused: {refused}")
    got = compile_model(module).run_buffers(*arrays)
    np.testing.assert_array_equal(got[1], arrays[0].sum(axis=1))
    np.testing.assert_array_equal(run_buffers(module, *arrays)[1], arrays[0].sum(axis=1))


REDUCTION_FIRST = """
func.func @f(%a: memref<{k}x{m}xi32>, %c: memref<{m}xi32>) {{
  tl.kernel "s" iterators(k: {k} reduction, m: {m} parallel) ins(%a[k, m] : memref<{k}x{m}xi32>)
      outs(%c[m] init 0 : memref<{m}xi32>) {{
  ^bb0(%x: i32, %o: i32):
    %s = arith.addi %o, %x : i32
    tl.yield %s : i32
  }}
  func.return
}}
"""


@covers("tl-rfactor", "tl-decompose-reduction", "convert-tl-to-llvm")
@settings(max_examples=8)
@example(k=8, m=5, lanes=4, outer=False, split=0)
@example(k=6, m=3, lanes=2, outer=True, split=0)
@example(k=4, m=5, lanes=2, outer=False, split=3)
@given(
    k=st.sampled_from([4, 6, 8]),
    m=st.integers(2, 7),
    lanes=st.sampled_from([2, 4]),
    outer=st.booleans(),
    split=st.sampled_from([0, 2, 3, 4]),
)
def test_reduction_iterators_before_parallel_ones(
    k: int, m: int, lanes: int, outer: bool, split: int
) -> None:
    """A column sum whose reduction iterator comes first (`iterators(k: reduction, m:
    parallel)`: every map from the parallel iterators to a new nest renumbers them):
    split into partial sums and a combination (`tl-rfactor`), or lowered with `m` split
    by a non-divisor (a predicate on the parallel iterator) and its init hoisted into its
    own nest; interpreted and natively."""
    from mlc.transforms.loops.rfactor import RfactorPass

    module = parse_module(mlc.context(), REDUCTION_FIRST.format(k=k, m=m))
    rng = np.random.default_rng(k * 10 + m)
    arrays = [rng.integers(-9, 10, (k, m)).astype(np.int32), np.full(m, 99, np.int32)]
    want = [arrays[0], arrays[0].sum(axis=0).astype(np.int32)]
    if not split and k % lanes == 0 and k != lanes:
        RfactorPass(lanes=lanes, kernel="s", iterator="k", outer=outer).apply(mlc.context(), module)
    else:
        sch = Schedule(module)
        sch.lower("s", keep_inits=True)
        if 0 < split < m:
            sch.split("s/m", split)
        sch.decompose_reduction("s", "s/k")
    note(str(module))
    _same(list(run_buffers(module, *arrays)), want)
    _same(list(compile_model(module).run_buffers(*arrays)), want)


RESHAPED = """
func.func @f(%x: memref<{r}x{d}xi32>, %y: memref<{n}xi32>) {{
  tl.kernel "k" iterators(i: {n} parallel) ins(%x[i floordiv {d}, i mod {d}] : memref<{r}x{d}xi32>)
      outs(%y[i] : memref<{n}xi32>) {{
  ^bb0(%a: i32, %o: i32):
    tl.yield %a : i32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm")
@settings(max_examples=6)
@given(r=st.integers(2, 5), d=st.sampled_from([2, 3, 5]), width=st.sampled_from([4, 8]))
def test_reshaped_reads_are_contiguous_vector_loads(r: int, d: int, width: int) -> None:
    """A row-major split read back whole (`x[i floordiv d, i mod d]`, a reshape) is one
    contiguous vector load per vector, also where the lanes cross rows, and the values
    are the interpreter's."""
    from mlc.targets.compiled import lower_model

    n = r * d
    module = parse_module(mlc.context(), RESHAPED.format(r=r, d=d, n=n))
    arrays = [np.arange(n, dtype=np.int32).reshape(r, d) * 3 - 7, np.zeros(n, np.int32)]
    sch = Schedule(module)
    sch.lower("k")
    if n > width:
        _, inner = sch.split("k/i", width)
    else:
        inner = "k/i"
    sch.vectorize(inner, width)
    _native_equals_interpreter(module, arrays)
    ir = lower_model(module, schedule=None).llvm_ir_unoptimized
    w = min(width, n)
    assert f"load <{w} x i32>" in ir or f"masked.load.v{w}i32" in ir, ir


STRIDED = """
func.func @f(%x: memref<{n}xf32>, %y: memref<{w}xf32>) {{
  tl.kernel "k" iterators(i: {w} parallel) ins(%x[i * {s}] : memref<{n}xf32>)
      outs(%y[i] : memref<{w}xf32>) {{
  ^bb0(%a: f32, %o: f32):
    tl.yield %a : f32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm")
@settings(max_examples=10)
@example(s=3, width=4, vectors=2, extra=0)
@example(s=4, width=3, vectors=1, extra=0)
@example(s=3, width=4, vectors=2, extra=2)
@given(
    s=st.sampled_from([2, 3, 4]),
    width=st.sampled_from([2, 3, 4, 5, 8]),
    vectors=st.integers(1, 3),
    extra=st.sampled_from([0, 0, 1, 2, 3]),
)
def test_strided_reads_load_exactly_their_span(
    s: int, width: int, vectors: int, extra: int
) -> None:
    """Every s-th element (s = 2..4) read by a vector loop: where one load of `s * width`
    elements stays inside the row (`extra` elements after the last one read) it is that
    one load and a shuffle, else two overlapping loads (span <= 2 * width) or a gather;
    the values are the interpreter's."""
    from mlc.targets.compiled import lower_model

    w = width * vectors
    n = s * (w - 1) + 1 + extra
    module = parse_module(mlc.context(), STRIDED.format(n=n, w=w, s=s))
    arrays = [np.arange(n, dtype=np.float32) - 3, np.zeros(w, np.float32)]
    sch = Schedule(module)
    sch.lower("k")
    if vectors > 1:
        _, inner = sch.split("k/i", width)
    else:
        inner = "k/i"
    sch.vectorize(inner, width)
    _native_equals_interpreter(module, arrays)
    ir = lower_model(module, schedule=None).llvm_ir_unoptimized
    wide = [int(t.split(" x ")[0]) for t in ir.split("load <")[1:]]
    assert all(lanes in (width, s * width) for lanes in wide), wide  # never past the span


FLOORDIV = """
func.func @f(%a: memref<{n}xi32>, %b: memref<{n}xi32>, %q: memref<{n}xi32>, %r: memref<{n}xi32>) {{
  tl.kernel "k" iterators(i: {n} parallel) ins(%a[i] : memref<{n}xi32>, %b[i] : memref<{n}xi32>)
      outs(%q[i] : memref<{n}xi32>, %r[i] : memref<{n}xi32>) {{
  ^bb0(%x: i32, %y: i32, %o: i32, %p: i32):
    %d = arith.floordivsi %x, %y : i32
    %m = arith.remsi %x, %y : i32
    tl.yield %d, %m : i32, i32
  }}
  func.return
}}
"""


@covers("convert-tl-to-llvm")
@settings(max_examples=6)
@given(
    n=st.sampled_from([5, 13, 16]),
    kind=st.sampled_from([("serial", 0, False), ("vectorize", 8, True), ("unroll", 3, False)]),
    seed=st.integers(0, 2**16),
)
def test_integer_floor_division_of_negative_values(
    n: int, kind: tuple[str, int, bool], seed: int
) -> None:
    """`arith.floordivsi` rounds toward -inf for every sign combination (and the
    truncating `remsi` stays truncating), scalar and vector."""
    module = parse_module(mlc.context(), FLOORDIV.format(n=n))
    rng = np.random.default_rng(seed)
    a = rng.integers(-40, 40, n).astype(np.int32)
    b = rng.choice(np.array([-7, -3, -2, -1, 1, 2, 3, 5], np.int32), n)
    a[:4] = [-7, 7, -1, -6][: min(4, n)]
    arrays = [a, b, np.zeros(n, np.int32), np.zeros(n, np.int32)]
    sch = Schedule(module)
    sch.lower("k")
    _run_loop_kind(sch, "k/i", n, kind)
    _native_equals_interpreter(module, arrays)
    (_, _, q, _) = compile_model(module).run_buffers(*arrays)
    np.testing.assert_array_equal(q, np.floor_divide(a, b))


# --------------------------------------------------------------------------- tensorize

BATCHED = """
func.func @f(%A: memref<{ab}x{m}x{ka}xf32>, %B: memref<{bb}x{k}x{n}xf32>, %C: memref<{nb}x{m}x{n}xf32>) {{
  tl.kernel "mm" iterators(b: {nb} parallel, m: {m} parallel, n: {n} parallel, k: {k} reduction)
      ins(%A[(b - 1) mod {ab}, m, k + {s}]{pad} : memref<{ab}x{m}x{ka}xf32>,
          %B[(b - 1) floordiv 2 + 1, k, n] : memref<{bb}x{k}x{n}xf32>)
      outs(%C[b, m, n] init 0.0 : memref<{nb}x{m}x{n}xf32>) {{
  ^bb0(%a: f32, %x: f32, %c: f32):
    %p = arith.mulf %a, %x : f32
    %r = arith.addf %c, %p : f32
    tl.yield %r : f32
  }}
  func.return
}}
"""


@pytest.mark.skipif(not (HOST.avx2 and HOST.fma), reason="CPU lacks AVX2 + FMA")
@covers("tl-tensorize", "convert-tl-to-llvm")
@settings(max_examples=10)
@example(nb=2, mt=2, rows=2, n=16, cols=16, k=3, s=0)
@example(nb=3, mt=1, rows=3, n=24, cols=16, k=2, s=0)
@example(nb=2, mt=2, rows=2, n=16, cols=16, k=3, s=1)
@example(nb=1, mt=3, rows=2, n=8, cols=8, k=4, s=-1)
@given(
    nb=st.integers(1, 3),
    mt=st.integers(1, 3),
    rows=st.sampled_from([2, 3, 4]),
    n=st.sampled_from([8, 16, 24, 32]),
    cols=st.sampled_from([8, 16]),
    k=st.integers(2, 5),
    s=st.sampled_from([0, 0, 1, -1]),
)
def test_fma_tiles_tensorize_only_what_they_compute(
    nb: int, mt: int, rows: int, n: int, cols: int, k: int, s: int
) -> None:
    """A batched f32 product (the batch read through `(b - 1) mod` and `floordiv`,
    A's columns shifted by `s` behind a pad guard) split into `rows x cols` tiles, some
    of which do not divide M or N (a predicated block), and tensorized to the AVX2 FMA
    register tile where the tile is exact: then it must match and give the product
    natively; a predicated or padded tile must be refused."""
    m = mt * rows + (1 if (nb + k) % 3 == 0 else 0)  # now and then one row too many
    cols = min(cols, n)
    ab, bb = max(nb, 1), (nb - 2) // 2 + 2
    pad = " pad 0.0" if s else ""
    text = BATCHED.format(nb=nb, m=m, n=n, k=k, s=s, ab=ab, bb=bb, ka=k, pad=pad)
    module = parse_module(mlc.context(), text)
    rng = np.random.default_rng(nb * 1000 + m * 10 + k)
    arrays = [
        rng.standard_normal((ab, m, k)).astype(np.float32),
        rng.standard_normal((bb, k, n)).astype(np.float32),
        np.zeros((nb, m, n), np.float32),
    ]
    want = run_buffers(module, *arrays)
    sch = Schedule(module)
    sch.lower("mm", keep_inits=True)
    sch.decompose_reduction("mm", "mm/m")
    mo, mi = sch.split("mm/m", rows)
    no, ni = sch.split("mm/n", cols)
    sch.reorder(no, mo, mi, ni, "mm/k")
    exact = m % rows == 0 and n % cols == 0 and s == 0
    try:
        TlTensorizePass(loop=mi, intrinsic="x86.avx2.fma_tile").apply(mlc.context(), module)
        tensorized = True
    except ScheduleError as e:
        note(f"refused: {str(e).splitlines()[0]}")
        tensorized = False
    assert tensorized == exact, "an exact tile must match, a predicated or padded one not"
    assert any(isinstance(op, FmaTileOp) for op in module.walk()) == exact
    note(str(module))
    _same(list(run_buffers(module, *arrays)), list(want), exact=False)
    _same(list(compile_model(module).run_buffers(*arrays)), list(want), exact=False)


@covers("tl-tensorize")
@given(
    coeffs=st.lists(st.integers(-3, 9), min_size=1, max_size=3),
    const=st.integers(-20, 20),
    c=st.integers(1, 9),
    extents=st.lists(st.integers(1, 6), min_size=3, max_size=3),
    mod=st.booleans(),
)
def test_divmod_simplification_is_exact_and_complete(
    coeffs: list[int], const: int, c: int, extents: list[int], mod: bool
) -> None:
    """`simplify_divmod` of `(sum k_d * d + const) floordiv / mod c`: the same value at
    every point of the ranges, and no floordiv / mod left wherever the part of the
    numerator that is not a multiple of c provably stays in [0, c) (negative constants
    included: the split of `const` rounds toward -inf)."""
    dims = [AffineExpr.dimension(d) for d in range(len(coeffs))]
    ranges = [(0, e - 1) for e in extents[: len(coeffs)]]
    lhs: AffineExpr = AffineExpr.constant(const)
    for d, k in zip(dims, coeffs):
        lhs = lhs + d * k
    e = lhs % c if mod else lhs // c
    simple = simplify_divmod(e, ranges)
    for point in itertools.product(*(range(lo, hi + 1) for lo, hi in ranges)):
        num = const + sum(k * p for k, p in zip(coeffs, point))
        want = num % c if mod else num // c
        assert simple.eval(list(point), []) == want, (e, simple, point)
    rest_lo = const % c + sum(min(k * lo, k * hi) for k, (lo, hi) in zip(coeffs, ranges) if k % c)
    rest_hi = const % c + sum(max(k * lo, k * hi) for k, (lo, hi) in zip(coeffs, ranges) if k % c)
    if 0 <= rest_lo and rest_hi < c:
        assert "floordiv" not in str(simple) and "mod" not in str(simple), (e, simple)


@covers("tl-tensorize")
@settings(max_examples=12)
@given(
    m=st.integers(1, 3),
    kb=st.integers(1, 3),
    group=st.sampled_from([2, 4]),
    nb=st.integers(1, 3),
    panel=st.sampled_from([None, 2, 4, 8]),
    seed=st.integers(0, 2**16),
)
def test_packed_layouts_keep_the_product(
    m: int, kb: int, group: int, nb: int, panel: int | None, seed: int
) -> None:
    """`pack_vnni` (B[k, n] -> Bp[k / g, n, k % g], or in column panels
    Bp[n / p, k / g, n % p, k % g]): the copy kernel and the block's new read agree on
    the packing strides, so the product is unchanged (interpreted; exact)."""
    from mlc.targets.x86 import int8_matmul_module
    from mlc.transforms.loops.tensorize import pack_vnni

    k, n = kb * group, nb * (panel or 3)
    module = int8_matmul_module(m, n, k)
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    want = mlc.interpret(module, a, b)
    sch = Schedule(module)
    sch.lower("matmul", keep_inits=True)
    pack_vnni(module, "matmul", 1, group, panel=panel)
    note(str(module))
    _same(list(mlc.interpret(module, a, b)), list(want))


# --------------------------------------------------------------------------- fusion

EPILOGUES = {
    "transpose": "graph.transpose %y {{perm = array<i64: 1, 0>}} : ({t}) -> {tt}",
    "pad": 'graph.pad %y {{pads = array<i64: 0, 1, 0, 0>, mode = "constant", value = 2.0 : f32}}'
    " : ({t}) -> {tp}",
    "crop": 'graph.pad %y {{pads = array<i64: 0, -1, 0, 1>, mode = "constant", value = 2.0 : f32}}'
    " : ({t}) -> {t}",
    "relu": "graph.relu %y : ({t}) -> {t}",
}


@covers("tl-fuse-epilogues", "tl-inline-elementwise", "convert-tl-to-llvm")
@settings(max_examples=10)
@example(m=3, k=2, n=3, epilogue="transpose", seed=0)
@example(m=2, k=3, n=4, epilogue="crop", seed=1)
@given(
    m=st.integers(1, 5),
    k=st.integers(1, 4),
    n=st.integers(1, 5),
    epilogue=st.sampled_from(sorted(EPILOGUES)),
    seed=st.integers(0, 2**16),
)
def test_contraction_epilogues_read_the_points_they_write(
    m: int, k: int, n: int, epilogue: str, seed: int
) -> None:
    """A product followed by an elementwise consumer that reads it at other points
    (transposed, shifted behind a pad guard) or the same ones (relu): only the latter
    may update the product's buffer in place; natively against the reference."""
    t, tt, tp = _tensor([m, n]), _tensor([n, m]), _tensor([m, n + 1])
    out = {"transpose": tt, "pad": tp}.get(epilogue, t)
    op = EPILOGUES[epilogue].format(t=t, tt=tt, tp=tp)
    text = f"""
func.func @main(%a: {_tensor([m, k])}, %b: {_tensor([k, n])}) -> {out} {{
  %y = graph.matmul %a, %b : ({_tensor([m, k])}, {_tensor([k, n])}) -> {t}
  %r = {op}
  func.return %r : {out}
}}"""
    note(text)
    module = parse_module(mlc.context(), text)
    rng = np.random.default_rng(seed)
    inputs = [
        rng.integers(-4, 5, (m, k)).astype(np.float32),
        rng.integers(-4, 5, (k, n)).astype(np.float32),
    ]
    want = mlc.interpret(module, *inputs)
    _same(list(compile_model(module)(*inputs)), list(want), exact=False)


PERMUTED = """
func.func @f(%x: memref<{xs}xf32>, %v: memref<{vs}xf32>, %y: memref<{ys}xf32>) {{
  %t = memref.alloc() : memref<{ts}xf32>
  tl.kernel "p" iterators(i0: {e0} parallel, i1: {e1} parallel, i2: {e2} parallel)
      ins(%x[i0, i1, i2] : memref<{xs}xf32>, %v[{vi}] : memref<{vs}xf32>)
      outs(%t[{written}] : memref<{ts}xf32>) {{
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.negf %a : f32
    %s = arith.mulf %n, %b : f32
    tl.yield %s : f32
  }}
  tl.kernel "c" iterators(q0: {f0} parallel, q1: {f1} parallel, q2: {f2} parallel)
      ins(%t[{read}] : memref<{ts}xf32>) outs(%y[q0, q1, q2] : memref<{ys}xf32>) {{
  ^bb0(%a: f32, %o: f32):
    %i = tl.index "q0"
    %k = arith.index_cast %i : index to i32
    %f = arith.sitofp %k : i32 to f32
    %r = arith.maximumf %a, %f : f32
    tl.yield %r : f32
  }}
  memref.dealloc %t : memref<{ts}xf32>
  func.return
}}
"""


@covers("tl-inline-elementwise")
@settings(max_examples=12)
@example(extents=[2, 3, 4], written=(1, 2, 0), read=(2, 0, 1), axis=0, seed=0)
@example(extents=[3, 2, 5], written=(2, 0, 1), read=(0, 1, 2), axis=2, seed=1)
@given(
    extents=st.lists(st.integers(1, 5), min_size=3, max_size=3),
    written=st.permutations([0, 1, 2]).map(tuple),
    read=st.permutations([0, 1, 2]).map(tuple),
    axis=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_inlining_through_permuted_maps(
    extents: list[int], written: tuple[int, ...], read: tuple[int, ...], axis: int, seed: int
) -> None:
    """An elementwise producer writing its buffer through a permutation (t[i1, i2, i0])
    read by a consumer through another (t[q2, q0, q1]) and a broadcast input: inlined,
    the producer's reads are its maps composed with the permutations, in the interpreter
    and natively."""
    e = extents
    ts = [e[d] for d in written]  # t's dim k is written by producer iterator written[k]
    # the consumer's iterator k runs over t's dim read[k]; it reads t[..q_k at read[k]..]
    fs = [ts[d] for d in read]
    index = [""] * 3
    for k, d in enumerate(read):
        index[d] = f"q{k}"
    text = PERMUTED.format(
        xs="x".join(map(str, e)),
        vs=e[axis],
        vi=f"i{axis}",
        ts="x".join(map(str, ts)),
        written=", ".join(f"i{d}" for d in written),
        e0=e[0],
        e1=e[1],
        e2=e[2],
        f0=fs[0],
        f1=fs[1],
        f2=fs[2],
        read=", ".join(index),
        ys="x".join(map(str, fs)),
    )
    module = parse_module(mlc.context(), text)
    rng = np.random.default_rng(seed)
    arrays = [
        rng.standard_normal(e).astype(np.float32),
        rng.standard_normal(e[axis]).astype(np.float32),
        np.zeros(fs, np.float32),
    ]
    want = run_buffers(module, *arrays)
    TlInlineElementwisePass().apply(mlc.context(), module)
    module.verify()
    note(str(module))
    labels = [op.label.data for op in module.walk() if isinstance(op, KernelOp)]
    assert "p_c" in labels, labels  # inlined
    _same(list(run_buffers(module, *arrays)), list(want))
    _same(list(compile_model(module).run_buffers(*arrays)), list(want))
