"""Executable reference semantics: `mlc.interpret(module, *inputs)`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, MemRefType, ModuleOp, StringAttr, TensorType
from xdsl.interpreter import Interpreter

from mlc.dialects.graph.types import numpy_dtype


class InterpretError(ValueError):
    """Inputs that do not fit the function being interpreted."""


#: the result attribute naming the strings an index result stands for (the ONNX
#: importer's string class labels)
LABELS_ATTR = "mlc.labels"
#: the result attribute of an ONNX-ML ZipMap's keys (its probabilities matrix comes back
#: as one {key: probability} dict per row)
ZIPMAP_ATTR = "mlc.zipmap"


@dataclass(frozen=True)
class ZipMapKeys:
    """A ZipMap result: each row of the probabilities matrix returned as a dict from
    these keys (class labels, ints or strings) to Python floats, as onnxruntime does."""

    keys: tuple[int, ...] | tuple[str, ...]


#: how a result reaches callers: an index into string labels, a ZipMap, or as it is
ResultLabels = tuple[str, ...] | ZipMapKeys | None


def result_labels(res_attrs: Any, n: int) -> list[ResultLabels]:
    """The `mlc.labels` (strings) or `mlc.zipmap` (`ZipMapKeys`) of each of `n` results
    (None where a result has neither), from a function's `res_attrs` (an ArrayAttr of
    DictionaryAttrs, or None)."""
    labels: list[ResultLabels] = [None] * n
    if res_attrs is None:
        return labels
    for i, entry in enumerate(res_attrs.data[:n]):
        value = entry.data.get(LABELS_ATTR)
        if isinstance(value, ArrayAttr) and all(isinstance(s, StringAttr) for s in value.data):
            labels[i] = tuple(s.data for s in value.data)  # type: ignore[attr-defined]
        keys = entry.data.get(ZIPMAP_ATTR)
        if isinstance(keys, ArrayAttr):
            labels[i] = ZipMapKeys(
                tuple(k.data if isinstance(k, StringAttr) else k.value.data for k in keys.data)  # type: ignore[attr-defined]
            )
    return labels


def apply_labels(results: Sequence[np.ndarray], labels: Sequence[ResultLabels]) -> list[Any]:
    """Results as callers get them: indices mapped to their string labels (an array of
    Python strings, dtype object) and ZipMap results as a list of dicts, both as
    onnxruntime returns them."""
    mapped: list[Any] = list(results)
    for i, names in enumerate(labels):
        if names is None or i >= len(mapped):
            continue
        if isinstance(names, ZipMapKeys):
            rows = np.asarray(mapped[i], np.float64).reshape(len(mapped[i]), -1).tolist()
            mapped[i] = [dict(zip(names.keys, row)) for row in rows]
            continue
        table = np.empty(len(names), object)
        table[:] = names
        mapped[i] = table[np.asarray(mapped[i], np.int64)]
    return mapped


def make_interpreter(module: ModuleOp) -> Interpreter:
    """An xDSL interpreter with the implementations of every dialect mlc interprets:
    func, graph, tl, hw.x86, hw.accel, and xDSL's arith, math, memref, scf and builtin."""
    from xdsl.interpreters.arith import ArithFunctions
    from xdsl.interpreters.builtin import BuiltinFunctions
    from xdsl.interpreters.func import FuncFunctions
    from xdsl.interpreters.math import MathFunctions
    from xdsl.interpreters.memref import MemRefFunctions
    from xdsl.interpreters.scf import ScfFunctions

    from mlc.interpreters.accel import AccelFunctions
    from mlc.interpreters.graph import graph_functions
    from mlc.interpreters.hw import HwFunctions
    from mlc.interpreters.tl import TlFunctions

    interpreter = Interpreter(module)
    for functions in (
        FuncFunctions(),
        graph_functions(),
        TlFunctions(),
        HwFunctions(),
        AccelFunctions(),
        ArithFunctions(),
        MathFunctions(),
        MemRefFunctions(),
        ScfFunctions(),
        BuiltinFunctions(),
    ):
        interpreter.register_implementations(functions)
    return interpreter


def entry_function(module: ModuleOp, name: str | None = None) -> func.FuncOp:
    """The function called `name`, or the module's only/first public function."""
    funcs = [op for op in module.walk() if isinstance(op, func.FuncOp)]
    if name is not None:
        for f in funcs:
            if f.sym_name.data == name:
                return f
        raise InterpretError(f"no function named '{name}' in the module")
    public = [
        f
        for f in funcs
        if f.body.blocks and (f.sym_visibility is None or f.sym_visibility.data == "public")
    ]
    if not public:
        raise InterpretError("the module has no function with a body")
    return public[0]


def check_inputs(function: func.FuncOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Check count, shape and dtype of `inputs` against the function signature."""
    arg_types = function.function_type.inputs.data
    if len(inputs) != len(arg_types):
        raise InterpretError(
            f"@{function.sym_name.data} takes {len(arg_types)} inputs, got {len(inputs)}"
        )
    checked: list[np.ndarray] = []
    for i, (value, ty) in enumerate(zip(inputs, arg_types)):
        array = np.asarray(value)
        if isinstance(ty, TensorType | MemRefType):
            shape, dtype = tuple(ty.get_shape()), numpy_dtype(ty.element_type)
            if array.shape != shape or array.dtype != dtype:
                raise InterpretError(
                    f"input #{i} of @{function.sym_name.data} must be {dtype}{list(shape)}, "
                    f"got {array.dtype}{list(array.shape)}"
                )
        checked.append(array)
    return checked


def interpret(
    module: ModuleOp, *inputs: np.ndarray, function: str | None = None
) -> list[np.ndarray]:
    """Run `function` (default: the first public one) with the reference semantics. A
    result with `mlc.labels` (a classifier's string labels, as indices) comes back as its
    labels (`apply_labels`)."""
    from mlc.interpreters.tl import from_buffer, to_buffer

    f = entry_function(module, function)
    args = check_inputs(f, inputs)
    arg_types = f.function_type.inputs.data
    # memref arguments are buffers the function may write: pass copies, as ShapedArrays
    values = tuple(
        to_buffer(a, t.element_type) if isinstance(t, MemRefType) else a
        for a, t in zip(args, arg_types)
    )
    interpreter = make_interpreter(module)
    results = interpreter.call_op(f.sym_name.data, values)
    result_types = f.function_type.outputs.data
    arrays = [
        from_buffer(r, t.element_type) if isinstance(t, MemRefType) else np.asarray(r)
        for r, t in zip(results, result_types)
    ]
    return apply_labels(arrays, result_labels(f.res_attrs, len(arrays)))
