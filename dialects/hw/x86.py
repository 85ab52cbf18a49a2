"""`hw.x86`: x86 tensor intrinsics as ops on `memref` tiles.

Every op reads input tiles and accumulates into an output tile. A tile is a buffer and
the index of its first element (`%B[%k, %n, %c0]`); the op addresses the buffer in its
dense row-major element order from there, with the element strides its semantics fix
(vector lanes and dot-product groups are contiguous) or that the op carries
(`fma_tile`'s row strides). The semantics of each op is the tensor expression of its
intrinsic declaration in `mlc.targets.x86` (`C[...] += ...`, accumulated into the
output); the interpreter evaluates that expression (`mlc.interpreters.hw`), and
`mlc.lowering.hw_x86_to_llvm` emits the LLVM intrinsics.

    hw.x86.vpdpbusd %C[%i, %j], %A[%i, %k], %B[%kb, %j, %c0] {lanes = 16 : i64} : memref<4x64xi32>, memref<4x8xi8>, memref<2x64x4xi8>

`hw.x86.vpmaddwd` is the AVX2 form of the same product on i16 pairs (u8 / s8 data
widened to i16 when packed).

Unsigned operands (`vpdpbusd`'s `A`) are stored in signless `i8` buffers and read as
unsigned (zero-extended), as the tl kernels of u8 data do (`arith.extui`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, cast

from xdsl.dialects.builtin import (
    BFloat16Type,
    DenseArrayBase,
    Float32Type,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    i64,
)
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    prop_def,
    var_operand_def,
)
from xdsl.utils.exceptions import VerifyException

from mlc.dialects.hw.intrinsics import semantics_of
from mlc.dialects.tl.base import row_major_strides

__all__ = [
    "HW_X86",
    "FmaTileOp",
    "HwTileOp",
    "Vdpbf16psOp",
    "VpdpbusdOp",
    "VpmaddwdOp",
    "row_major_strides",
]

Tile = tuple[SSAValue, Sequence[SSAValue]]

_TILE_FORMAT = (
    "$c `[` $c_indices `]` `,` $a `[` $a_indices `]` `,` $b `[` $b_indices `]` attr-dict "
    "`:` type($c) `,` type($a) `,` type($b)"
)


class HwTileOp(IRDLOperation, ABC):
    """Shared structure: output tile `C`, input tiles `A` and `B` (buffer + first-element
    index each), and the sizes and strides that place each tile's elements."""

    c = operand_def(MemRefType)
    c_indices = var_operand_def(IndexType)
    a = operand_def(MemRefType)
    a_indices = var_operand_def(IndexType)
    b = operand_def(MemRefType)
    b_indices = var_operand_def(IndexType)

    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = _TILE_FORMAT

    #: element types of the buffers of C, A, B
    ELEMENT_TYPES: ClassVar[tuple[Attribute, Attribute, Attribute]]

    def _init(self, c: Tile, a: Tile, b: Tile, props: dict[str, Attribute]) -> None:
        IRDLOperation.__init__(
            self,
            operands=[c[0], list(c[1]), a[0], list(a[1]), b[0], list(b[1])],
            properties=props,
        )

    def tiles(self) -> dict[str, Tile]:
        """Tensor name of the semantics -> (buffer, first-element index)."""
        return {
            "C": (self.c, list(self.c_indices)),
            "A": (self.a, list(self.a_indices)),
            "B": (self.b, list(self.b_indices)),
        }

    @abstractmethod
    def sizes(self) -> dict[str, int]:
        """Values of the semantics' sizes."""

    @abstractmethod
    def tile_strides(self) -> dict[str, tuple[int, ...]]:
        """Per tensor of the semantics: the buffer element stride of each of its dims."""

    def tile_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per tensor of the semantics: its shape (the tile's extent per dim)."""
        return semantics_of(self).shapes(self.sizes())

    def verify_(self) -> None:
        shapes = self.tile_shapes()
        strides = self.tile_strides()
        for (name, (buf, idx)), want in zip(self.tiles().items(), self.ELEMENT_TYPES):
            ty = cast(MemRefType, buf.type)
            if len(idx) != ty.get_num_dims():
                raise VerifyException(
                    f"{self.name}: tile {name} needs {ty.get_num_dims()} indices into "
                    f"{ty}, got {len(idx)}"
                )
            if ty.element_type != want:
                raise VerifyException(
                    f"{self.name}: tile {name} must be a buffer of {want}, got {ty}"
                )
            if any(d < 0 for d in ty.get_shape()):
                raise VerifyException(f"{self.name}: tile {name} needs a static shape, got {ty}")
            size = 1
            for d in ty.get_shape():
                size *= d
            span = 1 + sum((n - 1) * s for n, s in zip(shapes[name], strides[name]))
            if span > size:
                raise VerifyException(
                    f"{self.name}: tile {name} spans {span} elements, more than {ty} holds"
                )
        self.verify_sizes()

    def verify_sizes(self) -> None:
        """Op-specific checks of sizes and strides."""


class _BroadcastDotOp(HwTileOp, ABC):
    """`C[j] += sum_k f(A[k]) * f(B[j, k])` for `lanes` lanes j and `GROUP` elements k:
    the `GROUP` contiguous elements of A are broadcast to every lane; B is `lanes x GROUP`
    contiguous elements; C is `lanes` contiguous accumulators."""

    lanes = prop_def(IntegerAttr[IntegerType])
    GROUP: ClassVar[int]
    LANES: ClassVar[tuple[int, ...]]

    def __init__(self, c: Tile, a: Tile, b: Tile, lanes: int = 16) -> None:
        self._init(c, a, b, {"lanes": IntegerAttr(lanes, i64)})

    def sizes(self) -> dict[str, int]:
        return {"L": self.lanes.value.data}

    def tile_strides(self) -> dict[str, tuple[int, ...]]:
        return {"C": (1,), "A": (1,), "B": (self.GROUP, 1)}

    def verify_sizes(self) -> None:
        if self.lanes.value.data not in self.LANES:
            raise VerifyException(
                f"{self.name}: lanes must be one of {', '.join(map(str, self.LANES))}, "
                f"got {self.lanes.value.data}"
            )


@irdl_op_definition
class VpdpbusdOp(_BroadcastDotOp):
    """`vpdpbusd`: C[j] += sum_{k<4} i32(zext A[k]) * i32(sext B[j, k]), j < lanes (16:
    zmm, 8: ymm); A holds u8 data (in an i8 buffer), B s8, C i32 (wrapping).

    hw.x86.vpdpbusd %C[%i, %j], %A[%i, %k], %B[%kb, %j, %c0] {lanes = 16 : i64} : memref<4x64xi32>, memref<4x8xi8>, memref<2x64x4xi8>
    """

    name = "hw.x86.vpdpbusd"
    GROUP: ClassVar[int] = 4
    LANES: ClassVar[tuple[int, ...]] = (8, 16)
    ELEMENT_TYPES: ClassVar[tuple[Attribute, Attribute, Attribute]] = (
        IntegerType(32),
        IntegerType(8),
        IntegerType(8),
    )


@irdl_op_definition
class Vdpbf16psOp(_BroadcastDotOp):
    """`vdpbf16ps`: C[j] += sum_{k<2} f32(A[k]) * f32(B[j, k]), j < lanes (16: zmm, 8: ymm);
    A and B bf16, C f32.

    hw.x86.vdpbf16ps %C[%i, %j], %A[%i, %k], %B[%kb, %j, %c0] {lanes = 16 : i64} : memref<4x32xf32>, memref<4x4xbf16>, memref<2x32x2xbf16>
    """

    name = "hw.x86.vdpbf16ps"
    GROUP: ClassVar[int] = 2
    LANES: ClassVar[tuple[int, ...]] = (8, 16)
    ELEMENT_TYPES: ClassVar[tuple[Attribute, Attribute, Attribute]] = (
        Float32Type(),
        BFloat16Type(),
        BFloat16Type(),
    )


@irdl_op_definition
class VpmaddwdOp(_BroadcastDotOp):
    """`vpmaddwd` then `vpaddd` (AVX2): C[j] += sum_{k<2} i32(A[k]) * i32(B[j, k]),
    j < lanes (8: ymm); A and B i16 (sign-extended), C i32. Exact: each product and the
    pair's sum wrap in i32 as the expression's do (only -32768 * -32768 twice reaches
    2^31), so u8 x s8 data widened to i16 (zero- and sign-extended) gives the integer
    product bit for bit.

    hw.x86.vpmaddwd %C[%i, %j], %A[%i, %k], %B[%p, %kb, %c0, %c0] {lanes = 8 : i64} : memref<4x16xi32>, memref<4x8xi16>, memref<2x4x8x2xi16>
    """

    name = "hw.x86.vpmaddwd"
    GROUP: ClassVar[int] = 2
    LANES: ClassVar[tuple[int, ...]] = (8,)
    ELEMENT_TYPES: ClassVar[tuple[Attribute, Attribute, Attribute]] = (
        IntegerType(32),
        IntegerType(16),
        IntegerType(16),
    )

    def __init__(self, c: Tile, a: Tile, b: Tile, lanes: int = 8) -> None:
        super().__init__(c, a, b, lanes)


@irdl_op_definition
class FmaTileOp(HwTileOp):
    """An `mr x nr` fp32 register tile updated over a K panel of `kc` steps:
    C[i, j] += sum_{k<kc} A[i, k] * B[k, j], with lanes-wide FMAs (16: AVX-512, 8: AVX2).
    Element strides: A `a_strides = [row, k]`, B `b_strides = [k, 1]`, C
    `c_strides = [row, 1]` (a row of B and of C is contiguous; nr a multiple of lanes).

    hw.x86.fma_tile %C[%i, %j], %A[%i, %c0], %B[%c0, %j] {mr = 4 : i64, nr = 32 : i64, kc = 8 : i64, lanes = 16 : i64, a_strides = array<i64: 8, 1>, b_strides = array<i64: 64, 1>, c_strides = array<i64: 64, 1>} : memref<8x64xf32>, memref<8x8xf32>, memref<8x64xf32>
    """

    name = "hw.x86.fma_tile"

    mr = prop_def(IntegerAttr[IntegerType])
    nr = prop_def(IntegerAttr[IntegerType])
    kc = prop_def(IntegerAttr[IntegerType])
    lanes = prop_def(IntegerAttr[IntegerType])
    a_strides = prop_def(DenseArrayBase)
    b_strides = prop_def(DenseArrayBase)
    c_strides = prop_def(DenseArrayBase)

    ELEMENT_TYPES: ClassVar[tuple[Attribute, Attribute, Attribute]] = (
        Float32Type(),
        Float32Type(),
        Float32Type(),
    )

    def __init__(
        self,
        c: Tile,
        a: Tile,
        b: Tile,
        *,
        mr: int,
        nr: int,
        kc: int,
        lanes: int,
        a_strides: Sequence[int],
        b_strides: Sequence[int],
        c_strides: Sequence[int],
    ) -> None:
        props: dict[str, Attribute] = {
            "mr": IntegerAttr(mr, i64),
            "nr": IntegerAttr(nr, i64),
            "kc": IntegerAttr(kc, i64),
            "lanes": IntegerAttr(lanes, i64),
            "a_strides": DenseArrayBase.from_list(i64, list(a_strides)),
            "b_strides": DenseArrayBase.from_list(i64, list(b_strides)),
            "c_strides": DenseArrayBase.from_list(i64, list(c_strides)),
        }
        self._init(c, a, b, props)

    def sizes(self) -> dict[str, int]:
        return {"MR": self.mr.value.data, "NR": self.nr.value.data, "K": self.kc.value.data}

    def tile_strides(self) -> dict[str, tuple[int, ...]]:
        def ints(attr: DenseArrayBase) -> tuple[int, ...]:
            return tuple(int(x) for x in attr.get_values())

        return {
            "C": ints(self.c_strides),
            "A": ints(self.a_strides),
            "B": ints(self.b_strides),
        }

    def verify_sizes(self) -> None:
        strides = self.tile_strides()
        if any(len(s) != 2 for s in strides.values()):
            raise VerifyException(f"{self.name}: a_strides, b_strides, c_strides take 2 values")
        if strides["B"][1] != 1 or strides["C"][1] != 1:
            raise VerifyException(f"{self.name}: rows of B and C must be contiguous (stride 1)")
        lanes = self.lanes.value.data
        if lanes not in (8, 16):
            raise VerifyException(f"{self.name}: lanes must be 8 or 16, got {lanes}")
        nr, mr, kc = self.nr.value.data, self.mr.value.data, self.kc.value.data
        if nr <= 0 or nr % lanes:
            raise VerifyException(f"{self.name}: nr ({nr}) must be a multiple of lanes ({lanes})")
        if mr <= 0 or kc <= 0:
            raise VerifyException(f"{self.name}: mr and kc must be positive")


HW_X86 = Dialect("hw.x86", [VpdpbusdOp, Vdpbf16psOp, VpmaddwdOp, FmaTileOp], [])
