"""RNN, GRU and LSTM (opset 7 and later), unrolled over their static sequence length.

Shapes are static, so a recurrence over `seq` steps is `seq` copies of its step, each
step graph ops on `[batch, hidden]` tensors (ONNX's equations, gate orders `i o f c` for
LSTM and `z r h` for GRU):

    X_t = X[t]                                     [batch, input]
    g   = X_t @ W^T + H @ R^T + Wb + Rb            [batch, gates * hidden], split per gate
    H'  = ... (activations f, g, h; peepholes; clip; GRU's linear_before_reset)
    H   = where(t < sequence_lens, H', H)          (with sequence_lens)

forward, reverse or both directions; `Y` is every step's H (0 past a sequence's length)
in time order, `Y_h` / `Y_c` the last; `layout = 1` transposes X and the outputs. W, R,
B, P, the initial states and sequence_lens may be graph inputs or constants (constant
weights fold at import). A long sequence makes a large graph: one step per time step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.types import is_float, numpy_dtype
from mlc.parser.onnx.node import NodeContext, converter

__all__ = ["gru", "lstm", "rnn"]

#: the most time steps unrolled (each is a handful of graph ops per direction)
MAX_STEPS = 4096


@dataclass
class _Step:
    """Graph-op builders on one node (every op emitted through `node`)."""

    node: NodeContext

    def emit(self, op: object) -> SSAValue:
        return self.node.emit(op).output  # type: ignore[arg-type, attr-defined]

    def slice(self, x: SSAValue, axis: int, start: int, stop: int) -> SSAValue:
        shape = list(x.type.get_shape())  # type: ignore[attr-defined]
        starts, ends = [0] * len(shape), list(shape)
        starts[axis], ends[axis] = start, stop
        return self.emit(sh.SliceOp.create([x], starts=starts, ends=ends, steps=[1] * len(shape)))

    def reshape(self, x: SSAValue, shape: Sequence[int]) -> SSAValue:
        return self.emit(sh.ReshapeOp.to(x, list(shape)))

    def transpose(self, x: SSAValue, perm: Sequence[int]) -> SSAValue:
        return self.emit(sh.TransposeOp.create([x], perm=list(perm)))

    def concat(self, xs: Sequence[SSAValue], axis: int) -> SSAValue:
        return xs[0] if len(xs) == 1 else self.emit(sh.ConcatOp.create(list(xs), axis=axis))

    def binary(self, cls: type, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(cls.create([a, b]))

    def matmul(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(nn.MatMulOp.create([a, b]))

    def where(self, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(ew.WhereOp.create([cond, a, b]))

    def constant(self, array: np.ndarray) -> SSAValue:
        return self.node.emit_constant(array)


Activation = Callable[[_Step, SSAValue, float | None, float | None], SSAValue]


def _scaled(step: _Step, x: SSAValue, factor: float) -> SSAValue:
    dtype = numpy_dtype(x.type.element_type)  # type: ignore[attr-defined]
    return step.binary(ew.MulOp, x, step.constant(np.array(factor, dtype)))


def _affine(step: _Step, x: SSAValue, a: float | None, b: float | None) -> SSAValue:
    dtype = numpy_dtype(x.type.element_type)  # type: ignore[attr-defined]
    shifted = step.constant(np.array(1.0 if b is None else b, dtype))
    return step.binary(ew.AddOp, _scaled(step, x, 1.0 if a is None else a), shifted)


#: activation name -> builder(step, x, alpha, beta); alpha / beta None: the op's default
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": lambda s, x, a, b: s.emit(ew.SigmoidOp.create([x])),
    "tanh": lambda s, x, a, b: s.emit(ew.TanhOp.create([x])),
    "relu": lambda s, x, a, b: s.emit(ew.ReluOp.create([x])),
    "softsign": lambda s, x, a, b: s.emit(ew.SoftsignOp.create([x])),
    "softplus": lambda s, x, a, b: s.emit(ew.SoftplusOp.create([x])),
    "leakyrelu": lambda s, x, a, b: s.emit(
        ew.LeakyReluOp.create([x], alpha=0.01 if a is None else a)
    ),
    "thresholdedrelu": lambda s, x, a, b: s.emit(
        ew.ThresholdedReluOp.create([x], alpha=1.0 if a is None else a)
    ),
    "elu": lambda s, x, a, b: s.emit(ew.EluOp.create([x], alpha=1.0 if a is None else a)),
    "hardsigmoid": lambda s, x, a, b: s.emit(
        ew.HardSigmoidOp.create([x], alpha=0.2 if a is None else a, beta=0.5 if b is None else b)
    ),
    "affine": _affine,
    "scaledtanh": lambda s, x, a, b: _scaled(
        s,
        s.emit(ew.TanhOp.create([_scaled(s, x, 1.0 if b is None else b)])),
        1.0 if a is None else a,
    ),
}


_TAKES_ALPHA = frozenset(
    {"leakyrelu", "thresholdedrelu", "elu", "hardsigmoid", "affine", "scaledtanh"}
)
_TAKES_BETA = frozenset({"hardsigmoid", "affine", "scaledtanh"})


@dataclass
class _Recurrence:
    """What every step of one node shares: the node, its sizes and options."""

    node: NodeContext
    kind: str  # "RNN", "GRU" or "LSTM"
    gates: int
    defaults: tuple[str, ...]

    def __post_init__(self) -> None:
        node, step = self.node, _Step(self.node)
        self.step = step
        if not is_float(node.input_type(0).element_type):
            node.unsupported(f"{self.kind} of a non-float sequence")
        self.hidden = node.int("hidden_size")
        self.layout = node.int("layout", 0)
        direction = node.string("direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            node.unsupported(f"direction={direction!r}")
        self.directions = ["forward", "reverse"] if direction == "bidirectional" else [direction]
        x = node.input(0)
        self.x = step.transpose(x, [1, 0, 2]) if self.layout else x  # [seq, batch, input]
        self.seq, self.batch, self.features = self.x.type.get_shape()  # type: ignore[attr-defined]
        if self.seq > MAX_STEPS:
            node.unsupported(f"{self.seq} time steps (at most {MAX_STEPS} are unrolled)")
        names = [n.lower() for n in node.attr("activations", []) or []]
        names = [n.decode() if isinstance(n, bytes) else n for n in names]
        expected = len(self.defaults) * len(self.directions)
        if names and len(names) != expected:
            node.unsupported(f"{len(names)} activations for {expected} (per direction)")
        self.activations = names or [d.lower() for d in self.defaults] * len(self.directions)
        for name in self.activations:
            if name not in ACTIVATIONS:
                node.unsupported(f"activation {name!r}")
        # alpha / beta are consumed in order by the activations that take them (as
        # onnxruntime reads them); past the lists' ends, each op's default
        alphas = iter(float(a) for a in node.attr("activation_alpha", []) or [])
        betas = iter(float(b) for b in node.attr("activation_beta", []) or [])
        self.params = [
            (
                next(alphas, None) if name in _TAKES_ALPHA else None,
                next(betas, None) if name in _TAKES_BETA else None,
            )
            for name in self.activations
        ]
        self.clip = node.attr("clip")
        self.dtype = numpy_dtype(node.input_type(0).element_type)

    def activation(self, index: int, x: SSAValue) -> SSAValue:
        alpha, beta = self.params[index]
        return ACTIVATIONS[self.activations[index]](self.step, x, alpha, beta)

    def clipped(self, x: SSAValue) -> SSAValue:
        if self.clip is None:
            return x
        c = float(self.clip)
        return self.step.emit(ew.ClipOp.create([x], min=-c, max=c))

    def weight(self, i: int, d: int, rows: int) -> SSAValue:
        """Input `i` (W or R) of direction `d`, transposed: [columns, rows]."""
        s = self.step
        w = s.slice(self.node.input(i), 0, d, d + 1)
        cols = w.type.get_shape()[2]  # type: ignore[attr-defined]
        return s.transpose(s.reshape(w, [rows, cols]), [1, 0])

    def per_direction(self, i: int, d: int, width: int) -> SSAValue | None:
        """Optional input `i` ([dirs, width]: B or P) of direction `d` as [width]."""
        if not self.node.has_input(i):
            return None
        return self.step.reshape(self.step.slice(self.node.input(i), 0, d, d + 1), [width])

    def initial(self, i: int, d: int) -> SSAValue:
        """The initial state (input `i`) of direction `d`, else zeros: [batch, hidden]."""
        s = self.step
        if not self.node.has_input(i):
            return s.constant(np.zeros((self.batch, self.hidden), self.dtype))
        axis = 1 if self.layout else 0
        return s.reshape(s.slice(self.node.input(i), axis, d, d + 1), [self.batch, self.hidden])

    def valid(self, t: int) -> SSAValue | None:
        """[batch, 1] booleans: step `t` is inside each sequence (None: no sequence_lens)."""
        if not self.node.has_input(4):
            return None
        s = self.step
        lens = self.node.input(4)
        t_const = s.constant(np.array(t, numpy_dtype(lens.type.element_type)))  # type: ignore[attr-defined]
        return s.reshape(s.binary(ew.LessOp, t_const, lens), [self.batch, 1])

    def gate(self, g: SSAValue, k: int) -> SSAValue:
        return self.step.slice(g, 1, k * self.hidden, (k + 1) * self.hidden)

    def run(
        self, cell: Callable[[int, int, SSAValue, list[SSAValue]], list[SSAValue]], states: int
    ) -> list[SSAValue | None]:
        """Unroll `cell(d, t, x_t, state) -> new state` (state[0] is H) over time in
        every direction; returns Y, Y_h and (with two states) Y_c."""
        s, hid, batch = self.step, self.hidden, self.batch
        ys, finals = [], [[] for _ in range(states)]
        valid = [self.valid(t) for t in range(self.seq)]  # shared by the directions
        zero = s.constant(np.zeros((1, 1), self.dtype))
        for d, direction in enumerate(self.directions):
            state = [self.initial(5 + k, d) for k in range(states)]
            outputs: dict[int, SSAValue] = {}
            order = range(self.seq) if direction == "forward" else range(self.seq - 1, -1, -1)
            for t in order:
                x_t = s.reshape(s.slice(self.x, 0, t, t + 1), [batch, self.features])
                new = cell(d, t, x_t, state)
                if valid[t] is not None:
                    outputs[t] = s.where(valid[t], new[0], zero)
                    state = [s.where(valid[t], n, o) for n, o in zip(new, state)]
                else:
                    outputs[t] = new[0]
                    state = new
            steps = [s.reshape(outputs[t], [1, 1, batch, hid]) for t in range(self.seq)]
            ys.append(s.concat(steps, 0))
            for k in range(states):
                finals[k].append(s.reshape(state[k], [1, batch, hid]))
        y = s.concat(ys, 1)  # [seq, dirs, batch, hidden]
        lasts = [s.concat(f, 0) for f in finals]  # [dirs, batch, hidden]
        if self.layout:
            y = s.transpose(y, [2, 0, 1, 3])
            lasts = [s.transpose(v, [1, 0, 2]) for v in lasts]
        return [y, *lasts]


def _inputs_projection(
    r: _Recurrence, d: int
) -> tuple[SSAValue, SSAValue, SSAValue | None, SSAValue | None]:
    """W^T, R^T, Wb and Rb ([gates * hidden] each, None without B) of direction `d`."""
    rows = r.gates * r.hidden
    w, rr = r.weight(1, d, rows), r.weight(2, d, rows)
    b = r.per_direction(3, d, 2 * rows)
    if b is None:
        return w, rr, None, None
    return w, rr, r.step.slice(b, 0, 0, rows), r.step.slice(b, 0, rows, 2 * rows)


def _summed_projection(r: _Recurrence, d: int) -> tuple[SSAValue, SSAValue, SSAValue | None]:
    """W^T, R^T and Wb + Rb (None without B) of direction `d`: RNN's and LSTM's."""
    w, rr, wb, rb = _inputs_projection(r, d)
    bias = r.step.binary(ew.AddOp, wb, rb) if wb is not None and rb is not None else None
    return w, rr, bias


def _check_outputs(node: NodeContext, count: int) -> None:
    if len(node.node.output) > count:
        node.unsupported(f"{len(node.node.output)} outputs (at most {count})")


@converter("RNN")
def rnn(node: NodeContext) -> list[SSAValue | None]:
    _check_outputs(node, 2)
    r = _Recurrence(node, "RNN", 1, ("Tanh",))
    s = r.step
    projections = [_summed_projection(r, d) for d in range(len(r.directions))]

    def cell(d: int, t: int, x_t: SSAValue, state: list[SSAValue]) -> list[SSAValue]:
        w, rr, bias = projections[d]
        pre = s.binary(ew.AddOp, s.matmul(x_t, w), s.matmul(state[0], rr))
        if bias is not None:
            pre = s.binary(ew.AddOp, pre, bias)
        return [r.activation(d, r.clipped(pre))]

    return r.run(cell, 1)


@converter("GRU")
def gru(node: NodeContext) -> list[SSAValue | None]:
    _check_outputs(node, 2)
    r = _Recurrence(node, "GRU", 3, ("Sigmoid", "Tanh"))
    s = r.step
    linear_before_reset = node.int("linear_before_reset", 0) != 0
    hid = r.hidden

    def split(d: int) -> tuple[SSAValue, ...]:
        """W^T, Wb, R^T and Rb of direction `d`, R and Rb split into (z, r) and h parts."""
        w, rr, wb, rb = _inputs_projection(r, d)
        r_zr, r_h = s.slice(rr, 1, 0, 2 * hid), s.slice(rr, 1, 2 * hid, 3 * hid)
        if rb is None:
            return w, wb, r_zr, r_h, None, None
        return w, wb, r_zr, r_h, s.slice(rb, 0, 0, 2 * hid), s.slice(rb, 0, 2 * hid, 3 * hid)

    projections = [split(d) for d in range(len(r.directions))]
    one = s.constant(np.ones((1, 1), r.dtype))

    def cell(d: int, t: int, x_t: SSAValue, state: list[SSAValue]) -> list[SSAValue]:
        w, wb, r_zr, rh, rb_zr, rbh = projections[d]
        h = state[0]
        xw = s.matmul(x_t, w)
        if wb is not None:
            xw = s.binary(ew.AddOp, xw, wb)
        hr_z_r = s.matmul(h, r_zr)
        if rb_zr is not None:
            hr_z_r = s.binary(ew.AddOp, hr_z_r, rb_zr)
        z = r.activation(2 * d, r.clipped(s.binary(ew.AddOp, r.gate(xw, 0), r.gate(hr_z_r, 0))))
        reset = r.activation(2 * d, r.clipped(s.binary(ew.AddOp, r.gate(xw, 1), r.gate(hr_z_r, 1))))
        if linear_before_reset:
            hh = s.matmul(h, rh)
            if rbh is not None:
                hh = s.binary(ew.AddOp, hh, rbh)
            hh = s.binary(ew.MulOp, reset, hh)
        else:
            hh = s.matmul(s.binary(ew.MulOp, reset, h), rh)
            if rbh is not None:
                hh = s.binary(ew.AddOp, hh, rbh)
        candidate = r.activation(2 * d + 1, r.clipped(s.binary(ew.AddOp, r.gate(xw, 2), hh)))
        keep = s.binary(ew.MulOp, z, h)
        return [s.binary(ew.AddOp, s.binary(ew.MulOp, s.binary(ew.SubOp, one, z), candidate), keep)]

    return r.run(cell, 1)


@converter("LSTM")
def lstm(node: NodeContext) -> list[SSAValue | None]:
    _check_outputs(node, 3)
    r = _Recurrence(node, "LSTM", 4, ("Sigmoid", "Tanh", "Tanh"))
    s = r.step
    input_forget = node.int("input_forget", 0) != 0
    projections = [_summed_projection(r, d) for d in range(len(r.directions))]

    def peephole_weights(d: int) -> list[SSAValue] | None:
        """P of direction `d` split into its i, o and f weights (None without P)."""
        p = r.per_direction(7, d, 3 * r.hidden)
        if p is None:
            return None
        return [s.slice(p, 0, k * r.hidden, (k + 1) * r.hidden) for k in range(3)]

    peepholes = [peephole_weights(d) for d in range(len(r.directions))]
    one = s.constant(np.ones((1, 1), r.dtype))

    def cell(d: int, t: int, x_t: SSAValue, state: list[SSAValue]) -> list[SSAValue]:
        w, rr, bias = projections[d]
        h, c = state
        g = s.binary(ew.AddOp, s.matmul(x_t, w), s.matmul(h, rr))
        if bias is not None:
            g = s.binary(ew.AddOp, g, bias)
        p = peepholes[d]

        def peep(x: SSAValue, k: int, cell_state: SSAValue) -> SSAValue:
            if p is None:
                return x
            return s.binary(ew.AddOp, x, s.binary(ew.MulOp, p[k], cell_state))

        f_, g_, h_ = 3 * d, 3 * d + 1, 3 * d + 2
        i = r.activation(f_, r.clipped(peep(r.gate(g, 0), 0, c)))
        if input_forget:
            f = s.binary(ew.SubOp, one, i)
        else:
            f = r.activation(f_, r.clipped(peep(r.gate(g, 2), 2, c)))
        cand = r.activation(g_, r.clipped(r.gate(g, 3)))
        c_new = s.binary(ew.AddOp, s.binary(ew.MulOp, f, c), s.binary(ew.MulOp, i, cand))
        o = r.activation(f_, r.clipped(peep(r.gate(g, 1), 1, c_new)))
        return [s.binary(ew.MulOp, o, r.activation(h_, c_new)), c_new]

    return r.run(cell, 2)
