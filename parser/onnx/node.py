"""What an ONNX node converter sees: its node, inputs, attributes and an op emitter.

A converter turns one ONNX node into graph ops:

    @converter("LeakyRelu")
    def leaky_relu(node: NodeContext) -> list[SSAValue]:
        return [node.emit(graph.LeakyReluOp.create([node.input(0)], alpha=node.float("alpha", 0.01)))]

It raises `Unsupported` (through `node.unsupported(...)`) for what mlc cannot express;
the importer collects these for every node and reports them together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import numpy as np
import onnx
from onnx import helper
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, Operation, SSAValue

from mlc.dialects.graph.elementwise import ConstantOp

OpT = TypeVar("OpT", bound=Operation)


#: appended to "must be known at import time" reasons; the conformance harness keys on it
BIND_HINT = " (a graph input can be bound with input_values=)"
#: values computed from constants are folded at import when no larger than this (and
#: ConstantOfShape results larger than this stay a broadcast scalar)
FOLD_LIMIT_ELEMENTS = 1 << 20


class Unsupported(Exception):
    """A node mlc cannot import, with the reason."""


@dataclass
class NodeContext:
    node: onnx.NodeProto
    opset: int
    values: list[SSAValue | None]
    constants: list[np.ndarray | None]
    block: Block
    emitted: list[Operation] = field(default_factory=list)
    #: outputs (by ONNX name) that hold indices into string class labels (the importer
    #: records the strings on the function's results as `mlc.labels`)
    string_labels: dict[str, list[str]] = field(default_factory=dict)
    #: ZipMap outputs (by ONNX name): the probabilities matrix and its keys (the importer
    #: records them as `mlc.zipmap`; callers get one dict per row)
    zipmap_keys: dict[str, list[int] | list[str]] = field(default_factory=dict)
    _attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._attrs = {a.name: helper.get_attribute_value(a) for a in self.node.attribute}

    # ---------------------------------------------------------------- inputs
    @property
    def num_inputs(self) -> int:
        """Number of inputs, not counting trailing omitted optional ones."""
        return len(self.values)

    def has_input(self, i: int) -> bool:
        return i < len(self.values) and self.values[i] is not None

    def input(self, i: int) -> SSAValue:
        if not self.has_input(i):
            self.unsupported(f"required input #{i} is missing")
        value = self.values[i]
        assert value is not None
        return value

    def inputs(self) -> list[SSAValue]:
        return [self.input(i) for i in range(self.num_inputs) if self.has_input(i)]

    def input_type(self, i: int) -> TensorType:
        ty = self.input(i).type
        assert isinstance(ty, TensorType)
        return ty

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.input_type(i).get_shape())

    def rank(self, i: int) -> int:
        return len(self.shape(i))

    def is_constant(self, i: int) -> bool:
        return i < len(self.constants) and self.constants[i] is not None

    def constant(self, i: int, what: str = "") -> np.ndarray:
        """The value of input `i`, which must be known at import time (static shapes)."""
        if not self.has_input(i):
            self.unsupported(f"required input #{i} is missing")
        value = self.constants[i]
        if value is None:
            name = self.node.input[i]
            self.unsupported(
                f"input '{name}'{' (' + what + ')' if what else ''} must be a constant "
                f"known at import time{BIND_HINT}"
            )
        return value

    def constant_ints(self, i: int, what: str = "") -> list[int]:
        return [int(v) for v in np.asarray(self.constant(i, what)).reshape(-1)]

    # ---------------------------------------------------------------- attributes
    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def attr(self, name: str, default: Any = None) -> Any:
        return self._attrs.get(name, default)

    def int(self, name: str, default: int | None = None) -> int:
        value = self._attrs.get(name, default)
        if value is None:
            self.unsupported(f"attribute '{name}' is required")
        return int(value)

    def float(self, name: str, default: float | None = None) -> float:
        value = self._attrs.get(name, default)
        if value is None:
            self.unsupported(f"attribute '{name}' is required")
        return float(value)

    def ints(self, name: str, default: Sequence[int] | None = None) -> list[int]:
        value = self._attrs.get(name, default)
        if value is None:
            self.unsupported(f"attribute '{name}' is required")
        return [int(v) for v in value]

    def string(self, name: str, default: str | None = None) -> str:
        value = self._attrs.get(name, default)
        if value is None:
            self.unsupported(f"attribute '{name}' is required")
        return value.decode() if isinstance(value, bytes) else str(value)

    # ---------------------------------------------------------------- building
    def emit(self, op: OpT) -> OpT:
        """Append `op` to the function body; returns it."""
        self.block.add_op(op)
        self.emitted.append(op)
        return op

    def emit_constant(self, array: np.ndarray) -> SSAValue:
        return self.emit(ConstantOp.from_array(np.asarray(array))).result

    def unsupported(self, reason: str) -> NoReturn:
        raise Unsupported(reason)

    def reject_attr_values(self, name: str, allowed: Sequence[Any], default: Any) -> None:
        """Fail with a clear reason when attribute `name` has a value mlc does not support."""
        value = self.attr(name, default)
        if isinstance(value, bytes):
            value = value.decode()
        if value not in allowed:
            self.unsupported(f"attribute {name}={value!r} is not supported")


Converter = Callable[[NodeContext], Sequence[SSAValue | None]]

CONVERTERS: dict[str, Converter] = {}


#: the ONNX-ML operator domain and its converters (`ml_converter`)
ML_DOMAIN = "ai.onnx.ml"
ML_CONVERTERS: dict[str, Converter] = {}


def converter(*op_types: str, domain: str = "") -> Callable[[Converter], Converter]:
    """Register a converter for the ONNX operators `op_types` of `domain` (the default
    domain, or `ML_DOMAIN`)."""
    table = ML_CONVERTERS if domain == ML_DOMAIN else CONVERTERS
    if domain not in ("", ML_DOMAIN):
        raise ValueError(f"no converter table for domain {domain!r}")

    def register(fn: Converter) -> Converter:
        for op_type in op_types:
            if op_type in table:
                raise ValueError(f"converter for ONNX {op_type} registered twice")
            table[op_type] = fn
        return fn

    return register
