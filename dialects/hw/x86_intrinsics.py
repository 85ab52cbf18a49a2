"""x86 tensor intrinsics, declared with their hw ops (`dialects/hw/x86.py`): AVX-512 VNNI
`vpdpbusd` (u8 x s8 -> i32 dot products of 4), AVX2 `vpmaddwd` (i16 pairs -> i32, the
exact u8 x s8 product on hosts without VNNI once both operands are widened to i16),
AVX-512 BF16 `vdpbf16ps` (bf16 pairs -> f32) and the fp32 FMA register tile, each with its AVX-512VL / AVX2 variants. Each
declaration is the op's semantics (its interpreter evaluates the expression), the
pattern `tl-tensorize` matches and the cost it ranks by; the schedules that place them
are `targets/x86.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlc.dialects.hw.intrinsics import Intrinsic, TileOperand, register_intrinsic
from mlc.dialects.hw.x86 import FmaTileOp, Vdpbf16psOp, VpdpbusdOp, VpmaddwdOp

__all__ = ["FMA_TILE", "VDPBF16PS", "VPDPBUSD", "VPMADDWD", "build_broadcast_dot"]

#: u8 x s8 -> i32 dot products of 4, broadcast A (one dword) against L lanes of B
VPDPBUSD = "vpdpbusd<L>(A: u8[4], B: i8[L, 4]) -> C: i32[L] { C[j] += i32(A[k]) * i32(B[j, k]) }"
#: i16 pairs -> i32 (wrapping), broadcast A (one pair) against L lanes of B
VPMADDWD = "vpmaddwd<L>(A: i16[2], B: i16[L, 2]) -> C: i32[L] { C[j] += i32(A[k]) * i32(B[j, k]) }"
#: bf16 pairs -> f32, broadcast A (one pair) against L lanes of B
VDPBF16PS = (
    "vdpbf16ps<L>(A: bf16[2], B: bf16[L, 2]) -> C: f32[L] { C[j] += f32(A[k]) * f32(B[j, k]) }"
)
#: an MR x NR fp32 register tile updated over a K panel (outer products)
FMA_TILE = (
    "fma_tile(A: f32[MR, K], B: f32[K, NR]) -> C: f32[MR, NR] { C[i, j] += A[i, k] * B[k, j] }"
)


def _tiles(tiles: Mapping[str, TileOperand]) -> tuple[tuple, tuple, tuple]:
    def tile(name: str) -> tuple:
        return (tiles[name].buffer, list(tiles[name].indices))

    return tile("C"), tile("A"), tile("B")


def build_broadcast_dot(
    intrinsic: Intrinsic, tiles: Mapping[str, TileOperand], sizes: Mapping[str, int]
) -> VpdpbusdOp | Vdpbf16psOp | VpmaddwdOp:
    """The `vpdpbusd` / `vdpbf16ps` / `vpmaddwd` op of a matched tile."""
    c, a, b = _tiles(tiles)
    op_class = intrinsic.op
    assert op_class in (VpdpbusdOp, Vdpbf16psOp, VpmaddwdOp)
    return op_class(c, a, b, lanes=sizes["L"])  # type: ignore[call-arg]


@dataclass(frozen=True)
class _FmaTileBuilder:
    lanes: int

    def __call__(
        self, intrinsic: Intrinsic, tiles: Mapping[str, TileOperand], sizes: Mapping[str, int]
    ) -> FmaTileOp:
        c, a, b = _tiles(tiles)
        return FmaTileOp(
            c,
            a,
            b,
            mr=sizes["MR"],
            nr=sizes["NR"],
            kc=sizes["K"],
            lanes=self.lanes,
            a_strides=tiles["A"].strides,
            b_strides=tiles["B"].strides,
            c_strides=tiles["C"].strides,
        )


@dataclass(frozen=True)
class _FmaTileSizes:
    """NR a multiple of the lanes; the MR x NR accumulators fit the vector registers
    (leaving room for the B row and the broadcast A element)."""

    lanes: int
    registers: int

    def __call__(self, sizes: Mapping[str, int]) -> str | None:
        nr, mr = sizes["NR"], sizes["MR"]
        if nr % self.lanes:
            return f"NR = {nr} is not a multiple of {self.lanes} lanes"
        vectors = mr * nr // self.lanes
        if vectors > self.registers:
            return (
                f"MR x NR = {mr} x {nr} needs {vectors} accumulator registers, more than "
                f"{self.registers}"
            )
        return None


for _name, _lanes, _features, _cost in (
    ("x86.avx512.vpdpbusd", 16, {"avx512vnni"}, 1.0),
    ("x86.avx512vl.vpdpbusd", 8, {"avx512vnni", "avx512vl"}, 1.0),
    ("x86.avxvnni.vpdpbusd", 8, {"avxvnni"}, 1.0),
):
    register_intrinsic(
        Intrinsic(
            name=_name,
            source=VPDPBUSD,
            op=VpdpbusdOp,
            build=build_broadcast_dot,
            features=frozenset(_features),
            sizes=(("L", _lanes),),
            strides=(("A", (1,)), ("B", (4, 1)), ("C", (1,))),
            cost=_cost,
        )
    )

register_intrinsic(
    Intrinsic(
        name="x86.avx2.vpmaddwd",
        source=VPMADDWD,
        op=VpmaddwdOp,
        build=build_broadcast_dot,
        features=frozenset({"avx2"}),
        sizes=(("L", 8),),
        strides=(("A", (1,)), ("B", (2, 1)), ("C", (1,))),
        cost=1.0,
    )
)

for _name, _lanes, _features in (
    ("x86.avx512.vdpbf16ps", 16, {"avx512bf16"}),
    ("x86.avx512vl.vdpbf16ps", 8, {"avx512bf16", "avx512vl"}),
):
    register_intrinsic(
        Intrinsic(
            name=_name,
            source=VDPBF16PS,
            op=Vdpbf16psOp,
            build=build_broadcast_dot,
            features=frozenset(_features),
            sizes=(("L", _lanes),),
            strides=(("A", (1,)), ("B", (2, 1)), ("C", (1,))),
            cost=1.0,
        )
    )

for _name, _lanes, _features, _registers in (
    ("x86.avx512.fma_tile", 16, {"avx512f"}, 28),
    ("x86.avx2.fma_tile", 8, {"avx2", "fma"}, 12),
):
    register_intrinsic(
        Intrinsic(
            name=_name,
            source=FMA_TILE,
            op=FmaTileOp,
            build=_FmaTileBuilder(_lanes),
            features=frozenset(_features),
            strides=(("A", (None, None)), ("B", (None, 1)), ("C", (None, 1))),
            cost=2.0,
            check_sizes=_FmaTileSizes(_lanes, _registers),
        )
    )
