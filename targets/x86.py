"""The x86 intrinsic library: each intrinsic's semantics beside the instruction.

| intrinsic | hw op | tile | needs |
|---|---|---|---|
| `x86.avx512.vpdpbusd` | `hw.x86.vpdpbusd` (lanes 16) | C i32[16] += A u8[4] . B s8[16, 4] | avx512vnni |
| `x86.avx512vl.vpdpbusd` | `hw.x86.vpdpbusd` (lanes 8) | C i32[8] += A u8[4] . B s8[8, 4] | avx512vnni, avx512vl |
| `x86.avxvnni.vpdpbusd` | `hw.x86.vpdpbusd` (lanes 8) | same, VEX encoded | avxvnni |
| `x86.avx2.vpmaddwd` | `hw.x86.vpmaddwd` (lanes 8) | C i32[8] += A i16[2] . B i16[8, 2] | avx2 |
| `x86.avx512.vdpbf16ps` | `hw.x86.vdpbf16ps` (lanes 16) | C f32[16] += A bf16[2] . B bf16[16, 2] | avx512bf16 |
| `x86.avx512vl.vdpbf16ps` | `hw.x86.vdpbf16ps` (lanes 8) | C f32[8] += A bf16[2] . B bf16[8, 2] | avx512bf16, avx512vl |
| `x86.avx512.fma_tile` | `hw.x86.fma_tile` (lanes 16) | C f32[MR, NR] += A[MR, K] B[K, NR] | avx512f |
| `x86.avx2.fma_tile` | `hw.x86.fma_tile` (lanes 8) | same with 8-lane FMAs | avx2, fma |

`VnniGemmSchedule` is a schedule strategy (`mlc.compile(..., schedule=...)`) for u8 x s8
-> i32 matmul kernels: it packs B into the VNNI layout `B[k / 4, n, k % 4]`, blocks
registers (`MR` rows x `NV` 16-lane vectors of C accumulate across the K loop) and
tensorizes the 16 x 4 tile with `vpdpbusd`; other kernels get `CpuDefaultSchedule`.
`Avx2Int8GemmSchedule` is its AVX2 counterpart (no VNNI): B packed into i16 pair panels
`B[n / P, k / 2, n % P, k % 2]` (sign-extended), A widened to i16 (zero-extended), a
`rows x vectors` tile of 8-lane accumulators, `vpmaddwd` (exact: the same wrapping i32
product).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from xdsl.dialects.builtin import MemRefType, ModuleOp, StringAttr

from mlc.dialects.hw.x86_intrinsics import FMA_TILE, VDPBF16PS, VPDPBUSD, VPMADDWD
from mlc.dialects.tl import KernelOp
from mlc.lowering.texpr_to_tl import element_type, normalized_kernel, texpr_kernel
from mlc.targets.cpu import host_features
from mlc.texpr import parse, specialize
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule
from mlc.transforms.loops.tensorize import _unify_bodies, pack_vnni, tensorize, widen_input

__all__ = [
    "FMA_TILE",
    "MATMUL_F32",
    "MATMUL_U8S8",
    "VDPBF16PS",
    "VPDPBUSD",
    "VPMADDWD",
    "Avx2Int8GemmSchedule",
    "Bf16GemmSchedule",
    "FmaGemmSchedule",
    "MATMUL_BF16",
    "VnniGemmSchedule",
    "bf16_matmul_module",
    "f32_matmul_module",
    "int8_matmul_module",
]

#: MatMulInteger without zero points, u8 x s8 -> i32 (the tl kernel VNNI tensorizes)
MATMUL_U8S8 = (
    "matmul_u8s8(A: u8[M, K], B: i8[K, N]) -> C: i32[M, N] "
    "{ C[m, n] += i32(A[m, k]) * i32(B[k, n]) }"
)


def int8_matmul_module(m: int, n: int, k: int) -> ModuleOp:
    """`func @main(%A: memref<MxKxi8> (u8 data), %B: memref<KxNxi8>) -> memref<MxNxi32>`
    computing `MATMUL_U8S8` with one `tl.kernel` labelled "matmul"."""
    from xdsl.builder import Builder, InsertPoint
    from xdsl.dialects import func, memref
    from xdsl.dialects.builtin import MemRefType, i8, i32

    a_ty, b_ty, c_ty = MemRefType(i8, [m, k]), MemRefType(i8, [k, n]), MemRefType(i32, [m, n])
    f = func.FuncOp("main", ([a_ty, b_ty], [c_ty]))
    a, b = f.body.block.args
    a.name_hint, b.name_hint = "A", "B"
    builder = Builder(InsertPoint.at_end(f.body.block))
    c = builder.insert(memref.AllocOp.get(i32, shape=[m, n])).memref
    c.name_hint = "C"
    defn = specialize(parse(MATMUL_U8S8), {"M": m, "N": n, "K": k})
    kernel = texpr_kernel(defn, {"A": a, "B": b, "C": c})
    kernel.properties["label"] = StringAttr("matmul")
    builder.insert(kernel)
    builder.insert(func.ReturnOp(c))
    return ModuleOp([f])


def _is_u8s8_matmul(kernel: KernelOp) -> bool:
    """A kernel VNNI can compute: `C[m, n] += extui(A[m, k]) * extsi(B[k, n])` on
    i8 x i8 -> i32 with identity maps (the normalised form of `MATMUL_U8S8`)."""
    return _is_matmul_of(MATMUL_U8S8, kernel)


def _is_matmul_of(source: str, kernel: KernelOp) -> bool:
    """`kernel` is `source`'s matmul (up to names) with identity maps."""
    if len(kernel.inputs) != 2 or len(kernel.outputs) != 1 or len(kernel.iterators.data) != 3:
        return False
    ref = texpr_kernel_of(source, kernel)
    if ref is None:
        return False
    try:
        _unify_bodies(ref.body.block, kernel.body.block, 2, 2)
    except Exception:
        return False
    return [m.results for m in kernel.maps] == [m.results for m in ref.maps]


def texpr_kernel_of(source: str, like: KernelOp) -> KernelOp | None:
    """The detached kernel of `source` with the sizes of `like`'s operands (or None)."""
    shapes = [cast(MemRefType, v.type).get_shape() for v in like.operands]
    (mk, kn, mn) = shapes
    try:
        defn = specialize(parse(source), {"M": mk[0], "K": mk[1], "N": kn[1]})
    except Exception:
        return None
    if tuple(mn) != (mk[0], kn[1]):
        return None
    return normalized_kernel(defn)


@dataclass(frozen=True)
class VnniGemmSchedule:
    """Schedule strategy: u8 x s8 -> i32 matmuls through `vpdpbusd`, the rest through
    `fallback` (default: the host's `CpuDefaultSchedule`, single-threaded unless
    `threads`).

    Per matmul (iterators m, n, k; M % rows == 0, N % 16 == 0, K % 4 == 0; `tile` takes
    fewer vectors and more rows where N has fewer columns than the tile): pack B into
    panels `B[n / P, k / 4, n % P, k % 4]` (P = 16 * vectors columns each),
    split `m` by `rows`, `n` by `16 * vectors` then 16, `k` by 4, order
    `n.o, m.o, k.o, m.i, n.i.o | n.i.i, k.i` (the B panel of one `n.o` stays in cache
    while all rows pass), zero each register tile just before its K loop (no zero-fill
    pass over C: 0.025 ms of a 3136 x 64 product), unroll the `rows x vectors` register
    tile and tensorize the `16 x 4` tile with `x86.avx512.vpdpbusd`. Kernels that do not
    fit fall back."""

    rows: int = 4
    vectors: int = 4
    threads: bool = False
    fallback: Any = None

    def _fallback(self) -> Any:
        if self.fallback is not None:
            return self.fallback

        return CpuDefaultSchedule(vector_bits=host_features().vector_bits, threads=self.threads)

    @property
    def structural(self) -> bool:
        """Its decisions depend only on a kernel scope's structure where its fallback's do
        (`transforms.loops.schedule_reuse`)."""
        return bool(getattr(self._fallback(), "structural", False))

    @property
    def fuses_fills(self) -> bool:
        """Kernel scopes include the fill before a reduction where the fallback's do
        (`CpuDefaultSchedule.fuses_fills`); the tensorized kernels leave it as it is."""
        return bool(getattr(self._fallback(), "fuses_fills", False))

    def tile(self, kernel: KernelOp) -> tuple[int, int] | None:
        """(rows, vectors) of the register tile for `kernel`, or None where it does not
        fit: `vectors` 16-lane columns, fewer than `self.vectors` where they do not divide
        N (16 or 32 output channels), with as many more rows as keep about
        `rows * vectors` accumulators, down to `self.rows`, that divide M."""
        if not _is_u8s8_matmul(kernel):
            return None
        m, n, k = (it.size for it in kernel.iterator_list)
        if k % 4:
            return None
        vectors = self.vectors
        while vectors > 1 and n % (16 * vectors):
            vectors //= 2
        if n % (16 * vectors):
            return None
        rows = self.rows * self.vectors // vectors
        while rows > self.rows and m % rows:
            rows //= 2
        return (rows, vectors) if m % rows == 0 else None

    def fits(self, kernel: KernelOp) -> bool:
        return self.tile(kernel) is not None

    def schedule_kernel(self, sch: Any, kernel: KernelOp) -> None:
        tile = self.tile(kernel)
        if tile is None:
            self._fallback().schedule_kernel(sch, kernel)
            return
        rows, vectors = tile
        label = kernel.label.data
        sch.lower(label, keep_inits=True)
        pack = pack_vnni(sch.root, label, 1, 4, panel=16 * vectors)
        pack_label = pack.label.data
        sch.lower(pack_label)
        sch.vectorize(f"{pack_label}/g", 4)
        no, nii = _register_tiled(sch, label, kernel.iterator_names, rows, 16 * vectors, 4)
        if self.threads:
            sch.parallel(no)
        tensorize(sch.root, nii, "x86.avx512.vpdpbusd")


def _register_tiled(
    sch: Any, label: str, names: Sequence[str], rows: int, panel: int, group: int
) -> tuple[str, str]:
    """The loop nest of a 16-lane broadcast-dot product (`vpdpbusd`, `vdpbf16ps`) with a
    `rows x panel / 16` register tile: `m` split by `rows`, `n` by `panel` then 16, `k` by
    the intrinsic's `group`, order `n.o, m.o, k.o, m.i, n.i.o | n.i.i, k.i`; each tile
    zeroed just before its K loop (LLVM keeps the zeros in the accumulators, so C gets no
    zero-fill pass of its own); the tile unrolled. Returns (n.o, n.i.i): the panel loop
    and the intrinsic's vector loop."""
    mname, nname, kname = names
    mo, mi = sch.split(f"{label}/{mname}", rows)
    no, ni = sch.split(f"{label}/{nname}", panel)
    nio, nii = sch.split(ni, 16)
    ko, ki = sch.split(f"{label}/{kname}", group)
    sch.reorder(no, mo, ko, mi, nio, nii, ki)
    init = sch.decompose_reduction(label, ko)
    i_mi, i_nio, i_nii = sch.get_loops(init)[-3:]
    sch.unroll(i_mi)
    sch.unroll(i_nio)
    sch.vectorize(i_nii, 16)
    sch.unroll(mi)
    sch.unroll(nio)
    return no, nii


#: the least multiply-adds for which `Avx2Int8GemmSchedule` runs column panels on threads
#: (2^22: about 30 us at 140 GOP/s, several times a fork and join)
_PARALLEL_MACS = 1 << 22


@dataclass(frozen=True)
class Avx2Int8GemmSchedule:
    """Schedule strategy for AVX2 hosts without VNNI: u8 x s8 -> i32 matmuls through
    `vpmaddwd` (exact), the rest through `fallback` (as `VnniGemmSchedule`).

    Per matmul (iterators m, n, k; M % rows == 0, N % (8 * vectors) == 0, K % 2 == 0,
    M >= `min_rows`): pack B into i16 pair panels `B[n / P, k / 2, n % P, k % 2]`
    (P = 8 * vectors columns; sign-extended) and A into an i16 copy (zero-extended),
    split `m` by `rows`, `n` by P then 8, `k` by `k_block` (when it divides K and is
    smaller) then 2, order `n.o, k.o, m.o, k.i.o, m.i, n.i.o | n.i.i, k.i.i` (with a K
    block, a `k_block x P` block of the B panel stays in L1 while all rows pass),
    decompose the reduction (with `tile_init` and no K block, a zero tile just before
    `k.i.o`, which LLVM turns into zeroed accumulator registers; otherwise a zero fill
    of C first), unroll the `rows x vectors` register tile and tensorize the `8 x 2`
    tile with `x86.avx2.vpmaddwd`; with `threads`, the column panels `n.o` run in
    parallel when there are several and at least `_PARALLEL_MACS` multiply-adds.
    Kernels that do not fit fall back.

    The default 4 x 2 tile (8 accumulators, two B vectors, one broadcast A pair: 12 of
    the 16 ymm registers) measured best on Zen 3 among rows 2-8 x vectors 1-4 and
    `k_block` 0 / 192 / 256 / 512: 144 GOP/s for the 1024^3 product, 139 GOP/s for a
    3x3 64 -> 64 56^2 convolution's (1 thread; `docs/intrinsics.md`). The tile-level
    zero init gained 2.6 % on the 1024^3 GEMM (142 against 139 GOP/s, interleaved)."""

    rows: int = 4
    vectors: int = 2
    k_block: int = 0
    #: zero each register tile right before its K loop (without a K block), not C in a
    #: pass of its own first
    tile_init: bool = True
    #: fewer rows do not pay for packing B (1024 x 1024 B, 1 thread, Zen 3: M = 4 0.25 ms
    #: against 0.18 ms for `CpuDefaultSchedule`, M = 8 0.31 against 0.36, M = 64 1.2
    #: against 2.9)
    min_rows: int = 8
    threads: bool = False
    fallback: Any = None

    def _fallback(self) -> Any:
        return VnniGemmSchedule(threads=self.threads, fallback=self.fallback)._fallback()

    @property
    def structural(self) -> bool:
        """As `VnniGemmSchedule.structural`."""
        return bool(getattr(self._fallback(), "structural", False))

    @property
    def fuses_fills(self) -> bool:
        """As `VnniGemmSchedule.fuses_fills`."""
        return bool(getattr(self._fallback(), "fuses_fills", False))

    def fits(self, kernel: KernelOp) -> bool:
        """Whether `kernel` is a u8 x s8 matmul whose sizes the tile divides."""
        if not _is_u8s8_matmul(kernel):
            return False
        m, n, k = (it.size for it in kernel.iterator_list)
        return (
            m >= self.min_rows and m % self.rows == 0 and n % (8 * self.vectors) == 0 and k % 2 == 0
        )

    def schedule_kernel(self, sch: Any, kernel: KernelOp) -> None:
        if not self.fits(kernel):
            self._fallback().schedule_kernel(sch, kernel)
            return
        label = kernel.label.data
        mname, nname, kname = kernel.iterator_names
        k_extent = kernel.iterator_list[2].size
        panel = 8 * self.vectors
        k_blocked = 2 < self.k_block < k_extent and k_extent % self.k_block == 0
        sch.lower(label, keep_inits=True)
        if k_blocked or not self.tile_init:
            init = sch.decompose_reduction(label, f"{label}/{mname}")
            self._fallback()._schedule_block(sch, init)
        self._pack(sch, label, panel)
        mo, mi = sch.split(f"{label}/{mname}", self.rows)
        no, ni = sch.split(f"{label}/{nname}", panel)
        nio, nii = sch.split(ni, 8)
        k_loops: list[str] = []
        k_inner = f"{label}/{kname}"
        if k_blocked:
            ko, k_inner = sch.split(k_inner, self.k_block)
            k_loops.append(ko)
        kio, kii = sch.split(k_inner, 2)
        sch.reorder(no, *k_loops, mo, kio, mi, nio, nii, kii)
        if self.tile_init and not k_blocked:
            self._tile_init(sch, label, kio)
        sch.unroll(mi)
        sch.unroll(nio)
        m_extent, n_extent = (it.size for it in kernel.iterator_list[:2])
        if self.threads and n_extent > panel and m_extent * n_extent * k_extent >= _PARALLEL_MACS:
            sch.parallel(no)
        tensorize(sch.root, nii, "x86.avx2.vpmaddwd")

    def _tile_init(self, sch: Any, label: str, k_loop: str) -> None:
        """Zero each register tile just before its K loop (unrolled, 8-lane stores):
        LLVM forwards the zeros into the accumulators instead of loading them, so C gets
        no separate zero-fill pass (0.2 ms of the 1024^3 product, a 4 MiB write)."""
        init = sch.decompose_reduction(label, k_loop)
        mi, nio, nii = sch.get_loops(init)[-3:]
        sch.unroll(mi)
        sch.unroll(nio)
        sch.vectorize(nii, 8)

    def _pack(self, sch: Any, label: str, panel: int) -> None:
        """B into i16 pair panels, A into i16; both copies get the fallback's schedule
        (B's: 0.27 ms for 1024 x 1024 on Zen 3, against 0.6 ms with `g` vectorized by 2)."""
        b_pack = pack_vnni(sch.root, label, 1, 2, panel=panel, widen=16)
        a_pack = widen_input(sch.root, label, 0, 16)
        for pack in (b_pack, a_pack):
            self._fallback().schedule_kernel(sch, pack)


#: bf16 x bf16 -> f32 matmul (the tl kernel of a bf16 MatMul / Gemm, accumulating in f32),
#: which `Bf16GemmSchedule` tensorizes with `vdpbf16ps`
MATMUL_BF16 = (
    "matmul_bf16(A: bf16[M, K], B: bf16[K, N]) -> C: f32[M, N] "
    "{ C[m, n] += f32(A[m, k]) * f32(B[k, n]) }"
)


@dataclass(frozen=True)
class Bf16GemmSchedule:
    """Schedule strategy for AVX512-BF16 hosts: bf16 x bf16 -> f32 matmuls (`MATMUL_BF16`)
    through `vdpbf16ps` (two bf16 products per f32 lane, rounded once per pair into the
    accumulator), the rest through `fallback` (as `VnniGemmSchedule`).

    Per matmul (iterators m, n, k; M % rows == 0, N % (16 * vectors) == 0, K % 2 == 0,
    M >= `min_rows`): pack B into bf16 pair panels `B[n / P, k / 2, n % P, k % 2]`
    (P = 16 * vectors columns), split `m` by `rows`, `n` by P then 16, `k` by 2, order
    `n.o, m.o, k.o, m.i, n.i.o | n.i.i, k.i`, zero each register tile right before its K
    loop, unroll the `rows x vectors` tile and tensorize the `16 x 2` tile with
    `x86.avx512.vdpbf16ps`; with `threads`, the column panels run in parallel when there
    are several and at least `_PARALLEL_MACS` multiply-adds. A reads its bf16 pairs in
    place (one dword broadcast per row and pair)."""

    rows: int = 4
    vectors: int = 4
    min_rows: int = 4
    threads: bool = False
    fallback: Any = None

    def _next(self) -> Any:
        """Where other kernels (and B's packing copy) go: `fallback`, which may be another
        intrinsic's strategy, else the host's `CpuDefaultSchedule`."""
        return VnniGemmSchedule(threads=self.threads, fallback=self.fallback)._fallback()

    @property
    def structural(self) -> bool:
        """As `VnniGemmSchedule.structural`."""
        return bool(getattr(self._next(), "structural", False))

    def fits(self, kernel: KernelOp) -> bool:
        """Whether `kernel` is a bf16 matmul whose sizes the tile divides."""
        if not _is_matmul_of(MATMUL_BF16, kernel):
            return False
        m, n, k = (it.size for it in kernel.iterator_list)
        return (
            m >= self.min_rows
            and m % self.rows == 0
            and n % (16 * self.vectors) == 0
            and k % 2 == 0
        )

    def schedule_kernel(self, sch: Any, kernel: KernelOp) -> None:
        if not self.fits(kernel):
            self._next().schedule_kernel(sch, kernel)
            return
        label = kernel.label.data
        panel = 16 * self.vectors
        sch.lower(label, keep_inits=True)
        pack = pack_vnni(sch.root, label, 1, 2, panel=panel)
        self._next().schedule_kernel(sch, pack)
        no, nii = _register_tiled(sch, label, kernel.iterator_names, self.rows, panel, 2)
        m_extent, n_extent, k_extent = (it.size for it in kernel.iterator_list)
        if self.threads and n_extent > panel and m_extent * n_extent * k_extent >= _PARALLEL_MACS:
            sch.parallel(no)
        tensorize(sch.root, nii, "x86.avx512.vdpbf16ps")


#: fp32 matmul, the kernel `FmaGemmSchedule` tensorizes with `fma_tile`
MATMUL_F32 = "matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] { C[m, n] += A[m, k] * B[k, n] }"


def bf16_matmul_module(m: int, n: int, k: int) -> ModuleOp:
    """`func @main(%A: memref<MxKxbf16>, %B: memref<KxNxbf16>) -> memref<MxNxf32>` with one
    `tl.kernel` "matmul" computing `MATMUL_BF16`."""
    return _matmul_module(MATMUL_BF16, m, n, k)


def f32_matmul_module(m: int, n: int, k: int) -> ModuleOp:
    """`func @main(%A: memref<MxKxf32>, %B: memref<KxNxf32>) -> memref<MxNxf32>` with one
    `tl.kernel` "matmul" computing `MATMUL_F32`."""
    return _matmul_module(MATMUL_F32, m, n, k)


def _matmul_module(source: str, m: int, n: int, k: int) -> ModuleOp:
    from xdsl.builder import Builder, InsertPoint
    from xdsl.dialects import func, memref

    defn = specialize(parse(source), {"M": m, "N": n, "K": k})
    a_d, b_d = defn.inputs
    (c_d,) = defn.outputs

    def ty(d: Any, shape: list[int]) -> MemRefType:
        return MemRefType(element_type("i" + d.dtype[1:] if d.dtype[0] == "u" else d.dtype), shape)

    f = func.FuncOp("main", ([ty(a_d, [m, k]), ty(b_d, [k, n])], [ty(c_d, [m, n])]))
    a, b = f.body.block.args
    a.name_hint, b.name_hint = "A", "B"
    builder = Builder(InsertPoint.at_end(f.body.block))
    c = builder.insert(memref.AllocOp.get(ty(c_d, []).element_type, shape=[m, n])).memref
    c.name_hint = "C"
    kernel = texpr_kernel(defn, {"A": a, "B": b, "C": c})
    kernel.properties["label"] = StringAttr("matmul")
    builder.insert(kernel)
    builder.insert(func.ReturnOp(c))
    return ModuleOp([f])


@dataclass(frozen=True)
class FmaGemmSchedule:
    """Schedule strategy: fp32 matmuls (`MATMUL_F32`'s kernel) through the
    `x86.avx512.fma_tile` register tile, the rest through `fallback` (as
    `VnniGemmSchedule`). Per matmul (M % rows == 0, N % cols == 0, K % k_block == 0):
    decompose the reduction, split m by `rows`, n by `cols`, k by `k_block`, order
    `k.o, n.o, m.o | m.i, n.i, k.i` (one `k_block x cols` panel of B stays in cache while
    all rows pass) and tensorize the `rows x cols x k_block` tile (its accumulators live
    in registers across the K panel)."""

    rows: int = 4
    cols: int = 64
    k_block: int = 256
    threads: bool = False
    fallback: Any = None

    def fits(self, kernel: KernelOp) -> bool:
        ref = texpr_kernel_of(MATMUL_F32, kernel) if len(kernel.operands) == 3 else None
        if ref is None or len(kernel.iterators.data) != 3:
            return False
        if [m.results for m in kernel.maps] != [m.results for m in ref.maps]:
            return False
        if [v.type for v in kernel.operands] != [v.type for v in ref.operands]:
            return False
        m, n, k = (it.size for it in kernel.iterator_list)
        return m % self.rows == 0 and n % self.cols == 0 and k % min(k, self.k_block) == 0

    def schedule_kernel(self, sch: Any, kernel: KernelOp) -> None:
        fallback = VnniGemmSchedule(threads=self.threads, fallback=self.fallback)._fallback()
        if not self.fits(kernel):
            fallback.schedule_kernel(sch, kernel)
            return

        label = kernel.label.data
        mname, nname, kname = kernel.iterator_names
        k_extent = kernel.iterator_list[2].size
        sch.lower(label, keep_inits=True)
        init = sch.decompose_reduction(label, f"{label}/{mname}")
        fallback._schedule_block(sch, init)
        mo, mi = sch.split(f"{label}/{mname}", self.rows)
        no, ni = sch.split(f"{label}/{nname}", self.cols)
        if k_extent > self.k_block:
            ko, ki = sch.split(f"{label}/{kname}", self.k_block)
            sch.reorder(ko, no, mo, mi, ni, ki)
        else:
            sch.reorder(no, mo, mi, ni, f"{label}/{kname}")
        if self.threads:
            sch.parallel(no)
        tensorize(sch.root, mi, "x86.avx512.fma_tile")
