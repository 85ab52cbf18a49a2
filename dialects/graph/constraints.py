"""Checks that graph ops share, declared on the op class and run by `GraphOp` (in order,
before `infer_result_types`, when building and when verifying an op):

    class ConvOp(GraphOp):
        CONSTRAINTS: ClassVar[Constraints] = (
            Float("input"), SameElementType(), MinRank("input", 3, IMAGE),
            SameRank("weight", "input"), Positive("group"), Window(lead=2),
        )

Operands are named as in the op's definition (`input = operand_def(...)`), properties as
declared (`group = IntProp()`); a constraint naming no operand applies to all of them
(each value of a variadic operand; absent optional operands are skipped). Axes are
normalized (0 <= axis < rank), as everywhere in the graph dialect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Attribute

from mlc.dialects.graph.base import GraphError, OperandTypes
from mlc.dialects.graph.types import is_bool, is_float, is_integer

__all__ = [
    "IMAGE",
    "N_C",
    "AxesIn",
    "AxisIn",
    "Bool",
    "Constraint",
    "Constraints",
    "Float",
    "Integer",
    "MinRank",
    "NonNegative",
    "Numeric",
    "OneOf",
    "OnePerAxis",
    "PerChannel",
    "Positive",
    "SameElementType",
    "SameRank",
    "Window",
]

#: the layout of `MinRank("input", 3, IMAGE)`, for messages
IMAGE = "N x C x D1 ... Dn"
#: the layout of `MinRank("input", 2, N_C)`
N_C = "N x C x ..."


class Constraint(ABC):
    """A check of an op's operand types and properties."""

    @abstractmethod
    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        """Raise a `GraphError` (prefixed by the op name `op`) unless the operand types
        and `props` (the op's typed properties) satisfy the constraint."""

    def operand_names(self) -> tuple[str, ...]:
        """The operands the constraint names (checked against the op's definition)."""
        return ()

    def prop_names(self) -> tuple[str, ...]:
        """The properties the constraint reads (checked against the op's declarations)."""
        return ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


Constraints = tuple[Constraint, ...]


def _selected(operands: OperandTypes, names: Sequence[str]) -> list[tuple[str, TensorType]]:
    """(name, type) of the named operands, or of all operands when `names` is empty."""
    out: list[tuple[str, TensorType]] = []
    for name in names or list(operands):
        value = operands.get(name)
        if isinstance(value, list):
            out += [(name, t) for t in value]
        elif value is not None:
            out.append((name, value))
    return out


def _first(operands: OperandTypes, name: str) -> TensorType:
    """The type of operand `name` (the first value of a variadic one)."""
    value = operands[name]
    if isinstance(value, list):
        return value[0]
    assert value is not None, f"operand {name} is absent"
    return value


def _shape(ty: TensorType) -> tuple[int, ...]:
    return tuple(ty.get_shape())


# --------------------------------------------------------------------------- element types


class _ElementKind(Constraint):
    """The named operands (all when none is named) have element types of a kind:
    "graph.conv expects a floating-point input, got tensor<4xi32>"."""

    def __init__(
        self, kind: str, test: Callable[[Attribute], bool], operands: Sequence[str]
    ) -> None:
        self.kind = kind
        self.test = test
        self.operands = tuple(operands)

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        selected = _selected(operands, self.operands)
        for name, ty in selected:
            if self.test(ty.element_type):
                continue
            article = "an" if self.kind[0] in "aeiou" else "a"
            if self.operands:
                raise GraphError(f"{op} expects {article} {self.kind} {name}, got {ty}")
            if len(operands) == 1 and len(selected) == 1:
                raise GraphError(f"{op} expects {article} {self.kind} tensor, got {ty}")
            raise GraphError(f"{op} expects {self.kind} tensors, got {ty}")

    def operand_names(self) -> tuple[str, ...]:
        return self.operands


class Float(_ElementKind):
    """Floating-point element types (f16, bf16, f32, f64)."""

    def __init__(self, *operands: str) -> None:
        super().__init__("floating-point", is_float, operands)


class Bool(_ElementKind):
    """Boolean (i1) element types."""

    def __init__(self, *operands: str) -> None:
        super().__init__("boolean (i1)", is_bool, operands)


def _is_numeric(element_type: Attribute) -> bool:
    return is_float(element_type) or is_integer(element_type)


class Numeric(_ElementKind):
    """Float or integer element types, not booleans."""

    def __init__(self, *operands: str) -> None:
        super().__init__("numeric (non-boolean)", _is_numeric, operands)


class Integer(_ElementKind):
    """Integer element types, signed or unsigned, not booleans."""

    def __init__(self, *operands: str) -> None:
        super().__init__("integer (non-boolean)", is_integer, operands)


class SameElementType(Constraint):
    """The named operands (all when none is named) share one element type; `what` names
    them in the message: "graph.add operands must have the same element type, got f32
    and i32"."""

    def __init__(self, *operands: str, what: str = "operands") -> None:
        self.operands = operands
        self.what = what

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        types = [str(ty.element_type) for _, ty in _selected(operands, self.operands)]
        if len(set(types)) > 1:
            shown = f"{', '.join(types[:-1])} and {types[-1]}"
            raise GraphError(f"{op} {self.what} must have the same element type, got {shown}")

    def operand_names(self) -> tuple[str, ...]:
        return self.operands


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class MinRank(Constraint):
    """Operand `operand` has rank >= `rank`; `layout` describes it in the message:
    "graph.conv input must have rank >= 3 (N x C x D1 ... Dn), got tensor<2x3xf32>"."""

    operand: str
    rank: int
    layout: str = ""

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        for name, ty in _selected(operands, [self.operand]):
            if len(_shape(ty)) < self.rank:
                layout = f" ({self.layout})" if self.layout else ""
                raise GraphError(f"{op} {name} must have rank >= {self.rank}{layout}, got {ty}")

    def operand_names(self) -> tuple[str, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class SameRank(Constraint):
    """Operand `operand` has the rank of operand `like`."""

    operand: str
    like: str

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        rank = len(_shape(_first(operands, self.like)))
        for name, ty in _selected(operands, [self.operand]):
            if len(_shape(ty)) != rank:
                raise GraphError(f"{op} {name} must have the {self.like}'s rank {rank}, got {ty}")

    def operand_names(self) -> tuple[str, ...]:
        return (self.operand, self.like)


class PerChannel(Constraint):
    """Each named operand has shape (C,), C the dimension 1 of operand `of` (N x C x ...):
    "graph.batch_norm mean must have shape (3,), got tensor<4xf32>"."""

    def __init__(self, *operands: str, of: str = "input") -> None:
        self.operands = operands
        self.of = of

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        channels = _shape(_first(operands, self.of))[1]
        for name, ty in _selected(operands, self.operands):
            if _shape(ty) != (channels,):
                raise GraphError(f"{op} {name} must have shape ({channels},), got {ty}")

    def operand_names(self) -> tuple[str, ...]:
        return (*self.operands, self.of)


# --------------------------------------------------------------------------- properties


def _check_values(
    op: str, props: Any, names: Sequence[str], bad: Callable[[int], bool], why: str
) -> None:
    for name in names:
        value = getattr(props, name)
        if isinstance(value, tuple):
            if any(bad(v) for v in value):
                raise GraphError(f"{op} {name} {list(value)} {why}")
        elif bad(value):
            raise GraphError(f"{op} {name} {why}, got {value}")


@dataclass(frozen=True)
class Positive(Constraint):
    """Integer property `prop` is >= 1: "graph.conv group must be positive, got 0"."""

    prop: str

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        _check_values(op, props, [self.prop], lambda v: v < 1, "must be positive")

    def prop_names(self) -> tuple[str, ...]:
        return (self.prop,)


@dataclass(frozen=True)
class NonNegative(Constraint):
    """No value of integer-array property `prop` is negative:
    "graph.tile repeats [2, -1] must not be negative"."""

    prop: str

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        _check_values(op, props, [self.prop], lambda v: v < 0, "must not be negative")

    def prop_names(self) -> tuple[str, ...]:
        return (self.prop,)


@dataclass(frozen=True)
class OneOf(Constraint):
    """Property `prop` is one of `choices`:
    "graph.pad mode must be one of constant, reflect, edge, wrap, got 'mirror'"."""

    prop: str
    choices: tuple[object, ...]

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        value = getattr(props, self.prop)
        if value not in self.choices:
            shown = ", ".join(str(c) for c in self.choices)
            raise GraphError(f"{op} {self.prop} must be one of {shown}, got {value!r}")

    def prop_names(self) -> tuple[str, ...]:
        return (self.prop,)


def _out_of_range(op: str, axis: int, rank: int) -> GraphError:
    return GraphError(f"{op} axis {axis} is out of range [0, {rank}) for rank {rank}")


@dataclass(frozen=True)
class AxisIn(Constraint):
    """Integer property `prop` is an axis of operand `of` (the first value of a variadic
    one): "graph.concat axis 3 is out of range [0, 2) for rank 2"."""

    prop: str
    of: str

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        axis, rank = getattr(props, self.prop), len(_shape(_first(operands, self.of)))
        if not 0 <= axis < rank:
            raise _out_of_range(op, axis, rank)

    def operand_names(self) -> tuple[str, ...]:
        return (self.of,)

    def prop_names(self) -> tuple[str, ...]:
        return (self.prop,)


@dataclass(frozen=True)
class AxesIn(Constraint):
    """Integer-array property `prop` holds strictly increasing axes of operand `of`, at
    least one unless `may_be_empty`."""

    prop: str
    of: str
    may_be_empty: bool = True

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        axes: tuple[int, ...] = getattr(props, self.prop)
        rank = len(_shape(_first(operands, self.of)))
        if not axes and not self.may_be_empty:
            raise GraphError(f"{op} needs at least one axis")
        for axis in axes:
            if not 0 <= axis < rank:
                raise _out_of_range(op, axis, rank)
        if any(a >= b for a, b in zip(axes, axes[1:])):
            raise GraphError(f"{op} axes {list(axes)} must be strictly increasing")

    def operand_names(self) -> tuple[str, ...]:
        return (self.of,)

    def prop_names(self) -> tuple[str, ...]:
        return (self.prop,)


class OnePerAxis(Constraint):
    """Each named integer-array property has one entry per axis of operand `of`:
    "graph.tile repeats must have 3 entries (one per axis), got 2"."""

    def __init__(self, *props: str, of: str = "input") -> None:
        self.props = props
        self.of = of

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        rank = len(_shape(_first(operands, self.of)))
        for name in self.props:
            n = len(getattr(props, name))
            if n != rank:
                raise GraphError(f"{op} {name} must have {rank} entries (one per axis), got {n}")

    def operand_names(self) -> tuple[str, ...]:
        return (self.of,)

    def prop_names(self) -> tuple[str, ...]:
        return self.props


@dataclass(frozen=True)
class Window(Constraint):
    """The window properties of a convolution or pool over the spatial axes of operand
    `of`, all but its `lead` first and `trail` last axes: `strides` and `dilations` (and
    `kernel_shape`, for pools) have one positive value per spatial axis, `pads` (begins,
    then ends) two non-negative ones."""

    lead: int = 2
    trail: int = 0
    of: str = "input"
    kernel: bool = False

    def check(self, op: str, operands: OperandTypes, props: Any) -> None:
        rank = max(len(_shape(_first(operands, self.of))) - self.lead - self.trail, 0)
        kernel: tuple[int, ...] = props.kernel_shape if self.kernel else ()
        strides: tuple[int, ...] = props.strides
        pads: tuple[int, ...] = props.pads
        dilations: tuple[int, ...] = props.dilations
        lengths = [("strides", strides, rank), ("dilations", dilations, rank)]
        if self.kernel:
            lengths.insert(0, ("kernel_shape", kernel, rank))
        for prop, values, expected in [*lengths, ("pads", pads, 2 * rank)]:
            if len(values) != expected:
                raise GraphError(
                    f"{op} {prop} has {len(values)} values, expected {expected} "
                    f"for {rank} spatial dimension(s)"
                )
        if any(s < 1 for s in strides):
            raise GraphError(f"{op} strides must be positive, got {list(strides)}")
        if any(d < 1 for d in dilations):
            raise GraphError(f"{op} dilations must be positive, got {list(dilations)}")
        if any(p < 0 for p in pads):
            raise GraphError(f"{op} pads must be non-negative, got {list(pads)}")
        if any(k < 1 for k in kernel):
            raise GraphError(f"{op} kernel sizes must be positive, got {list(kernel)}")

    def operand_names(self) -> tuple[str, ...]:
        return (self.of,)

    def prop_names(self) -> tuple[str, ...]:
        names = ("strides", "pads", "dilations")
        return ("kernel_shape", *names) if self.kernel else names
