"""`hw.accel`: the instruction set of a simulated VTA-like int8 accelerator.

The machine (tutorial: `docs/new-hardware.md`; simulator: `mlc.interpreters.accel`):

- DRAM: the buffers a `hw.accel.program` receives (its block arguments, flat row-major).
- Three on-chip buffers of 16 x 16 tiles: `inp` (int8, `CAPACITY[INP]` tiles), `wgt`
  (int8) and `acc` (int32).
- Three queues that run concurrently, each in program order:
  `load` (DMA of `inp` / `wgt` tiles), `compute` (`acc` loads, GEMM, ALU) and `store`
  (DMA of `acc` tiles to DRAM). Every instruction yields a `!hw.accel.token`; listing a
  token in `after(...)` makes the instruction wait until that one has finished. Data
  hazards between queues must be covered by tokens: the simulator rejects a program
  where they are not.

A DMA tile is `rows` rows of `cols` contiguous elements, row r starting at element
`offset + r * stride` of the (flattened) DRAM buffer; rows/columns beyond `rows` x `cols`
are zero on load and not written on store. A stride of 0 broadcasts one row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, final

from xdsl.dialects.builtin import I64, IntegerAttr, IntegerType, MemRefType, TensorType, UnitAttr
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import (
    Attribute,
    BlockArgument,
    Dialect,
    Operation,
    ParametrizedAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.irdl.declarative_assembly_format import (
    AttributeVariable,
    CustomDirective,
    ParsingState,
    PrintingState,
    UniqueBaseAttributeVariable,
    irdl_custom_directive,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import NoTerminator
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

#: every on-chip tile is TILE x TILE elements
TILE = 16


class AccelError(VerifyException):
    """An `hw.accel` instruction or program that the machine cannot execute."""


class Buffer(StrEnum):
    """An on-chip buffer."""

    INP = "inp"
    WGT = "wgt"
    ACC = "acc"


#: tiles per on-chip buffer (32 KiB inp, 256 KiB wgt, 128 KiB acc, as in VTA's default)
CAPACITY: dict[Buffer, int] = {Buffer.INP: 128, Buffer.WGT: 1024, Buffer.ACC: 128}
#: element width in bits of each buffer (= the DRAM element type a load reads)
ELEMENT_BITS: dict[Buffer, int] = {Buffer.INP: 8, Buffer.WGT: 8, Buffer.ACC: 32}


class AluOpcode(StrEnum):
    """ALU operations on int32 `acc` tiles: `dst = op(dst, src or imm)`; `shr` is an
    arithmetic right shift by 0..31; clip(lo, hi) is `max lo` then `min hi`."""

    ADD = "add"
    MAX = "max"
    MIN = "min"
    SHR = "shr"


class _Enum(EnumAttribute[Any]):
    """An enum attribute: `#hw.accel.buffer<inp>` (generic form), a bare keyword inside
    an op's custom form (`custom<Keyword>($buffer)`)."""

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> Any:
        with parser.in_angle_brackets():
            return parser.parse_str_enum(cls.enum_type)

    def print_parameter(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(self.data.value)


@irdl_attr_definition
class BufferAttr(_Enum, EnumAttribute[Buffer]):
    """An on-chip buffer: `#hw.accel.buffer<inp>` (`inp`, `wgt` or `acc`)."""

    name = "hw.accel.buffer"


@irdl_attr_definition
class AluOpcodeAttr(_Enum, EnumAttribute[AluOpcode]):
    """An ALU operation: `#hw.accel.alu_op<max>` (`add`, `max`, `min` or `shr`)."""

    name = "hw.accel.alu_op"


@irdl_custom_directive
class Keyword(CustomDirective):
    """An enum property printed as its bare keyword: `inp`, `max`."""

    attr: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        assert isinstance(self.attr, UniqueBaseAttributeVariable)
        cls = self.attr.unique_base
        assert issubclass(cls, _Enum)
        self.attr.set(state, cls(parser.parse_str_enum(cls.enum_type)))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        attr = self.attr.get(op)
        assert isinstance(attr, _Enum)
        state.print_whitespace(printer)
        printer.print_string(attr.data.value)


@final
@irdl_attr_definition
class TokenType(ParametrizedAttribute, TypeAttribute):
    """`!hw.accel.token`: the completion of one instruction."""

    name = "hw.accel.token"


#: an on-chip slot (`("inp", 3)`) or a DRAM buffer (`("dram", argument index)`)
Resource = tuple[str, int]
#: the DRAM side of a DMA: (offset, stride, rows, cols) in elements
Tile = tuple[int, int, int, int]


def _i64(value: int) -> IntegerAttr:
    return IntegerAttr(value, 64)


def _tile_props(tile: Tile) -> dict[str, Attribute]:
    return {k: _i64(v) for k, v in zip(("offset", "stride", "rows", "cols"), tile, strict=True)}


def _check_slot(op: Operation, buffer: Buffer, slot: int) -> None:
    if not 0 <= slot < CAPACITY[buffer]:
        raise AccelError(
            f"{op.name}: {buffer.value}[{slot}] is outside the buffer ({CAPACITY[buffer]} tiles)"
        )


class InstructionOp(IRDLOperation):
    """Base of the instructions: token dependencies in, one token out."""

    deps = var_operand_def(TokenType)
    token = result_def(TokenType)

    #: the queue that executes the instruction: "load", "compute" or "store"
    QUEUE: ClassVar[str] = "compute"

    def queue(self) -> str:
        return self.QUEUE

    def accesses(self) -> tuple[list[Resource], list[Resource]]:
        """The on-chip slots and DRAM buffers the instruction reads and writes."""
        raise NotImplementedError

    def verify_(self) -> None:
        parent = self.parent_op()
        if parent is not None and not isinstance(parent, ProgramOp):
            raise AccelError(f"{self.name} must be inside an hw.accel.program")
        self.verify_instruction()

    def verify_instruction(self) -> None:
        """Check operands and properties against the machine."""


class _DmaOp(InstructionOp):
    dram = operand_def(MemRefType)
    offset = prop_def(IntegerAttr[I64])
    stride = prop_def(IntegerAttr[I64])
    rows = prop_def(IntegerAttr[I64])
    cols = prop_def(IntegerAttr[I64])
    slot = prop_def(IntegerAttr[I64])

    def tile(self) -> Tile:
        """(offset, stride, rows, cols) of the DRAM side."""
        o, s, r, c = self.offset, self.stride, self.rows, self.cols
        return o.value.data, s.value.data, r.value.data, c.value.data

    def dram_resource(self) -> Resource:
        arg = self.dram
        return ("dram", arg.index if isinstance(arg, BlockArgument) else -1)

    def _verify_dma(self, buffer: Buffer, dram_bits: tuple[int, ...]) -> None:
        offset, stride, rows, cols = self.tile()
        if not (1 <= rows <= TILE and 1 <= cols <= TILE):
            raise AccelError(f"{self.name}: a tile is 1..{TILE} x 1..{TILE}, got {rows}x{cols}")
        if offset < 0 or stride < 0:
            raise AccelError(f"{self.name}: offset and stride must be >= 0")
        _check_slot(self, buffer, self.slot.value.data)
        ty = self.dram.type
        assert isinstance(ty, MemRefType)
        size = math.prod(ty.get_shape())
        if offset + (rows - 1) * stride + cols > size:
            raise AccelError(f"{self.name}: the tile leaves the {size}-element DRAM buffer")
        elt = ty.element_type
        if not isinstance(elt, IntegerType) or elt.width.data not in dram_bits:
            want = " or ".join(f"i{b}" for b in dram_bits)
            raise AccelError(f"{self.name}: {buffer.value} tiles need {want} DRAM, got {elt}")
        block = self.parent_block()
        if block is not None and self.dram not in block.args:
            raise AccelError(f"{self.name}: DRAM must be an argument of the program")


@irdl_op_definition
class LoadOp(_DmaOp):
    """DMA a tile from DRAM into an on-chip buffer slot (`acc` loads run on the compute
    queue, `inp` / `wgt` loads on the load queue).

    %t = hw.accel.load %A[0] stride 48 rows 16 cols 16 -> inp[0] : memref<32x48xi8>
    """

    name = "hw.accel.load"
    buffer = prop_def(BufferAttr)

    custom_directives = (Keyword,)
    assembly_format = (
        "$dram `[` $offset `]` `stride` $stride `rows` $rows `cols` $cols"
        " `->` custom<Keyword>($buffer) `[` $slot `]` (`after` `(` $deps^ `)`)? attr-dict `:` type($dram)"
    )

    def __init__(
        self, dram: SSAValue, buffer: Buffer, slot: int, tile: Tile, deps: Sequence[SSAValue] = ()
    ) -> None:
        props = {"buffer": BufferAttr(buffer), "slot": _i64(slot), **_tile_props(tile)}
        super().__init__(operands=[dram, deps], result_types=[TokenType()], properties=props)

    def queue(self) -> str:
        return "compute" if self.buffer.data == Buffer.ACC else "load"

    def accesses(self) -> tuple[list[Resource], list[Resource]]:
        return [self.dram_resource()], [(self.buffer.data.value, self.slot.value.data)]

    def verify_instruction(self) -> None:
        buffer = self.buffer.data
        self._verify_dma(buffer, (ELEMENT_BITS[buffer],))


@irdl_op_definition
class StoreOp(_DmaOp):
    """DMA an `acc` tile to DRAM; an i8 DRAM buffer receives the low 8 bits of each
    int32 (wrapping, like `graph.cast`: clip with the ALU first to saturate).

    %t = hw.accel.store acc[0] -> %C[0] stride 16 rows 16 cols 16 after(%t0) : memref<32x16xi8>
    """

    name = "hw.accel.store"
    QUEUE: ClassVar[str] = "store"

    assembly_format = (
        "`acc` `[` $slot `]` `->` $dram `[` $offset `]` `stride` $stride `rows` $rows `cols` $cols"
        " (`after` `(` $deps^ `)`)? attr-dict `:` type($dram)"
    )

    def __init__(
        self, slot: int, dram: SSAValue, tile: Tile, deps: Sequence[SSAValue] = ()
    ) -> None:
        props = {"slot": _i64(slot), **_tile_props(tile)}
        super().__init__(operands=[dram, deps], result_types=[TokenType()], properties=props)

    def accesses(self) -> tuple[list[Resource], list[Resource]]:
        return [(Buffer.ACC.value, self.slot.value.data)], [self.dram_resource()]

    def verify_instruction(self) -> None:
        self._verify_dma(Buffer.ACC, (8, 32))


@irdl_op_definition
class GemmOp(InstructionOp):
    """acc[acc] (+)= i32(inp[inp]) x i32(wgt[wgt]) on 16 x 16 tiles (`reset`: overwrite
    instead of accumulate); the semantics is the `accel.gemm16` intrinsic.

    %t = hw.accel.gemm inp[0], wgt[1] -> acc[2] reset after(%t0, %t1)
    """

    name = "hw.accel.gemm"
    inp = prop_def(IntegerAttr[I64])
    wgt = prop_def(IntegerAttr[I64])
    acc = prop_def(IntegerAttr[I64])
    reset = opt_prop_def(UnitAttr)

    assembly_format = (
        "`inp` `[` $inp `]` `,` `wgt` `[` $wgt `]` `->` `acc` `[` $acc `]` (`reset` $reset^)?"
        " (`after` `(` $deps^ `)`)? attr-dict"
    )

    def __init__(
        self, inp: int, wgt: int, acc: int, *, reset: bool, deps: Sequence[SSAValue] = ()
    ) -> None:
        props: dict[str, Attribute] = {"inp": _i64(inp), "wgt": _i64(wgt), "acc": _i64(acc)}
        if reset:
            props["reset"] = UnitAttr()
        super().__init__(operands=[list(deps)], result_types=[TokenType()], properties=props)

    def accesses(self) -> tuple[list[Resource], list[Resource]]:
        acc = (Buffer.ACC.value, self.acc.value.data)
        reads = [(Buffer.INP.value, self.inp.value.data), (Buffer.WGT.value, self.wgt.value.data)]
        return (reads if self.reset else [*reads, acc]), [acc]

    def verify_instruction(self) -> None:
        _check_slot(self, Buffer.INP, self.inp.value.data)
        _check_slot(self, Buffer.WGT, self.wgt.value.data)
        _check_slot(self, Buffer.ACC, self.acc.value.data)


@irdl_op_definition
class AluOp(InstructionOp):
    """acc[dst] = op(acc[dst], acc[src]) or op(acc[dst], imm), elementwise on int32
    (`add` wraps).

    %t = hw.accel.alu max acc[0], imm 0 after(%t0)
    """

    name = "hw.accel.alu"
    opcode = prop_def(AluOpcodeAttr)
    dst = prop_def(IntegerAttr[I64])
    src = opt_prop_def(IntegerAttr[I64])
    imm = opt_prop_def(IntegerAttr[I64])

    custom_directives = (Keyword,)
    assembly_format = (
        "custom<Keyword>($opcode) `acc` `[` $dst `]` `,` (`acc` `[` $src^ `]`)? (`imm` $imm^)?"
        " (`after` `(` $deps^ `)`)? attr-dict"
    )

    def __init__(
        self,
        opcode: AluOpcode,
        dst: int,
        *,
        src: int | None = None,
        imm: int | None = None,
        deps: Sequence[SSAValue] = (),
    ) -> None:
        props: dict[str, Attribute] = {"opcode": AluOpcodeAttr(opcode), "dst": _i64(dst)}
        if src is not None:
            props["src"] = _i64(src)
        if imm is not None:
            props["imm"] = _i64(imm)
        super().__init__(operands=[list(deps)], result_types=[TokenType()], properties=props)

    def accesses(self) -> tuple[list[Resource], list[Resource]]:
        dst = (Buffer.ACC.value, self.dst.value.data)
        src = [] if self.src is None else [(Buffer.ACC.value, self.src.value.data)]
        return [dst, *src], [dst]

    def verify_instruction(self) -> None:
        _check_slot(self, Buffer.ACC, self.dst.value.data)
        if (self.src is None) == (self.imm is None):
            raise AccelError(f"{self.name}: give exactly one of a source tile and an immediate")
        if self.src is not None:
            _check_slot(self, Buffer.ACC, self.src.value.data)
            if self.opcode.data == AluOpcode.SHR:
                raise AccelError(f"{self.name}: shr takes an immediate shift")
        elif self.imm is not None:
            imm = self.imm.value.data
            lo, hi = (0, 31) if self.opcode.data == AluOpcode.SHR else (-(2**31), 2**31 - 1)
            if not lo <= imm <= hi:
                raise AccelError(f"{self.name}: immediate {imm} is outside [{lo}, {hi}]")


@irdl_op_definition
class ProgramOp(IRDLOperation):
    """An instruction stream and the host <-> DRAM transfers around it: the operands are
    copied to DRAM, the block arguments are the DRAM buffers (inputs, then zero-filled
    outputs), the stream runs, and the output buffers are copied back as the results.

    %c = hw.accel.program(%a, %b) : (tensor<16x16xi8>, tensor<16x16xi8>) -> tensor<16x16xi32> {
    ^bb0(%A: memref<16x16xi8>, %B: memref<16x16xi8>, %C: memref<16x16xi32>):
      %0 = hw.accel.load %A[0] stride 16 rows 16 cols 16 -> inp[0] : memref<16x16xi8>
      %1 = hw.accel.load %B[0] stride 16 rows 16 cols 16 -> wgt[0] : memref<16x16xi8>
      %2 = hw.accel.gemm inp[0], wgt[0] -> acc[0] reset after(%0, %1)
      %3 = hw.accel.store acc[0] -> %C[0] stride 16 rows 16 cols 16 after(%2) : memref<16x16xi32>
    }
    """

    name = "hw.accel.program"
    inputs = var_operand_def(TensorType)
    outputs = var_result_def(TensorType)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())

    assembly_format = (
        "`(` $inputs `)` attr-dict-with-keyword `:` functional-type($inputs, $outputs) $body"
    )

    def verify_(self) -> None:
        args = self.body.block.args
        tensors = [*self.inputs.types, *self.outputs.types]
        if len(args) != len(tensors):
            raise AccelError(
                f"{self.name}: expected {len(tensors)} DRAM buffers (inputs then outputs), "
                f"got {len(args)} block arguments"
            )
        for i, (arg, ty) in enumerate(zip(args, tensors)):
            assert isinstance(ty, TensorType)
            want = MemRefType(ty.element_type, ty.get_shape())
            if arg.type != want:
                raise AccelError(f"{self.name}: DRAM buffer #{i} must be {want}, got {arg.type}")
        for op in self.body.block.ops:
            if not isinstance(op, InstructionOp):
                raise AccelError(f"{self.name}: '{op.name}' is not an hw.accel instruction")


INSTRUCTIONS: tuple[type[InstructionOp], ...] = (LoadOp, StoreOp, GemmOp, AluOp)

Accel = Dialect("hw.accel", [*INSTRUCTIONS, ProgramOp], [TokenType, BufferAttr, AluOpcodeAttr])
