"""The small models the values fuzzer runs, each with a way to draw nasty inputs for it.

A template draws a model (op, dtypes, shapes, attributes) and returns it with one input
description per graph input: `(dtype, shape, index_bound)`, where `index_bound` is the
size of the axis an index input selects from (None for data inputs).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlc.testing.fuzz.arrays import random_array

_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


@dataclass
class InputSpec:
    dtype: np.dtype
    shape: tuple[int, ...]
    index_bound: int | None = None
    #: floats cast to this integer type: NaN, infinities and values out of its range are
    #: not drawn (their conversion is undefined in ONNX, and compiled code and the
    #: reference legitimately differ)
    cast_to: np.dtype | None = None
    #: finite values are clipped to this magnitude (products that cannot overflow: compiled
    #: code contracts `a * b + c` into an FMA, which keeps `-inf` where the reference's
    #: overflowing product makes `inf - inf = NaN`); NaN and infinities are still drawn
    max_finite: float | None = None


Template = Callable[[random.Random], tuple[onnx.ModelProto, list[InputSpec]]]


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, np.dtype, tuple[int, ...]]],
    output: tuple[str, np.dtype, tuple[int, ...]],
    initializers: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "values",
        [helper.make_tensor_value_info(n, _ONNX[np.dtype(t)], list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(output[0], _ONNX[np.dtype(output[1])], list(output[2]))],
        [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _shape(rng: random.Random, rank: int) -> tuple[int, ...]:
    return tuple(rng.randint(1, 5) for _ in range(rank))


def _nprng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(64))


def gather(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    rank = rng.randint(1, 3)
    shape = _shape(rng, rank)
    axis = rng.randrange(-rank, rank)
    idx_shape = _shape(rng, rng.randint(0, 2))
    idx_type = np.dtype(rng.choice([np.int64, np.int32]))
    dtype = np.dtype(rng.choice([np.float32, np.int64, np.uint8]))
    out = shape[: axis % rank] + idx_shape + shape[axis % rank + 1 :]
    table_is_input = rng.random() < 0.5
    node = helper.make_node("Gather", ["table", "idx"], ["y"], axis=axis)
    inputs = [("idx", idx_type, idx_shape)]
    specs = [InputSpec(idx_type, idx_shape, shape[axis])]
    inits = {}
    if table_is_input:
        inputs.insert(0, ("table", dtype, shape))
        specs.insert(0, InputSpec(dtype, shape))
    else:
        inits["table"] = random_array(_nprng(rng), shape, dtype)
    return _model([node], inputs, ("y", dtype, out), inits), specs


def gather_elements(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    rank = rng.randint(1, 3)
    shape = _shape(rng, rank)
    axis = rng.randrange(-rank, rank)
    idx_shape = tuple(
        rng.randint(1, d) if i != axis % rank else rng.randint(1, 5) for i, d in enumerate(shape)
    )
    idx_type = np.dtype(rng.choice([np.int64, np.int32]))
    node = helper.make_node("GatherElements", ["data", "idx"], ["y"], axis=axis)
    f32 = np.dtype(np.float32)
    model = _model(
        [node], [("data", f32, shape), ("idx", idx_type, idx_shape)], ("y", f32, idx_shape)
    )
    return model, [InputSpec(f32, shape), InputSpec(idx_type, idx_shape, shape[axis])]


_FLOAT_BINARY = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu", "Sum", "Mean"]
_FLOAT_UNARY = [
    "Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Sin", "Cos",
    "Softplus", "Softsign", "HardSwish", "Floor", "Ceil", "Round", "Neg", "Abs", "Sign",
]  # fmt: skip
_COMPARE = ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"]


def _broadcast_pair(rng: random.Random) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = _shape(rng, rng.randint(1, 3))
    other = list(shape)
    if rng.random() < 0.5:
        other[rng.randrange(len(other))] = 1
    return shape, tuple(other[rng.randrange(len(other)) :])


def float_binary(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    op = rng.choice(_FLOAT_BINARY + _COMPARE)
    dtype = np.dtype(rng.choice([np.float32, np.float32, np.float64, np.float16]))
    a, b = _broadcast_pair(rng)
    out_type = np.dtype(bool) if op in _COMPARE else dtype
    model = _model(
        [helper.make_node(op, ["a", "b"], ["y"])],
        [("a", dtype, a), ("b", dtype, b)],
        ("y", out_type, a),
    )
    return model, [InputSpec(dtype, a), InputSpec(dtype, b)]


def float_unary(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    op = rng.choice(_FLOAT_UNARY)
    dtype = np.dtype(rng.choice([np.float32, np.float32, np.float64, np.float16]))
    shape = _shape(rng, rng.randint(1, 3))
    model = _model([helper.make_node(op, ["x"], ["y"])], [("x", dtype, shape)], ("y", dtype, shape))
    return model, [InputSpec(dtype, shape)]


def int_binary(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    op = rng.choice(["Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", *_COMPARE])
    dtype = np.dtype(rng.choice([np.int32, np.int64, np.int8, np.uint8]))
    a, b = _broadcast_pair(rng)
    attrs = {"fmod": rng.randint(0, 1)} if op == "Mod" else {}
    out_type = np.dtype(bool) if op in _COMPARE else dtype
    node = helper.make_node(op, ["a", "b"], ["y"], **attrs)
    model = _model([node], [("a", dtype, a), ("b", dtype, b)], ("y", out_type, a))
    return model, [InputSpec(dtype, a), InputSpec(dtype, b)]


def reduce(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    op = rng.choice(
        ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd", "ArgMax", "ArgMin"]
    )
    shape = _shape(rng, rng.randint(1, 3))
    axis = rng.randrange(len(shape))
    keep = rng.randint(0, 1)
    out = (
        tuple(1 if i == axis else d for i, d in enumerate(shape))
        if keep
        else tuple(d for i, d in enumerate(shape) if i != axis)
    )
    f32 = np.dtype(np.float32)
    if op.startswith("Arg"):
        node = helper.make_node(op, ["x"], ["y"], axis=axis, keepdims=keep)
        return _model([node], [("x", f32, shape)], ("y", np.dtype(np.int64), out)), [
            InputSpec(f32, shape)
        ]
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keep)
    model = _model(
        [node], [("x", f32, shape)], ("y", f32, out), {"axes": np.array([axis], np.int64)}
    )
    if op != "ReduceSum":  # axes became an input in opset 18 (13 for ReduceSum)
        model.opset_import[0].version = 18
    return model, [InputSpec(f32, shape)]


def cast(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    types = [np.float32, np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8, np.bool_]
    src, dst = np.dtype(rng.choice(types)), np.dtype(rng.choice(types))
    shape = _shape(rng, rng.randint(1, 2))
    node = helper.make_node("Cast", ["x"], ["y"], to=_ONNX[dst])
    to_int = src.kind == "f" and dst.kind in "iu"
    spec = InputSpec(src, shape, cast_to=dst if to_int else None)
    return _model([node], [("x", src, shape)], ("y", dst, shape)), [spec]


def clip_where(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    f32 = np.dtype(np.float32)
    shape = _shape(rng, rng.randint(1, 3))
    bounds = rng.choice([(-1.0, 1.0), (0.0, 6.0), (float("nan"), 1.0), (1.0, -1.0)])
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
        helper.make_node("Greater", ["x", "y"], ["g"]),
        helper.make_node("Where", ["g", "c", "y"], ["z"]),
    ]
    inits = {"lo": np.array(bounds[0], f32), "hi": np.array(bounds[1], f32)}
    model = _model(nodes, [("x", f32, shape), ("y", f32, shape)], ("z", f32, shape), inits)
    return model, [InputSpec(f32, shape), InputSpec(f32, shape)]


def softmax_matmul(rng: random.Random) -> tuple[onnx.ModelProto, list[InputSpec]]:
    f32 = np.dtype(np.float32)
    m, k, n = rng.randint(1, 4), rng.randint(1, 6), rng.randint(1, 5)
    op = rng.choice(["Softmax", "LogSoftmax", "Identity"])
    nodes = [helper.make_node("MatMul", ["a", "b"], ["m"]), helper.make_node(op, ["m"], ["y"])]
    model = _model(nodes, [("a", f32, (m, k)), ("b", f32, (k, n))], ("y", f32, (m, n)))
    return model, [InputSpec(f32, (m, k), max_finite=1e18), InputSpec(f32, (k, n), max_finite=1e18)]


TEMPLATES: dict[str, Template] = {
    f.__name__: f
    for f in (
        gather,
        gather_elements,
        float_binary,
        float_unary,
        int_binary,
        reduce,
        cast,
        clip_where,
        softmax_matmul,
    )
}
_WEIGHTS = {"gather": 3.0, "gather_elements": 2.0}


def pick_template(rng: random.Random) -> str:
    names = sorted(TEMPLATES)
    return rng.choices(names, [_WEIGHTS.get(n, 1.0) for n in names])[0]


def draw_input(rng: np.random.Generator, spec: InputSpec) -> np.ndarray:
    """Values for one input: extreme values for data; for an index input mostly valid
    indices (negative ones too) and now and then one out of range (the axis size, one below
    minus it, huge, the integer type's extremes)."""
    if spec.index_bound is None:
        values = random_array(rng, spec.shape, spec.dtype, special_rate=0.25)
        if spec.cast_to is not None:
            info = np.iinfo(spec.cast_to)
            wide = values.astype(np.float64)  # the bounds do not fit a float16
            with np.errstate(invalid="ignore"):
                defined = np.isfinite(wide) & (wide > info.min - 1.0) & (wide < info.max + 1.0)
            values = np.where(defined, values, 0).astype(spec.dtype)
        if spec.max_finite is not None:
            bound = spec.max_finite
            values = np.where(np.isfinite(values), np.clip(values, -bound, bound), values)
            values = values.astype(spec.dtype)
        return values
    n = spec.index_bound
    info = np.iinfo(spec.dtype)
    values = rng.integers(-n, n, spec.shape) if n else np.zeros(spec.shape, np.int64)
    if rng.random() < 0.4:
        bad = [n, -n - 1, 1000, 2**31 - 1, 2**40, int(info.min), int(info.max)]
        bad = [b for b in bad if info.min <= b <= info.max]
        flat = values.reshape(-1)
        if flat.size:
            flat[rng.integers(0, flat.size)] = bad[rng.integers(0, len(bad))]
    return np.array(values.astype(spec.dtype), order="C")
