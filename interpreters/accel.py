"""The simulator of the `hw.accel` machine: reference semantics and a cycle model.

`simulate(program, inputs)` executes an `hw.accel.program` on numpy arrays and returns
its outputs and a `Report` (cycles, per-queue busy cycles, GEMM-unit utilisation).
`AccelFunctions` registers it with xDSL's interpreter, so `mlc.interpret` runs modules
that contain accelerator programs.

Semantics. Instructions execute one after another in stream order; the result equals
that of any concurrent execution the tokens allow, because the simulator checks that
every data hazard between queues is ordered by tokens (RAW, WAR and WAW on each on-chip
slot and each DRAM buffer; the happens-before relation is tracked with one vector clock
per instruction over the three queues). An unordered hazard, a read of a slot no
instruction wrote, or a tile that leaves DRAM raises `SimulationError`.

Timing (`CostModel`, all in cycles). Each queue runs its instructions in order, one at a
time; an instruction starts when the previous one of its queue and every instruction in
its `after(...)` list have finished:

    DMA load / store   dma_latency + ceil(bytes / dma_bytes_per_cycle)   (bytes = rows*cols*elt)
    GEMM               gemm_cycles  (a 16x16x16 tile; one 1x16 x 16x16 product per cycle)
    ALU                alu_cycles   (one 16-element row per cycle)

The program takes as long as its last instruction's end; GEMM utilisation is the time the
GEMM unit is busy (gemm instructions x gemm_cycles) divided by that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import MemRefType
from xdsl.interpreter import Interpreter, InterpreterFunctions, PythonValues, impl, register_impls
from xdsl.ir import SSAValue

from mlc.dialects.graph.types import numpy_dtype
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
    Resource,
    StoreOp,
)

QUEUES = ("load", "compute", "store")


class SimulationError(RuntimeError):
    """A program the machine cannot run correctly (unordered hazard, uninitialised read)."""


@dataclass(frozen=True)
class CostModel:
    """The cycle costs of the simulated machine (see the module docstring)."""

    dma_latency: int = 16
    dma_bytes_per_cycle: int = 16
    gemm_cycles: int = 16
    alu_cycles: int = 16

    def cycles(self, op: InstructionOp) -> int:
        if isinstance(op, LoadOp | StoreOp):
            _, _, rows, cols = op.tile()
            ty = op.dram.type
            assert isinstance(ty, MemRefType)
            nbytes = rows * cols * numpy_dtype(ty.element_type).itemsize
            return self.dma_latency + math.ceil(nbytes / self.dma_bytes_per_cycle)
        if isinstance(op, GemmOp):
            return self.gemm_cycles
        return self.alu_cycles


@dataclass
class Report:
    """What one run cost: total cycles, busy cycles per queue and per unit, op counts."""

    cycles: int = 0
    queue_busy: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUEUES, 0))
    gemm_busy: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def utilization(self) -> float:
        """GEMM-unit busy cycles / total cycles."""
        return self.gemm_busy / self.cycles if self.cycles else 0.0

    def __str__(self) -> str:
        counts = ", ".join(f"{k.removeprefix('hw.accel.')} {v}" for k, v in self.counts.items())
        return (
            f"{self.cycles} cycles, GEMM utilisation {self.utilization:.1%} "
            f"({self.gemm_busy} busy); queues busy {self.queue_busy}; {counts}"
        )


Event = tuple[int, int]  # (queue index, sequence number in the queue)


def _tile_index(tile: tuple[int, int, int, int]) -> np.ndarray:
    offset, stride, rows, cols = tile
    return offset + stride * np.arange(rows)[:, None] + np.arange(cols)[None, :]


class _Machine:
    """On-chip state, DRAM and the hazard / timing bookkeeping of one run."""

    def __init__(self, program: ProgramOp, inputs: Sequence[np.ndarray], cost: CostModel):
        args = program.body.block.args
        n_in = len(program.inputs)
        if len(inputs) != n_in:
            raise SimulationError(f"the program takes {n_in} inputs, got {len(inputs)}")
        self.dram: dict[SSAValue, np.ndarray] = {}
        for i, arg in enumerate(args):
            ty = arg.type
            assert isinstance(ty, MemRefType)
            dtype = numpy_dtype(ty.element_type)
            if i < n_in:
                data = np.asarray(inputs[i])
                if data.shape != tuple(ty.get_shape()):
                    raise SimulationError(f"input #{i} must have shape {ty.get_shape()}")
                self.dram[arg] = data.astype(dtype).reshape(-1).copy()
            else:
                self.dram[arg] = np.zeros(math.prod(ty.get_shape()), dtype)
        dtypes = {Buffer.INP: np.int8, Buffer.WGT: np.int8, Buffer.ACC: np.int32}
        self.sram = {b.value: np.zeros((CAPACITY[b], TILE, TILE), dtypes[b]) for b in Buffer}
        self.cost = cost
        self.report = Report()
        self.seq = [0, 0, 0]
        self.queue_clock: list[tuple[tuple[int, ...], int]] = [((0, 0, 0), 0)] * 3
        self.token: dict[SSAValue, tuple[tuple[int, ...], int]] = {}
        self.writer: dict[Resource, Event] = {}
        self.readers: dict[Resource, list[Event]] = {}

    def _check_ordered(
        self, op: InstructionOp, key: Resource, event: Event, clock: tuple[int, ...]
    ) -> None:
        q, s = event
        if clock[q] < s:
            raise SimulationError(
                f"{op.name}: access to {key[0]}[{key[1]}] is not ordered after instruction "
                f"#{s} of the {QUEUES[q]} queue (add a token dependency)"
            )

    def step(self, op: InstructionOp) -> None:
        q = QUEUES.index(op.queue())
        self.seq[q] += 1
        clock, start = self.queue_clock[q]
        vc = list(clock)
        for dep in op.deps:
            dep_clock, dep_end = self.token[dep]
            vc = [max(a, b) for a, b in zip(vc, dep_clock)]
            start = max(start, dep_end)
        vc[q] = self.seq[q]
        clock = tuple(vc)
        reads, writes = op.accesses()
        for key in reads:
            if key in self.writer:
                self._check_ordered(op, key, self.writer[key], clock)
            elif key[0] != "dram":
                raise SimulationError(f"{op.name}: reads {key[0]}[{key[1]}] before any write")
        for key in writes:
            earlier = [self.writer[key]] if key in self.writer else []
            for event in [*earlier, *self.readers.get(key, [])]:
                self._check_ordered(op, key, event, clock)
        for key in reads:
            self.readers.setdefault(key, []).append((q, self.seq[q]))
        for key in writes:
            self.writer[key] = (q, self.seq[q])
            self.readers[key] = []
        self.execute(op)
        duration = self.cost.cycles(op)
        end = start + duration
        self.queue_clock[q] = (clock, end)
        self.token[op.token] = (clock, end)
        rep = self.report
        rep.cycles = max(rep.cycles, end)
        rep.queue_busy[QUEUES[q]] += duration
        rep.counts[op.name] = rep.counts.get(op.name, 0) + 1
        if isinstance(op, GemmOp):
            rep.gemm_busy += duration

    def execute(self, op: InstructionOp) -> None:
        acc = self.sram["acc"]
        if isinstance(op, LoadOp):
            _, _, rows, cols = tile = op.tile()
            dst = self.sram[op.buffer.data.value][op.slot.value.data]
            dst[...] = 0
            dst[:rows, :cols] = self.dram[op.dram][_tile_index(tile)]
        elif isinstance(op, StoreOp):
            _, _, rows, cols = tile = op.tile()
            data = self.dram[op.dram]
            data[_tile_index(tile)] = acc[op.slot.value.data][:rows, :cols].astype(data.dtype)
        elif isinstance(op, GemmOp):
            a = self.sram["inp"][op.inp.value.data].astype(np.int32)
            b = self.sram["wgt"][op.wgt.value.data].astype(np.int32)
            slot = op.acc.value.data
            acc[slot] = a @ b if op.reset else acc[slot] + a @ b
        else:
            assert isinstance(op, AluOp)
            x = acc[op.dst.value.data]
            src, imm = op.src, op.imm
            y = acc[src.value.data] if src is not None else np.int32(imm.value.data if imm else 0)
            fn = {
                AluOpcode.ADD: np.add,
                AluOpcode.MAX: np.maximum,
                AluOpcode.MIN: np.minimum,
                AluOpcode.SHR: np.right_shift,
            }[op.opcode.data]
            x[...] = fn(x, y, dtype=np.int32)


def simulate(
    program: ProgramOp, inputs: Sequence[np.ndarray], cost: CostModel | None = None
) -> tuple[list[np.ndarray], Report]:
    """Run `program` on `inputs` (one array per operand); its outputs and the `Report`."""
    machine = _Machine(program, inputs, cost or CostModel())
    for op in program.body.block.ops:
        assert isinstance(op, InstructionOp)
        machine.step(op)
    args = program.body.block.args[len(program.inputs) :]
    outputs = []
    for arg in args:
        ty = arg.type
        assert isinstance(ty, MemRefType)
        outputs.append(machine.dram[arg].reshape(tuple(ty.get_shape())))
    return outputs, machine.report


@register_impls
class AccelFunctions(InterpreterFunctions):
    """`hw.accel.program` for xDSL's interpreter (tensor operands and results)."""

    @impl(ProgramOp)
    def run_program(
        self, interpreter: Interpreter, op: ProgramOp, args: PythonValues
    ) -> PythonValues:
        outputs, _ = simulate(op, [np.asarray(a) for a in args])
        return tuple(outputs)
