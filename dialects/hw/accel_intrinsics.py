"""The simulated accelerator's GEMM unit as a tensor intrinsic, declared with its hw op
(`dialects/hw/accel.py`): its semantics (what the simulator's `gemm` computes) and why
tensorize never places it on a CPU tile.
"""

from __future__ import annotations

from collections.abc import Mapping

from xdsl.ir import Operation

from mlc.dialects.hw.accel import TILE, GemmOp
from mlc.dialects.hw.intrinsics import Intrinsic, IntrinsicError, TileOperand, register_intrinsic

__all__ = ["ACCEL_GEMM", "GEMM16", "NOT_A_CPU_TILE"]

#: the GEMM unit: one 16 x 16 x 16 int8 tile product accumulated in int32
GEMM16 = (
    "accel_gemm16(A: i8[16, 16], B: i8[16, 16]) -> C: i32[16, 16] "
    "{ C[i, j] += i32(A[i, k]) * i32(B[k, j]) }"
)


#: why tensorize (which rewrites tl loops over memrefs on the CPU) never uses it
NOT_A_CPU_TILE = (
    "accel.gemm16 reads on-chip buffer slots, not memref tiles: accelerator programs come "
    "from `accel-placement` / `mlc.lowering.graph_to_accel.emit_gemm`"
)


def _build_gemm(
    intrinsic: Intrinsic, tiles: Mapping[str, TileOperand], sizes: Mapping[str, int]
) -> Operation:
    raise IntrinsicError(NOT_A_CPU_TILE)


ACCEL_GEMM = register_intrinsic(
    Intrinsic(
        name="accel.gemm16",
        source=GEMM16,
        op=GemmOp,
        build=_build_gemm,
        features=frozenset({"hw.accel"}),  # no CPU has it
        strides=(("A", (TILE, 1)), ("B", (TILE, 1)), ("C", (TILE, 1))),
        cost=16.0,  # cycles (CostModel.gemm_cycles)
        target="accel",
        check_sizes=lambda sizes: NOT_A_CPU_TILE,  # tensorize's matcher reports this
    )
)
