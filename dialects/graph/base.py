"""Shared machinery of graph ops: result-type inference, property helpers, broadcasting.

Every graph op derives from `GraphOp`. An op states how its result types follow from its
operand types and properties in `infer_result_types`; the same function builds ops
(`Op.create(operands, **props)`) and verifies them, so the two cannot disagree.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from xdsl.dialects.builtin import (
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import IRDLOperation, ParsePropInAttrDict, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from mlc.dialects.graph.types import is_supported_element_type

PropValue = Attribute | int | float | str | bool | Sequence[int] | Sequence[float] | None


class GraphError(VerifyException):
    """An op whose operands, properties or results are inconsistent."""


def to_attr(value: PropValue) -> Attribute | None:
    """Python value -> the attribute graph ops store it as.

    int -> i64, float -> f32, bool -> i1, str -> string, int sequence -> array<i64: ...>,
    float sequence -> array<f32: ...>.
    """
    if value is None or isinstance(value, Attribute):
        return value
    if isinstance(value, bool):
        return IntegerAttr(int(value), i1)
    if isinstance(value, int):
        return IntegerAttr(value, i64)
    if isinstance(value, float):
        return FloatAttr(value, f32)
    if isinstance(value, str):
        return StringAttr(value)
    values = list(value)
    if all(isinstance(v, int) for v in values):
        return DenseArrayBase.from_list(i64, [int(v) for v in values])
    return DenseArrayBase.from_list(f32, [float(v) for v in values])


class Props:
    """Typed read access to an op's properties (or a property dict before the op exists)."""

    def __init__(self, props: Mapping[str, Attribute | None]):
        self._props = props

    def has(self, name: str) -> bool:
        return self._props.get(name) is not None

    def int(self, name: str, default: int | None = None) -> int:
        attr = self._props.get(name)
        if attr is None:
            if default is None:
                raise GraphError(f"missing integer property '{name}'")
            return default
        if not isinstance(attr, IntegerAttr):
            raise GraphError(f"property '{name}' must be an integer, got {attr}")
        return attr.value.data

    def bool(self, name: str, default: bool = False) -> bool:
        return bool(self.int(name, int(default)))

    def float(self, name: str, default: float | None = None) -> float:
        attr = self._props.get(name)
        if attr is None:
            if default is None:
                raise GraphError(f"missing float property '{name}'")
            return default
        if isinstance(attr, FloatAttr):
            return attr.value.data
        if isinstance(attr, IntegerAttr):
            return float(attr.value.data)
        raise GraphError(f"property '{name}' must be a float, got {attr}")

    def ints(self, name: str, default: Sequence[int] | None = None) -> tuple[int, ...]:
        attr = self._props.get(name)
        if attr is None:
            if default is None:
                raise GraphError(f"missing integer-array property '{name}'")
            return tuple(default)
        if not isinstance(attr, DenseArrayBase) or not isinstance(attr.elt_type, type(i64)):
            raise GraphError(f"property '{name}' must be array<i64: ...>, got {attr}")
        return tuple(int(v) for v in attr.iter_values())

    def str(self, name: str, default: str | None = None) -> str:
        attr = self._props.get(name)
        if attr is None:
            if default is None:
                raise GraphError(f"missing string property '{name}'")
            return default
        if not isinstance(attr, StringAttr):
            raise GraphError(f"property '{name}' must be a string, got {attr}")
        return attr.data


def tensor_type(value: Attribute, what: str = "operand") -> TensorType:
    """The ranked static tensor type of `value`, or a verification error."""
    if not isinstance(value, TensorType):
        raise GraphError(f"{what} must be a ranked tensor, got {value}")
    if any(d < 0 for d in value.get_shape()):
        raise GraphError(f"{what} must have a static shape, got {value}")
    if not is_supported_element_type(value.element_type):
        raise GraphError(f"{what} has unsupported element type {value.element_type}")
    return value


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Numpy (multidirectional) broadcasting: (3, 1), (4,) -> (3, 4)."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise GraphError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """-1 -> rank - 1; out-of-range axes are a verification error."""
    if not -rank <= axis < max(rank, 1):
        raise GraphError(f"{what} {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


_GENERIC_CREATE_KEYS = frozenset({"properties", "attributes", "successors", "regions"})


class GraphOp(IRDLOperation, ABC):
    """Base of graph ops: pure, value semantics, result types inferred from operands.

    Subclasses override `infer_result_types`; `create` builds an op from operands and
    Python property values, and `verify_` checks the stored result types against it.
    """

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "operands attr-dict `:` functional-type(operands, results)"

    #: ops whose result type cannot be inferred (e.g. reshape) set this to True and are
    #: built with an explicit `result_types=`.
    EXPLICIT_RESULT_TYPES: ClassVar[bool] = False

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        raise NotImplementedError(f"{cls.name} does not infer its result types")

    @classmethod
    def create(  # type: ignore[override]
        cls,
        operands: Sequence[SSAValue | Operation | None] = (),
        result_types: Sequence[Attribute] | None = None,
        **props: Any,
    ) -> Self:
        """Build the op from operands and Python property values, inferring result types.

            AddOp.create([x, y]);  ConvOp.create([x, w], strides=[2, 2], ...)

        Missing trailing optional operands may be left out. (xDSL's generic parser also
        calls `create`, with its own keyword arguments: those go to `Operation.create`.)
        """
        if _GENERIC_CREATE_KEYS & props.keys():
            return super().create(operands=operands, result_types=result_types, **props)
        properties = {k: to_attr(v) for k, v in props.items()}
        properties = {k: v for k, v in properties.items() if v is not None}
        op_def = cls.get_irdl_definition()
        operands = list(operands)
        if len(op_def.operands) > 1 and len(operands) < len(op_def.operands):
            operands += [None] * (len(op_def.operands) - len(operands))
        present = [SSAValue.get(o) for o in operands if o is not None]
        if result_types is None:
            if cls.EXPLICIT_RESULT_TYPES:
                raise GraphError(f"{cls.name} needs an explicit result type (result_types=)")
            types = [tensor_type(o.type) for o in present]
            result_types = cls.infer_result_types(types, Props(properties))
        grouped_results: list[Attribute | Sequence[Attribute]] = list(result_types)
        if len(op_def.results) == 1 and len(result_types) != 1:
            grouped_results = [list(result_types)]
        grouped_operands: list[SSAValue | Operation | Sequence[SSAValue] | None] = list(operands)
        if len(op_def.operands) == 1 and len(operands) != 1:
            grouped_operands = [present]
        return cls.build(
            operands=grouped_operands,
            result_types=grouped_results,
            properties=properties,
        )

    def verify_(self) -> None:
        types = [tensor_type(o.type, f"operand #{i}") for i, o in enumerate(self.operands)]
        for i, r in enumerate(self.results):
            tensor_type(r.type, f"result #{i}")
        self.verify_props(Props(self.properties))
        if self.EXPLICIT_RESULT_TYPES:
            return
        expected = self.infer_result_types(types, Props(self.properties))
        actual = [r.type for r in self.results]
        if list(expected) != actual:
            shown = ", ".join(str(t) for t in expected)
            raise GraphError(f"result type(s) should be {shown}")

    def verify_props(self, props: Props) -> None:
        """Extra checks of property values (ranges, lengths); override when needed."""

    @property
    def props(self) -> Props:
        return Props(self.properties)
