"""hw.x86: docstring round trips, interpreter semantics derived from the intrinsic
declarations, and native lowering (skipped where the CPU lacks the ISA); `vpmaddwd`
native vs interpreter on random tiles with the i16 extremes."""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    BFloat16Type,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    f32,
    i8,
    i16,
    i32,
)
from xdsl.parser import Parser

import mlc
from mlc.dialects.hw.intrinsics import get_intrinsic, has_features, intrinsics, semantics_of
from mlc.dialects.hw.x86 import FmaTileOp, Vdpbf16psOp, VpdpbusdOp, VpmaddwdOp
from mlc.interpreters.tl import run_buffers
from mlc.registry import make_context
from mlc.targets.cpu import host_features

HOST = host_features()
needs_vnni = pytest.mark.skipif(not HOST.avx512vnni, reason="CPU lacks AVX-512 VNNI")
needs_bf16 = pytest.mark.skipif(not HOST.avx512bf16, reason="CPU lacks AVX-512 BF16")
needs_avx512 = pytest.mark.skipif(not HOST.avx512f, reason="CPU lacks AVX-512F")
needs_avx2 = pytest.mark.skipif(not HOST.avx2, reason="CPU lacks AVX2")


def _example(op: type) -> str:
    doc = op.__doc__ or ""
    (line,) = [ln.strip() for ln in doc.splitlines() if ln.strip().startswith(op.name)]
    return line


@pytest.mark.parametrize("op", [VpdpbusdOp, Vdpbf16psOp, VpmaddwdOp, FmaTileOp])
def test_docstring_round_trip(op: type) -> None:
    text = _example(op)
    types = re.search(r": (memref.*)$", text)
    assert types is not None
    operands = re.findall(r"%\w+", text)
    memrefs = re.findall(r"memref<[^>]*>", types.group(1))
    names = list(dict.fromkeys(operands))
    bufs = re.findall(r"(%\w+)\[", text)
    args = [f"{b}: {t}" for b, t in zip(bufs, memrefs)]
    args += [f"{n}: index" for n in names if n not in bufs]
    src = f"func.func @f({', '.join(args)}) {{\n  {text}\n  func.return\n}}"
    module = Parser(make_context(), src).parse_module()
    module.verify()
    printed = str(module)
    assert text in printed
    again = Parser(make_context(), printed).parse_module()
    assert str(again) == printed


def test_registry_lists_declarations() -> None:
    names = {i.name for i in intrinsics("x86")}
    assert {"x86.avx512.vpdpbusd", "x86.avx512.vdpbf16ps", "x86.avx512.fma_tile"} <= names
    assert "x86.avx2.fma_tile" in names
    assert semantics_of(VpdpbusdOp).source == get_intrinsic("x86.avx512vl.vpdpbusd").source
    assert has_features({"avx2", "fma"}, get_intrinsic("x86.avx2.fma_tile").features)
    assert not has_features({"avx2"}, get_intrinsic("x86.avx512.vpdpbusd").features)
    vpmaddwd = get_intrinsic("x86.avx2.vpmaddwd")
    assert vpmaddwd.op is VpmaddwdOp and vpmaddwd.features == frozenset({"avx2"})
    assert semantics_of(VpmaddwdOp) == vpmaddwd


def _vnni_module(lanes: int, m: int = 2, k: int = 8, n: int = 32) -> ModuleOp:
    """C[i, j0:j0+L] += A[i, k0:k0+4] . Bp[kb, j0:j0+L, 0:4] at a few fixed tiles."""
    c_ty, a_ty, b_ty = (
        MemRefType(i32, [m, n]),
        MemRefType(i8, [m, k]),
        MemRefType(i8, [k // 4, n, 4]),
    )
    f = func.FuncOp("main", ([c_ty, a_ty, b_ty], []))
    c, a, b = f.body.block.args
    bld = Builder(InsertPoint.at_end(f.body.block))

    def idx(v: int):
        return bld.insert(arith.ConstantOp(IntegerAttr(v, IndexType()))).result

    for i in range(m):
        for kb in range(k // 4):
            for j0 in range(0, n, lanes):
                bld.insert(
                    VpdpbusdOp(
                        (c, [idx(i), idx(j0)]),
                        (a, [idx(i), idx(kb * 4)]),
                        (b, [idx(kb), idx(j0), idx(0)]),
                        lanes=lanes,
                    )
                )
    bld.insert(func.ReturnOp())
    return ModuleOp([f])


def _vnni_inputs(m: int = 2, k: int = 8, n: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = rng.integers(-1000, 1000, (m, n)).astype(np.int32)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    bp = b.reshape(k // 4, 4, n).transpose(0, 2, 1).copy()
    ref = c + a.astype(np.int32) @ b.astype(np.int32)
    return c, a.view(np.int8), bp, ref


@pytest.mark.parametrize("lanes", [16, 8])
def test_vpdpbusd_interpreter_is_the_declaration(lanes: int) -> None:
    c, a, bp, ref = _vnni_inputs()
    out = run_buffers(_vnni_module(lanes), c, a, bp)
    assert np.array_equal(out[0], ref)


@needs_vnni
@pytest.mark.parametrize("lanes", [16, 8])
def test_vpdpbusd_native_exact(lanes: int) -> None:
    if lanes == 8 and not has_features(HOST, {"avx512vl"}):
        pytest.skip("CPU lacks AVX-512 VL")
    c, a, bp, ref = _vnni_inputs(seed=1)
    model = mlc.compile(_vnni_module(lanes), schedule=None)
    assert "vpdpbusd" in model.llvm_ir
    out = model.run_buffers(c, a, bp)
    assert np.array_equal(out[0], ref)


def _pmaddwd_module(m: int, k: int, n: int) -> ModuleOp:
    """C[i, j0:j0+8] += A[i, k0:k0+2] . Bp[kb, j0:j0+8, 0:2] at every tile, Bp the
    pair-packed `B[k / 2, n, k % 2]`."""
    c_ty, a_ty, b_ty = (
        MemRefType(i32, [m, n]),
        MemRefType(i16, [m, k]),
        MemRefType(i16, [k // 2, n, 2]),
    )
    f = func.FuncOp("main", ([c_ty, a_ty, b_ty], []))
    c, a, b = f.body.block.args
    bld = Builder(InsertPoint.at_end(f.body.block))
    consts: dict[int, object] = {}

    def idx(v: int):
        if v not in consts:
            consts[v] = bld.insert(arith.ConstantOp(IntegerAttr(v, IndexType()))).result
        return consts[v]

    for i in range(m):
        for kb in range(k // 2):
            for j0 in range(0, n, 8):
                bld.insert(
                    VpmaddwdOp(
                        (c, [idx(i), idx(j0)]),
                        (a, [idx(i), idx(kb * 2)]),
                        (b, [idx(kb), idx(j0), idx(0)]),
                    )
                )
    bld.insert(func.ReturnOp())
    return ModuleOp([f])


def _pmaddwd_inputs(m: int, k: int, n: int, seed: int, wide: bool):
    """C, A, B (i16: full range with -32768 rows / columns when `wide`, else u8 / s8
    data with 255 / -128 rows / columns), the pair-packed B and C + A @ B in wrapping
    i32 (computed in i64: the reference, independent of the declaration)."""
    rng = np.random.default_rng(seed)
    c = rng.integers(-(2**31), 2**31, (m, n), dtype=np.int64).astype(np.int32)
    lo_a, hi_a, lo_b, hi_b = (-(2**15), 2**15, -(2**15), 2**15) if wide else (0, 256, -128, 128)
    a = rng.integers(lo_a, hi_a, (m, k)).astype(np.int16)
    b = rng.integers(lo_b, hi_b, (k, n)).astype(np.int16)
    a[0, :] = lo_a if wide else hi_a - 1  # -32768 * -32768 twice: 2^31 wraps
    b[:, 0] = lo_b
    bp = b.reshape(k // 2, 2, n).transpose(0, 2, 1).copy()
    total = c.astype(np.int64) + a.astype(np.int64) @ b.astype(np.int64)
    ref = ((total + 2**31) % 2**32 - 2**31).astype(np.int32)
    return c, a, bp, ref


@pytest.mark.parametrize("wide", [False, True])
def test_vpmaddwd_interpreter_is_the_declaration(wide: bool) -> None:
    c, a, bp, ref = _pmaddwd_inputs(2, 6, 16, seed=3, wide=wide)
    out = run_buffers(_pmaddwd_module(2, 6, 16), c, a, bp)
    assert np.array_equal(out[0], ref)


@needs_avx2
@given(
    m=st.integers(1, 3),
    k_pairs=st.integers(1, 4),
    n_vectors=st.integers(1, 2),
    wide=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_vpmaddwd_native_exact(m: int, k_pairs: int, n_vectors: int, wide: bool, seed: int):
    """Native `vpmaddwd` + add equals the interpreter (and wrapping i32) bit for bit."""
    k, n = 2 * k_pairs, 8 * n_vectors
    c, a, bp, ref = _pmaddwd_inputs(m, k, n, seed, wide)
    module = _pmaddwd_module(m, k, n)
    module.verify()
    (interpreted,) = run_buffers(module, c, a, bp)[:1]
    model = mlc.compile(module, schedule=None)
    assert "llvm.x86.avx2.pmadd.wd" in model.llvm_ir
    (native,) = model.run_buffers(c, a, bp)[:1]
    assert np.array_equal(interpreted, ref)
    assert np.array_equal(native, interpreted)


def _bf16_module() -> ModuleOp:
    bf16 = BFloat16Type()
    c_ty, a_ty, b_ty = MemRefType(f32, [16]), MemRefType(bf16, [2]), MemRefType(bf16, [16, 2])
    f = func.FuncOp("main", ([c_ty, a_ty, b_ty], []))
    c, a, b = f.body.block.args
    bld = Builder(InsertPoint.at_end(f.body.block))
    zero = bld.insert(arith.ConstantOp(IntegerAttr(0, IndexType()))).result
    bld.insert(Vdpbf16psOp((c, [zero]), (a, [zero]), (b, [zero, zero]), lanes=16))
    bld.insert(func.ReturnOp())
    return ModuleOp([f])


def _bf16_inputs():
    rng = np.random.default_rng(2)
    c = rng.standard_normal(16).astype(np.float32)
    a = rng.standard_normal(2).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((16, 2)).astype(ml_dtypes.bfloat16)
    ref = c + (b.astype(np.float32) * a.astype(np.float32)).sum(axis=1)
    return c, a, b, ref


def test_vdpbf16ps_interpreter() -> None:
    # the tl interpreter's ShapedArray buffers have no bf16: run the op on numpy buffers
    from mlc.interpreters.hw import run_hw_op

    c, a, b, ref = _bf16_inputs()
    op = next(o for o in _bf16_module().walk() if isinstance(o, Vdpbf16psOp))
    run_hw_op(op, [c, a, b], [[0], [0], [0, 0]])
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-5)


@needs_bf16
def test_vdpbf16ps_native() -> None:
    c, a, b, ref = _bf16_inputs()
    model = mlc.compile(_bf16_module(), schedule=None)
    out = model.run_buffers(c, a, b)
    np.testing.assert_allclose(out[0], ref, rtol=1e-5, atol=1e-5)


def _fma_module(mr: int, nr: int, kc: int, lanes: int) -> ModuleOp:
    c_ty, a_ty, b_ty = (
        MemRefType(f32, [mr, nr]),
        MemRefType(f32, [mr, kc]),
        MemRefType(f32, [kc, nr]),
    )
    f = func.FuncOp("main", ([c_ty, a_ty, b_ty], []))
    c, a, b = f.body.block.args
    bld = Builder(InsertPoint.at_end(f.body.block))
    zero = bld.insert(arith.ConstantOp(IntegerAttr(0, IndexType()))).result
    op = FmaTileOp(
        (c, [zero, zero]),
        (a, [zero, zero]),
        (b, [zero, zero]),
        mr=mr,
        nr=nr,
        kc=kc,
        lanes=lanes,
        a_strides=[kc, 1],
        b_strides=[nr, 1],
        c_strides=[nr, 1],
    )
    bld.insert(op)
    bld.insert(func.ReturnOp())
    return ModuleOp([f])


@pytest.mark.parametrize("lanes", [16, 8])
def test_fma_tile_interpreter_and_native(lanes: int) -> None:
    rng = np.random.default_rng(3)
    mr, nr, kc = 3, 2 * lanes, 5
    c = rng.standard_normal((mr, nr)).astype(np.float32)
    a = rng.standard_normal((mr, kc)).astype(np.float32)
    b = rng.standard_normal((kc, nr)).astype(np.float32)
    ref = c + a @ b
    module = _fma_module(mr, nr, kc, lanes)
    module.verify()
    np.testing.assert_allclose(run_buffers(module, c, a, b)[0], ref, rtol=1e-5, atol=1e-5)
    if lanes == 16 and not HOST.avx512f:
        pytest.skip("CPU lacks AVX-512F")
    out = mlc.compile(module, schedule=None).run_buffers(c, a, b)
    np.testing.assert_allclose(out[0], ref, rtol=1e-5, atol=1e-5)


def test_verifier_rejects_bad_tiles() -> None:
    from xdsl.utils.exceptions import VerifyException

    module = _fma_module(3, 32, 5, 16)
    op = next(o for o in module.walk() if isinstance(o, FmaTileOp))
    op.properties["nr"] = IntegerAttr(24, op.nr.type)
    with pytest.raises(VerifyException, match="multiple of lanes"):
        op.verify()
    module = _vnni_module(16)
    op2 = next(o for o in module.walk() if isinstance(o, VpdpbusdOp))
    op2.properties["lanes"] = IntegerAttr(4, op2.lanes.type)
    with pytest.raises(VerifyException, match="lanes must be one of"):
        op2.verify()
    op3 = next(o for o in _pmaddwd_module(1, 2, 16).walk() if isinstance(o, VpmaddwdOp))
    op3.properties["lanes"] = IntegerAttr(16, op3.lanes.type)
    with pytest.raises(VerifyException, match="lanes must be one of 8"):
        op3.verify()
    vnni = next(o for o in _vnni_module(8).walk() if isinstance(o, VpdpbusdOp))
    with pytest.raises(VerifyException, match="must be a buffer of i16"):  # i8 tiles
        VpmaddwdOp(
            (vnni.c, list(vnni.c_indices)),
            (vnni.a, list(vnni.a_indices)),
            (vnni.b, list(vnni.b_indices)),
        ).verify()
