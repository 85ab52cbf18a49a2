"""tl-tensorize: tensorized vs untensorized semantics (exact for integers), the explain
report, the pass, native VNNI code, and the AVX2 `vpmaddwd` path (packing with widening,
`Avx2Int8GemmSchedule`, native vs interpreter on extremes), the bf16 `vdpbf16ps` GEMM."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects import arith

import mlc
from mlc.dialects.hw.x86 import FmaTileOp, Vdpbf16psOp, VpdpbusdOp, VpmaddwdOp
from mlc.dialects.tl import KernelOp
from mlc.interpreters import interpret
from mlc.registry import make_context
from mlc.targets.cpu import host_features
from mlc.targets.x86 import (
    Avx2Int8GemmSchedule,
    Bf16GemmSchedule,
    FmaGemmSchedule,
    VnniGemmSchedule,
    bf16_matmul_module,
    f32_matmul_module,
    int8_matmul_module,
)
from mlc.testing.coverage import covers
from mlc.transforms.loops.common import ScheduleError, find_block
from mlc.transforms.loops.default_schedule import apply_default_schedules
from mlc.transforms.loops.schedule import Schedule
from mlc.transforms.loops.tensorize import (
    TlTensorizePass,
    explain,
    pack_vnni,
    simplify_divmod,
    tensorize,
    widen_input,
)

HOST = host_features()


def _int8_inputs(m: int, n: int, k: int, seed: int, extremes: bool = False):
    """A (u8 data in an i8 array), B (s8) and A @ B in i32; with `extremes`, A's first
    row is 255 and B's first column -128 (the largest products of either sign)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    if extremes:
        a[0, :] = 255
        b[:, 0] = -128
    return a.view(np.int8), b, a.astype(np.int32) @ b.astype(np.int32)


@covers("tl-tensorize")
@given(
    mt=st.integers(1, 2),
    nt=st.integers(1, 2),
    kt=st.integers(1, 3),
    rows=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_vnni_tensorize_preserves_semantics(mt: int, nt: int, kt: int, rows: int, seed: int):
    m, n, k = mt * rows, nt * 16, kt * 4
    module = int8_matmul_module(m, n, k)
    a, b, ref = _int8_inputs(m, n, k, seed)
    (before,) = interpret(module, a, b)
    scheduled = module.clone()
    apply_default_schedules(scheduled, VnniGemmSchedule(rows=rows, vectors=1))
    scheduled.verify()
    assert any(isinstance(op, VpdpbusdOp) for op in scheduled.walk())
    (after,) = interpret(scheduled, a, b)
    assert np.array_equal(before, ref)
    assert np.array_equal(after, before)


@covers("tl-tensorize")
@given(k=st.sampled_from([2, 3, 5]), rows=st.sampled_from([2, 4]), seed=st.integers(0, 999))
def test_fma_tile_tensorize_preserves_semantics(k: int, rows: int, seed: int) -> None:
    m, n = 2 * rows, 32
    module = f32_matmul_module(m, n, k)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    (before,) = interpret(module, a, b)
    scheduled = module.clone()
    apply_default_schedules(scheduled, FmaGemmSchedule(rows=rows, cols=32, k_block=k))
    assert any(isinstance(op, FmaTileOp) for op in scheduled.walk())
    (after,) = interpret(scheduled, a, b)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def _vnni_tile(m: int = 2, n: int = 32, k: int = 8) -> tuple[Schedule, str]:
    """A matmul scheduled up to (not including) tensorize; returns the tile loop."""
    module = int8_matmul_module(m, n, k)
    sch = Schedule(module)
    sch.lower("matmul", keep_inits=True)
    sch.decompose_reduction("matmul", "matmul/m")
    pack_vnni(module, "matmul", 1, 4)
    no, ni = sch.split("matmul/n", 16)
    ko, ki = sch.split("matmul/k", 4)
    sch.reorder("matmul/m", no, ko, ni, ki)
    return sch, ni


@covers("tl-tensorize")
@given(
    m=st.integers(1, 3),
    n_vectors=st.integers(1, 3),
    k_groups=st.integers(1, 3),
    lanes=st.sampled_from([16, 8]),
    seed=st.integers(0, 2**16),
)
def test_tensorize_pass_preserves_semantics(
    m: int, n_vectors: int, k_groups: int, lanes: int, seed: int
) -> None:
    """The registered pass, as mlc-opt runs it, on VNNI tiles of 8 or 16 lanes in
    matmuls of several shapes: the tensorized module interprets to the same product."""
    n, k = n_vectors * 16, k_groups * 4
    module = int8_matmul_module(m, n, k)
    a, b, ref = _int8_inputs(m, n, k, seed)
    sch = Schedule(module)
    sch.lower("matmul", keep_inits=True)
    sch.decompose_reduction("matmul", "matmul/m")
    pack_vnni(module, "matmul", 1, 4)
    no, ni = sch.split("matmul/n", lanes)
    ko, ki = sch.split("matmul/k", 4)
    sch.reorder("matmul/m", no, ko, ni, ki)
    intrinsic = "x86.avx512.vpdpbusd" if lanes == 16 else "x86.avx512vl.vpdpbusd"
    TlTensorizePass(loop=ni, intrinsic=intrinsic).apply(make_context(), module)
    module.verify()
    assert any(isinstance(op, VpdpbusdOp) for op in module.walk())
    (after,) = interpret(module, a, b)
    assert np.array_equal(after, ref)


def test_explain_reports_a_match_and_the_pass_applies_it() -> None:
    sch, ni = _vnni_tile()
    report = explain(sch.root, ni, "x86.avx512.vpdpbusd")
    assert "x86.avx512.vpdpbusd: matches" in report
    TlTensorizePass(loop=ni, intrinsic="x86.avx512.vpdpbusd").apply(make_context(), sch.root)
    assert any(isinstance(op, VpdpbusdOp) for op in sch.root.walk())


def test_explain_names_a_wrong_stride() -> None:
    module = int8_matmul_module(2, 32, 8)  # B not packed: B[k, n] has n stride 1, not 4
    sch = Schedule(module)
    sch.lower("matmul", keep_inits=True)
    sch.decompose_reduction("matmul", "matmul/m")
    no, ni = sch.split("matmul/n", 16)
    ko, ki = sch.split("matmul/k", 4)
    sch.reorder("matmul/m", no, ko, ni, ki)
    report = explain(module, ni, "x86.avx512.vpdpbusd")
    assert "stride of B" in report and "along loop n.i is 1" in report and "needs 4" in report
    with pytest.raises(ScheduleError, match="no intrinsic matches"):
        tensorize(module, ni, "x86.avx512.vpdpbusd")


def test_explain_names_a_wrong_extent() -> None:
    module = int8_matmul_module(2, 32, 8)
    sch = Schedule(module)
    sch.lower("matmul", keep_inits=True)
    sch.decompose_reduction("matmul", "matmul/m")
    pack_vnni(module, "matmul", 1, 4)
    no, ni = sch.split("matmul/n", 8)
    ko, ki = sch.split("matmul/k", 4)
    sch.reorder("matmul/m", no, ko, ni, ki)
    report = explain(module, ni, "x86.avx512.vpdpbusd")
    assert "extent of iterator j is 16" in report and "runs 8" in report
    # the 8-lane variant fits the same tile
    assert "x86.avx512vl.vpdpbusd: matches" in explain(module, ni)


def test_explain_names_a_wrong_dtype_and_signedness() -> None:
    sch, ni = _vnni_tile()
    block = find_block(sch.root, "matmul")
    ext = next(op for op in block.body.walk() if isinstance(op, arith.ExtUIOp))
    new = arith.ExtSIOp(ext.input, ext.result.type)
    ext.parent_block().insert_op_before(new, ext)
    ext.result.replace_all_uses_with(new.result)
    ext.parent_block().erase_op(ext)
    report = explain(sch.root, ni, "x86.avx512.vpdpbusd")
    assert "arith.extsi" in report and "arith.extui" in report
    f32_sch = Schedule(f32_matmul_module(2, 32, 4))
    f32_sch.lower("matmul", keep_inits=True)
    f32_sch.decompose_reduction("matmul", "matmul/m")
    no, ni2 = f32_sch.split("matmul/n", 16)
    report = explain(f32_sch.root, ni2, "x86.avx512.vpdpbusd")
    assert "x86.avx512.vpdpbusd:" in report and "tile has 2 loops" not in report


def test_explain_asks_for_decomposed_inits() -> None:
    module = int8_matmul_module(2, 16, 4)
    sch = Schedule(module)
    sch.lower("matmul", keep_inits=True)
    assert "decompose the reduction" in explain(module, "matmul/n")


def test_simplify_divmod() -> None:
    from xdsl.ir.affine import AffineExpr

    d0, d1 = AffineExpr.dimension(0), AffineExpr.dimension(1)
    e = (d0 * 4 + d1) // 4
    assert simplify_divmod(e, [(0, 9), (0, 3)]) == d0
    assert simplify_divmod((d0 * 4 + d1) % 4, [(0, 9), (0, 3)]) == d1
    assert simplify_divmod(e, [(0, 9), (0, 4)]) != d0  # the remainder may reach 4


@pytest.mark.skipif(not HOST.avx512vnni, reason="CPU lacks AVX-512 VNNI")
@given(mt=st.integers(1, 2), nt=st.integers(1, 2), kt=st.integers(1, 4), seed=st.integers(0, 99))
def test_vnni_native_exact(mt: int, nt: int, kt: int, seed: int) -> None:
    m, n, k = 4 * mt, 64 * nt, 4 * kt
    a, b, ref = _int8_inputs(m, n, k, seed)
    model = mlc.compile(int8_matmul_module(m, n, k), schedule=VnniGemmSchedule())
    model.num_threads = 1
    assert np.array_equal(model(a, b)[0], ref)


@covers("tl-tensorize")
@given(
    mt=st.integers(1, 3),
    nt=st.integers(1, 2),
    k_pairs=st.integers(1, 5),
    rows=st.sampled_from([1, 2, 4]),
    vectors=st.sampled_from([1, 2]),
    k_block=st.sampled_from([0, 4]),
    tile_init=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_vpmaddwd_tensorize_preserves_semantics(
    mt: int,
    nt: int,
    k_pairs: int,
    rows: int,
    vectors: int,
    k_block: int,
    tile_init: bool,
    seed: int,
) -> None:
    """`Avx2Int8GemmSchedule` (A and B widened to i16, B pair-packed, `vpmaddwd`
    tiles, C zeroed per tile or first) interprets to the untensorized product, extremes
    included."""
    m, n, k = mt * rows, nt * 8 * vectors, 2 * k_pairs
    module = int8_matmul_module(m, n, k)
    a, b, ref = _int8_inputs(m, n, k, seed, extremes=True)
    (before,) = interpret(module, a, b)
    scheduled = module.clone()
    schedule = Avx2Int8GemmSchedule(
        rows=rows, vectors=vectors, k_block=k_block, tile_init=tile_init, min_rows=1
    )
    apply_default_schedules(scheduled, schedule)
    scheduled.verify()
    assert any(isinstance(op, VpmaddwdOp) for op in scheduled.walk())
    (after,) = interpret(scheduled, a, b)
    assert np.array_equal(before, ref)
    assert np.array_equal(after, before)


def _widened_tile(m: int = 2, n: int = 16, k: int = 4) -> tuple[Schedule, str]:
    """A matmul with A widened, B pair-packed to i16, split for `vpmaddwd`."""
    module = int8_matmul_module(m, n, k)
    sch = Schedule(module)
    sch.lower("matmul", keep_inits=True)
    sch.decompose_reduction("matmul", "matmul/m")
    pack_vnni(module, "matmul", 1, 2, widen=16)
    widen_input(module, "matmul", 0, 16)
    no, ni = sch.split("matmul/n", 8)
    ko, ki = sch.split("matmul/k", 2)
    sch.reorder("matmul/m", no, ko, ni, ki)
    return sch, ni


def test_widening_packs_make_the_body_sign_extend_i16() -> None:
    sch, ni = _widened_tile()
    block = find_block(sch.root, "matmul")
    assert [str(t) for t in block.body.block.arg_types] == ["i16", "i16", "i32"]
    casts = [op for op in block.body.walk() if isinstance(op, arith.ExtSIOp | arith.ExtUIOp)]
    assert [type(c) for c in casts] == [arith.ExtSIOp, arith.ExtSIOp]
    assert "x86.avx2.vpmaddwd: matches" in explain(sch.root, ni)
    assert "x86.avx2.vpmaddwd: matches" in explain(sch.root, ni, features={"avx2"})
    a, b, ref = _int8_inputs(2, 16, 4, seed=1, extremes=True)
    TlTensorizePass(loop=ni, intrinsic="x86.avx2.vpmaddwd").apply(make_context(), sch.root)
    (after,) = interpret(sch.root, a, b)
    assert np.array_equal(after, ref)


def test_widening_needs_an_extended_integer_input() -> None:
    sch = Schedule(f32_matmul_module(2, 16, 4))
    sch.lower("matmul", keep_inits=True)
    with pytest.raises(ScheduleError, match="cannot be widened|not an integer"):
        widen_input(sch.root, "matmul", 0, 16)
    module = int8_matmul_module(2, 16, 4)
    Schedule(module).lower("matmul", keep_inits=True)
    with pytest.raises(ScheduleError, match="narrower than i64"):
        widen_input(module, "matmul", 0, 64)
    odd = int8_matmul_module(2, 16, 3)
    Schedule(odd).lower("matmul", keep_inits=True)
    with pytest.raises(ScheduleError, match="not a multiple of 2"):
        pack_vnni(odd, "matmul", 1, 2, widen=16)


def test_avx2_schedule_falls_back_where_the_tile_does_not_fit() -> None:
    schedule = Avx2Int8GemmSchedule()
    for m, n, k in ((16, 16, 3), (16, 12, 4), (6, 16, 4), (18, 16, 4)):
        module = int8_matmul_module(m, n, k)
        a, b, ref = _int8_inputs(m, n, k, seed=2)
        apply_default_schedules(module, schedule)
        assert not any(isinstance(op, VpmaddwdOp) for op in module.walk())
        assert np.array_equal(interpret(module, a, b)[0], ref)
    assert not schedule.fits(next(iter(_kernels(f32_matmul_module(16, 16, 4)))))


def _kernels(module: object) -> list:
    from mlc.dialects.tl import KernelOp

    return [op for op in module.walk() if isinstance(op, KernelOp)]  # type: ignore[attr-defined]


@pytest.mark.skipif(not HOST.avx2, reason="CPU lacks AVX2")
@given(
    mt=st.integers(1, 3),
    nt=st.integers(1, 3),
    k_pairs=st.integers(1, 40),
    rows=st.sampled_from([4, 5, 6]),
    vectors=st.sampled_from([1, 2, 3]),
    k_block=st.sampled_from([0, 16]),
    extremes=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_vpmaddwd_native_exact(
    mt: int, nt: int, k_pairs: int, rows: int, vectors: int, k_block: int, extremes: bool, seed: int
) -> None:
    """Native code of `Avx2Int8GemmSchedule` equals the interpreter bit for bit on random
    sizes and values (u8 255 x s8 -128 included)."""
    m, n, k = mt * rows, nt * 8 * vectors, 2 * k_pairs
    a, b, ref = _int8_inputs(m, n, k, seed, extremes)
    module = int8_matmul_module(m, n, k)
    (interpreted,) = interpret(module, a, b)
    schedule = Avx2Int8GemmSchedule(rows=rows, vectors=vectors, k_block=k_block, min_rows=1)
    model = mlc.compile(module, schedule=schedule)
    model.num_threads = 1
    assert "llvm.x86.avx2.pmadd.wd" in model.llvm_ir
    assert np.array_equal(interpreted, ref)
    assert np.array_equal(model(a, b)[0], interpreted)


@pytest.mark.skipif(not HOST.avx512f, reason="CPU lacks AVX-512F")
def test_fma_tile_native() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((16, 24)).astype(np.float32)
    b = rng.standard_normal((24, 64)).astype(np.float32)
    model = mlc.compile(f32_matmul_module(16, 64, 24), schedule=FmaGemmSchedule(k_block=8))
    np.testing.assert_allclose(model(a, b)[0], a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("m", "n", "k", "fits"), [(8, 64, 6, True), (6, 64, 6, False)])
def test_bf16_gemm_schedule_tensorizes_fitting_matmuls(m: int, n: int, k: int, fits: bool) -> None:
    """`Bf16GemmSchedule` packs B into bf16 pair panels and tensorizes the 16 x 2 tile
    with `vdpbf16ps` where the tile divides the matmul (M % 4, N % 64, K % 2); others go
    to the fallback, unchanged in meaning (no vdpbf16ps)."""
    module = bf16_matmul_module(m, n, k)
    (text,) = apply_default_schedules(module, Bf16GemmSchedule()).values()
    module.verify()
    assert any(isinstance(op, Vdpbf16psOp) for op in module.walk()) == fits
    assert ("matmul_pack1" in text) == fits


@pytest.mark.skipif(not HOST.avx512bf16, reason="CPU lacks AVX-512 BF16")
@settings(max_examples=10)
@given(
    mt=st.integers(1, 3), nt=st.integers(1, 2), k_pairs=st.integers(1, 40), seed=st.integers(0, 99)
)
def test_bf16_gemm_native(mt: int, nt: int, k_pairs: int, seed: int) -> None:
    """Compiled through `vdpbf16ps`: the f32 product of the bf16 operands (pairs summed
    before they are added: within f32 rounding of the sequential sum)."""
    m, n, k = 4 * mt, 64 * nt, 2 * k_pairs
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
    model = mlc.compile(bf16_matmul_module(m, n, k), schedule=Bf16GemmSchedule())
    model.num_threads = 1
    assert "dpbf16ps" in model.llvm_ir
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(model(a, b)[0], want, rtol=1e-4, atol=1e-4 * np.sqrt(k))


@pytest.mark.parametrize(("n", "tile"), [(64, (4, 4)), (32, (8, 2)), (16, (16, 1)), (8, None)])
def test_vnni_tile_narrows_to_the_output_channels(n: int, tile: tuple[int, int] | None) -> None:
    """16 or 32 output columns (a small convolution's channels) get a tile of fewer
    16-lane vectors and more rows (16 accumulators still), not the fallback; the product
    is tensorized and exact."""
    m, k = 32, 12
    schedule = VnniGemmSchedule()
    module = int8_matmul_module(m, n, k)
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    assert schedule.tile(kernel) == tile
    a, b, ref = _int8_inputs(m, n, k, seed=n, extremes=True)
    scheduled = module.clone()
    apply_default_schedules(scheduled, schedule)
    assert any(isinstance(op, VpdpbusdOp) for op in scheduled.walk()) == (tile is not None)
    (after,) = interpret(scheduled, a, b)
    assert np.array_equal(after, ref)
    if HOST.avx512vnni:
        model = mlc.compile(int8_matmul_module(m, n, k), schedule=schedule)
        model.num_threads = 1
        assert np.array_equal(model(a, b)[0], ref)
