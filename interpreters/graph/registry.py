"""The reference-semantics registry of graph ops.

A reference implementation is a numpy function of the op (for its properties) and its
operand arrays, returning one array or a tuple of arrays:

    @reference(graph.AddOp)
    def add(op: graph.AddOp, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x + y

The registry serves two clients: the xDSL interpreter (`GraphFunctions`) and code that
evaluates single ops directly (constant folding, the ONNX importer's shape folding).
The op families (`elementwise`, `nn`, ...) register when imported: the package
`mlc.interpreters.graph` imports them all, so every entry is present before anyone asks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, register_impls
from xdsl.ir import Operation

from mlc.dialects.graph.types import numpy_dtype

OpT = TypeVar("OpT", bound=Operation)
Reference = Callable[..., np.ndarray | tuple[np.ndarray, ...]]

_REFERENCES: dict[type[Operation], Reference] = {}


def reference(op_type: type[OpT]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the numpy reference semantics of `op_type`."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if op_type in _REFERENCES:
            raise ValueError(f"reference semantics of {op_type.name} registered twice")
        _REFERENCES[op_type] = fn
        return fn

    return register


def registered_ops() -> set[type[Operation]]:
    return set(_REFERENCES)


def has_reference(op: Operation) -> bool:
    return type(op) in _REFERENCES


def evaluate(op: Operation, inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Run the reference semantics of one op; results are cast to the result types."""
    try:
        fn = _REFERENCES[type(op)]
    except KeyError:
        raise NotImplementedError(f"no reference semantics for {op.name}") from None
    with np.errstate(all="ignore"):  # IEEE semantics: inf/nan results are values
        out = fn(op, *inputs)
        results = out if isinstance(out, tuple) else (out,)
        if len(results) != len(op.results):
            raise AssertionError(f"{op.name}: reference returned {len(results)} results")
        return tuple(_conform(np.asarray(r), res.type) for r, res in zip(results, op.results))


def _conform(array: np.ndarray, ty: object) -> np.ndarray:
    """Cast to the declared dtype and check the declared shape."""
    assert isinstance(ty, TensorType)
    shape = tuple(ty.get_shape())
    if array.shape != shape:
        raise AssertionError(f"reference produced shape {array.shape}, type says {shape}")
    dtype = numpy_dtype(ty.element_type)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return array if array.flags.c_contiguous else array.copy(order="C")


def graph_functions() -> InterpreterFunctions:
    """An xDSL `InterpreterFunctions` running every registered graph op."""
    namespace: dict[str, Any] = {}
    for op_type in _REFERENCES:

        def run(
            self: InterpreterFunctions,
            interpreter: Interpreter,
            op: Operation,
            args: tuple[Any, ...],
        ) -> tuple[Any, ...]:
            return evaluate(op, args)

        namespace[f"run_{op_type.name.replace('.', '_')}"] = impl(op_type)(run)
    cls = type("GraphFunctions", (InterpreterFunctions,), namespace)
    return register_impls(cls)()
