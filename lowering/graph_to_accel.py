"""graph -> the simulated accelerator: int8 matrix products (and convolutions, through
im2col tiles) as `hw.accel` instruction streams (its GEMM intrinsic is declared with the
dialect, `dialects/hw/accel_intrinsics.py`).

    fn = lower_matmul(40, 64, 24, Epilogue(bias="row", alu=((AluOpcode.MAX, 0),)))
    (c,), report = simulate(program_of(fn), [a_i8, b_i8, bias_i32])  # mlc.interpreters.accel

Schedule (`emit_gemm`): the N tiles are processed in groups whose weights stay resident
in `wgt`; per group, each M tile streams its K tiles of A through `inp` (slots rotate over
the whole buffer, so loads run ahead of compute), accumulates into one of two `acc` tile
sets (double buffering: the stores of one M tile overlap the GEMMs of the next), applies
the epilogue on the ALU and stores. `StreamBuilder` adds the tokens that the data hazards
between queues need, so the schedule is written without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, TensorType, i8, i32
from xdsl.ir import Block, Region, SSAValue

from mlc.dialects.hw.accel import (
    CAPACITY,
    TILE,
    AluOp,
    AluOpcode,
    Buffer,
    GemmOp,
    InstructionOp,
    LoadOp,
    ProgramOp,
    StoreOp,
    Tile,
)

QUEUE_INDEX = {"load": 0, "compute": 1, "store": 2}


class StreamBuilder:
    """Appends instructions to a program's block and gives each the tokens its data
    hazards need: the latest instruction of every *other* queue that wrote what it
    reads, or read or wrote what it writes (queues run in order, so one per queue)."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.writer: dict[tuple[str, int], InstructionOp] = {}
        self.readers: dict[tuple[str, int], list[InstructionOp]] = {}
        self.seq: dict[InstructionOp, int] = {}

    def emit(self, op: InstructionOp) -> InstructionOp:
        reads, writes = op.accesses()
        hazards = [self.writer[r] for r in reads if r in self.writer]
        for w in writes:
            hazards += self.readers.get(w, [])
            if w in self.writer:
                hazards.append(self.writer[w])
        latest: dict[str, InstructionOp] = {}
        for h in hazards:
            q = h.queue()
            if q != op.queue() and (q not in latest or self.seq[h] > self.seq[latest[q]]):
                latest[q] = h
        deps = [latest[q].token for q in sorted(latest, key=QUEUE_INDEX.__getitem__)]
        op.operands = (*op.operands, *deps)
        self.seq[op] = len(self.seq)
        self.block.add_op(op)
        for r in reads:
            self.readers.setdefault(r, []).append(op)
        for w in writes:
            self.writer[w] = op
            self.readers[w] = []
        return op

    def load(self, dram: SSAValue, buffer: Buffer, slot: int, tile: Tile) -> None:
        self.emit(LoadOp(dram, buffer, slot, tile))

    def gemm(self, inp: int, wgt: int, acc: int, *, reset: bool) -> None:
        self.emit(GemmOp(inp, wgt, acc, reset=reset))

    def alu(self, opcode: AluOpcode, dst: int, *, src: int | None = None, imm: int | None = None):
        self.emit(AluOp(opcode, dst, src=src, imm=imm))

    def store(self, slot: int, dram: SSAValue, tile: Tile) -> None:
        self.emit(StoreOp(slot, dram, tile))


@dataclass(frozen=True)
class Epilogue:
    """What happens to each accumulator tile before it is stored, in this order:
    `bias` ("row": an (N,) vector added to every row; "full": an (M, N) matrix, loaded as
    the accumulator's initial value), then `alu` steps (`(opcode, immediate)`, e.g.
    `(AluOpcode.MAX, 0)` for relu), then the store (`out_bits` 8 keeps the low byte)."""

    bias: str | None = None
    alu: tuple[tuple[AluOpcode, int], ...] = ()
    out_bits: int = 32


@dataclass(frozen=True)
class GemmLayout:
    """Where the tiles of C[M, N] = A[M, K] x B[K, N] lie in DRAM: `a(mi, ki)`,
    `b(ki, ni)`, `c(mi, ni)` give the DMA tile of each 16 x 16 block; `bias(mi, ni)` that
    of the bias (Epilogue.bias)."""

    m_tiles: int
    k_tiles: int
    n_tiles: int
    a: Callable[[int, int], Tile]
    b: Callable[[int, int], Tile]
    c: Callable[[int, int], Tile]
    bias: Callable[[int, int], Tile] | None = None


def _extent(size: int, index: int) -> int:
    return min(TILE, size - TILE * index)


def _tiles(size: int) -> int:
    return -(-size // TILE)


def matmul_layout(m: int, k: int, n: int, bias: str | None = None) -> GemmLayout:
    """Row-major A (M x K), B (K x N), C (M x N); bias (N,) for "row", (M, N) for "full"."""

    def bias_tile(mi: int, ni: int) -> Tile:
        if bias == "row":
            return (ni * TILE, 0, TILE, _extent(n, ni))
        return (mi * TILE * n + ni * TILE, n, _extent(m, mi), _extent(n, ni))

    return GemmLayout(
        _tiles(m),
        _tiles(k),
        _tiles(n),
        a=lambda mi, ki: (mi * TILE * k + ki * TILE, k, _extent(m, mi), _extent(k, ki)),
        b=lambda ki, ni: (ki * TILE * n + ni * TILE, n, _extent(k, ki), _extent(n, ni)),
        c=lambda mi, ni: (mi * TILE * n + ni * TILE, n, _extent(m, mi), _extent(n, ni)),
        bias=bias_tile if bias else None,
    )


def conv2d_layout(
    x_shape: tuple[int, int, int, int], kernel: tuple[int, int], m: int, stride: int = 1
) -> GemmLayout:
    """A convolution as a GEMM over im2col tiles that the DMA gathers itself: input
    `x` N x H x W x C (NHWC, already padded), weights (KH * KW * C) x M (rows ordered
    kh, kw, c), output N x OH x OW x M, bias (M,). An M tile is 16 output pixels of one
    output row; a K tile one kernel tap x 16 channels (row stride `stride * C`)."""
    n, h, w, c = x_shape
    kh, kw = kernel
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    ow_t, c_t = _tiles(ow), _tiles(c)

    def pixel(mi: int) -> tuple[int, int, int]:  # (image, output row, output column)
        return mi // (oh * ow_t), (mi // ow_t) % oh, (mi % ow_t) * TILE

    def a(mi: int, ki: int) -> Tile:
        b, y, x = pixel(mi)
        tap, cc = divmod(ki, c_t)
        dy, dx = divmod(tap, kw)
        offset = ((b * h + y * stride + dy) * w + x * stride + dx) * c + cc * TILE
        return (offset, stride * c, min(TILE, ow - x), _extent(c, cc))

    def b_(ki: int, ni: int) -> Tile:
        tap, cc = divmod(ki, c_t)
        return ((tap * c + cc * TILE) * m + ni * TILE, m, _extent(c, cc), _extent(m, ni))

    def c_(mi: int, ni: int) -> Tile:
        b, y, x = pixel(mi)
        return (((b * oh + y) * ow + x) * m + ni * TILE, m, min(TILE, ow - x), _extent(m, ni))

    return GemmLayout(
        n * oh * ow_t,
        kh * kw * c_t,
        _tiles(m),
        a=a,
        b=b_,
        c=c_,
        bias=lambda mi, ni: (ni * TILE, 0, TILE, _extent(m, ni)),
    )


def emit_gemm(
    sb: StreamBuilder,
    layout: GemmLayout,
    a: SSAValue,
    b: SSAValue,
    c: SSAValue,
    epilogue: Epilogue = Epilogue(),
    bias: SSAValue | None = None,
) -> None:
    """The instruction stream of C = epilogue(A x B) (see the module docstring)."""
    kt = layout.k_tiles
    if kt > CAPACITY[Buffer.WGT]:
        raise ValueError(f"K has {kt} tiles: more than the weight buffer holds")
    # acc holds two sets of group accumulators (+ one set of row-bias tiles)
    group = min(layout.n_tiles, CAPACITY[Buffer.WGT] // kt, CAPACITY[Buffer.ACC] // 3)
    row_bias = epilogue.bias == "row"
    inp_slot = 0
    for g0 in range(0, layout.n_tiles, group):
        ns = range(g0, min(g0 + group, layout.n_tiles))
        for ki in range(kt):
            for j, ni in enumerate(ns):
                sb.load(b, Buffer.WGT, ki * group + j, layout.b(ki, ni))
        if row_bias:
            assert bias is not None and layout.bias is not None
            for j, ni in enumerate(ns):
                sb.load(bias, Buffer.ACC, 2 * group + j, layout.bias(0, ni))
        for mi in range(layout.m_tiles):
            accs = [(mi % 2) * group + j for j in range(len(ns))]
            if epilogue.bias == "full":
                assert bias is not None and layout.bias is not None
                for acc, ni in zip(accs, ns):
                    sb.load(bias, Buffer.ACC, acc, layout.bias(mi, ni))
            for ki in range(kt):
                sb.load(a, Buffer.INP, inp_slot, layout.a(mi, ki))
                for j, acc in enumerate(accs):
                    reset = ki == 0 and epilogue.bias != "full"
                    sb.gemm(inp_slot, ki * group + j, acc, reset=reset)
                inp_slot = (inp_slot + 1) % CAPACITY[Buffer.INP]
            for j, acc in enumerate(accs):
                if row_bias:
                    sb.alu(AluOpcode.ADD, acc, src=2 * group + j)
                for opcode, imm in epilogue.alu:
                    sb.alu(opcode, acc, imm=imm)
            for acc, ni in zip(accs, ns):
                sb.store(acc, c, layout.c(mi, ni))


def accel_function(
    name: str,
    input_types: list[TensorType],
    output_type: TensorType,
    emit: Callable[[StreamBuilder, tuple[SSAValue, ...]], None],
    *,
    private: bool = False,
) -> func.FuncOp:
    """`func.func @name(inputs) -> output` whose body is one `hw.accel.program`;
    `emit(builder, dram_buffers)` writes its stream (DRAM buffers: inputs, then output)."""
    fn = func.FuncOp(name, (input_types, [output_type]), visibility="private" if private else None)
    dram = Block(
        arg_types=[MemRefType(t.element_type, t.get_shape()) for t in (*input_types, output_type)]
    )
    program = ProgramOp.build(
        operands=[list(fn.body.block.args)], result_types=[[output_type]], regions=[Region(dram)]
    )
    fn.body.block.add_ops([program, func.ReturnOp(program.outputs[0])])
    emit(StreamBuilder(dram), dram.args)
    return fn


def program_of(fn: func.FuncOp) -> ProgramOp:
    """The `hw.accel.program` of an `accel_function`."""
    (program,) = [op for op in fn.body.block.ops if isinstance(op, ProgramOp)]
    return program


def _tensor(shape: tuple[int, ...], bits: int) -> TensorType:
    return TensorType(i8 if bits == 8 else i32, shape)


def lower_matmul(
    m: int,
    k: int,
    n: int,
    epilogue: Epilogue = Epilogue(),
    name: str = "matmul",
    *,
    bias_shape: tuple[int, ...] | None = None,
    private: bool = False,
) -> func.FuncOp:
    """`@name(a: i8[M, K], b: i8[K, N][, bias: i32]) -> C[M, N]` (i32, or i8 by
    `epilogue.out_bits`) computing epilogue(A x B) on the accelerator; the bias is (N,)
    (or `bias_shape`, e.g. (1, N)) for "row", (M, N) for "full"."""
    types = [_tensor((m, k), 8), _tensor((k, n), 8)]
    if epilogue.bias:
        types.append(_tensor(bias_shape or ((n,) if epilogue.bias == "row" else (m, n)), 32))
    layout = matmul_layout(m, k, n, epilogue.bias)

    def emit(sb: StreamBuilder, dram: tuple[SSAValue, ...]) -> None:
        bias = dram[2] if epilogue.bias else None
        emit_gemm(sb, layout, dram[0], dram[1], dram[-1], epilogue, bias)

    out = _tensor((m, n), epilogue.out_bits)
    return accel_function(name, types, out, emit, private=private)


def lower_conv2d(
    x_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    m: int,
    *,
    stride: int = 1,
    shift: int = 0,
    relu: bool = False,
    name: str = "conv2d",
) -> func.FuncOp:
    """A quantized conv layer y = clip((conv(x, w) + bias) >> shift, lo, 127) (lo = 0
    with `relu`, else -128): `@name(x: i8[N, H, W, C] (NHWC, padded), w: i8[KH * KW * C,
    M], bias: i32[M]) -> i8[N, OH, OW, M]`."""
    n, h, w, c = x_shape
    kh, kw = kernel
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    types = [_tensor(x_shape, 8), _tensor((kh * kw * c, m), 8), _tensor((m,), 32)]
    steps = ((AluOpcode.SHR, shift), (AluOpcode.MAX, 0 if relu else -128), (AluOpcode.MIN, 127))
    epilogue = Epilogue(bias="row", alu=steps, out_bits=8)
    layout = conv2d_layout(x_shape, kernel, m, stride)

    def emit(sb: StreamBuilder, dram: tuple[SSAValue, ...]) -> None:
        x, wgt, bias, y = dram
        emit_gemm(sb, layout, x, wgt, y, epilogue, bias)

    return accel_function(name, types, _tensor((n, oh, ow, m), 8), emit)
