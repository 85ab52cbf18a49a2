"""Shared machinery of graph ops: typed properties, declared constraints, result-type
inference, broadcasting.

Every graph op derives from `GraphOp`. It declares its properties once, typed
(`strides = IntsProp()`, `alpha = FloatProp()`; `GraphProp` registers each with IRDL as
a `prop_def`), so code reads `op.strides` as a `tuple[int, ...]`. It declares the checks
it shares with other ops as `CONSTRAINTS` (`mlc.dialects.graph.constraints`) and states
how its result types follow from its operand types and properties in
`infer_result_types`; the same checks and inference build ops
(`Op.create(operands, **props)`) and verify them, so the two cannot disagree.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast, overload

import numpy as np
from xdsl.dialects.builtin import (
    I64,
    BoolAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    IRDLAttrConstraint,
    IRDLOperation,
    OptionalDef,
    ParsePropInAttrDict,
    VariadicDef,
    opt_prop_def,
    prop_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from mlc.dialects.graph.types import (
    element_type_from_numpy,
    is_supported_element_type,
    numpy_dtype,
)

if TYPE_CHECKING:
    from mlc.dialects.graph.constraints import Constraint

PropValue = (
    Attribute | int | float | str | bool | Sequence[int] | Sequence[float] | np.ndarray | None
)


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
    if isinstance(value, np.ndarray):
        return dense_attr(value)
    values = list(value)
    if all(isinstance(v, int) for v in values):
        return DenseArrayBase.from_list(i64, [int(v) for v in values])
    return DenseArrayBase.from_list(f32, [float(v) for v in values])


# --------------------------------------------------------------------------- properties

T = TypeVar("T")


class GraphProp(property, Generic[T]):
    """A typed property of a graph op, declared once in the op's class body:

        perm = IntsProp()                  # op.perm: tuple[int, ...], required
        axis = IntProp(default=0)          # op.axis: int, 0 when absent
        min = NumberProp()                 # op.min: int | float | None

    `GraphOp` registers each declaration with IRDL as a `prop_def` of the same name
    (reachable raw as `op.<name>_attr`), constrained to `CONSTRAINT` unless the
    declaration names another constraint; a property with a default is optional in
    IRDL. Reading converts the stored attribute to a Python value; a missing or
    ill-typed one is a `GraphError`. The same declaration reads a property dict before
    the op exists (`PropertyView`), so `infer_result_types` reads `props.perm` alike.

    (A subclass of `property`: IRDL accepts properties in op classes as plain Python.)
    """

    #: what the property holds, in messages ("missing integer property 'axis'")
    KIND: ClassVar[str]
    #: how an ill-typed value is described ("property 'axis' must be an integer, ...")
    EXPECTED: ClassVar[str]
    #: the IRDL constraint of a declaration that names none
    CONSTRAINT: ClassVar[IRDLAttrConstraint]
    #: an absent value reads as None (rather than being an error)
    ABSENT_IS_NONE: ClassVar[bool] = False

    name: str

    def __init__(
        self, constraint: IRDLAttrConstraint | None = None, *, default: T | None = None
    ) -> None:
        super().__init__()
        self.constraint = self.CONSTRAINT if constraint is None else constraint
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def optional(self) -> bool:
        """The property may be absent (it has a default, or absent means None)."""
        return self.default is not None or self.ABSENT_IS_NONE

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Self | T:
        if instance is None:
            return self
        return self.read(cast(Any, instance).properties)

    def read(self, properties: Mapping[str, Attribute | None]) -> T:
        """The property's value in `properties` (an op's, or a dict before the op exists)."""
        attr = properties.get(self.name)
        if attr is None:
            if self.default is not None:
                return self.default
            if self.ABSENT_IS_NONE:
                return cast(T, None)
            raise GraphError(f"missing {self.KIND} property '{self.name}'")
        return self.convert(attr)

    def convert(self, attr: Attribute) -> T:
        """The Python value of a stored attribute; `ill_typed` when it has another type."""
        raise NotImplementedError

    def ill_typed(self, attr: Attribute) -> GraphError:
        return GraphError(f"property '{self.name}' must be {self.EXPECTED}, got {attr}")

    def field_def(self) -> Attribute:
        """The IRDL declaration this property stands for (`prop_def` / `opt_prop_def`)."""
        if self.optional:
            return cast(Attribute, opt_prop_def(self.constraint, prop_name=self.name))
        return prop_def(self.constraint, prop_name=self.name)


class IntProp(GraphProp[int]):
    """An integer (`axis = 1 : i64`)."""

    KIND = "integer"
    EXPECTED = "an integer"
    CONSTRAINT = IntegerAttr[I64]

    def convert(self, attr: Attribute) -> int:
        if not isinstance(attr, IntegerAttr):
            raise self.ill_typed(attr)
        return attr.value.data


class BoolProp(GraphProp[bool]):
    """A boolean (`keepdims = true`)."""

    KIND = "boolean"
    EXPECTED = "a boolean"
    CONSTRAINT = BoolAttr

    def convert(self, attr: Attribute) -> bool:
        if not isinstance(attr, IntegerAttr):
            raise self.ill_typed(attr)
        return bool(attr.value.data)


class FloatProp(GraphProp[float]):
    """A float (`epsilon = 1.0e-05 : f32`); an integer attribute reads as its float."""

    KIND = "float"
    EXPECTED = "a float"
    CONSTRAINT = FloatAttr

    def convert(self, attr: Attribute) -> float:
        if isinstance(attr, FloatAttr):
            return attr.value.data
        if isinstance(attr, IntegerAttr):
            return float(attr.value.data)
        raise self.ill_typed(attr)


class StrProp(GraphProp[str]):
    """A string (`mode = "constant"`)."""

    KIND = "string"
    EXPECTED = "a string"
    CONSTRAINT = StringAttr

    def convert(self, attr: Attribute) -> str:
        if not isinstance(attr, StringAttr):
            raise self.ill_typed(attr)
        return attr.data


class IntsProp(GraphProp[tuple[int, ...]]):
    """Integers (`strides = array<i64: 1, 1>`), read as a tuple."""

    KIND = "integer-array"
    EXPECTED = "array<i64: ...>"
    CONSTRAINT = DenseArrayBase[I64]

    def __init__(
        self,
        constraint: IRDLAttrConstraint | None = None,
        *,
        default: Sequence[int] | None = None,
    ) -> None:
        super().__init__(constraint, default=None if default is None else tuple(default))

    def convert(self, attr: Attribute) -> tuple[int, ...]:
        if not isinstance(attr, DenseArrayBase) or not isinstance(attr.elt_type, IntegerType):
            raise self.ill_typed(attr)
        return tuple(int(v) for v in attr.iter_values())


class ArrayProp(GraphProp["np.ndarray"]):
    """A constant array (`nodes_feature = dense<[0, 2]> : tensor<2xi64>`), read as a
    numpy array (a copy). Tree ensembles keep their node tables in these."""

    KIND = "array"
    EXPECTED = "a dense elements attribute"
    CONSTRAINT = DenseIntOrFPElementsAttr

    def convert(self, attr: Attribute) -> np.ndarray:
        if not isinstance(attr, DenseIntOrFPElementsAttr):
            raise self.ill_typed(attr)
        return dense_array(attr)


def dense_array(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """A dense elements attribute's value as a numpy array (splats expanded)."""
    ty = attr.get_type()
    assert isinstance(ty, TensorType)
    flat = np.frombuffer(attr.data.data, dtype=numpy_dtype(ty.element_type))
    shape = tuple(ty.get_shape())
    size = int(np.prod(shape))
    if flat.size == 1 and size != 1:
        flat = np.broadcast_to(flat, (size,))
    return flat.reshape(shape).copy()


def dense_attr(array: np.ndarray) -> DenseIntOrFPElementsAttr:
    """A numpy array as a dense elements attribute holding a copy of its bytes."""
    ty = TensorType(element_type_from_numpy(array.dtype), list(array.shape))
    data = np.ascontiguousarray(array).tobytes()
    return DenseIntOrFPElementsAttr(ty, BytesAttr(data))


class NumberProp(GraphProp[int | float | None]):
    """An optional number (`min = 0.0 : f32`, `value = 7 : i64`): an integer attribute
    reads as an int (exact), a float one as a float, an absent one as None."""

    KIND = "number"
    EXPECTED = "a number"
    CONSTRAINT = FloatAttr | IntegerAttr
    ABSENT_IS_NONE = True

    def convert(self, attr: Attribute) -> int | float:
        if isinstance(attr, FloatAttr):
            return attr.value.data
        if isinstance(attr, IntegerAttr):
            return attr.value.data
        raise self.ill_typed(attr)


@cache
def declared_props(op_type: type) -> dict[str, GraphProp[Any]]:
    """The typed properties an op class declares (its own and inherited), by name."""
    props: dict[str, GraphProp[Any]] = {}
    for klass in reversed(op_type.__mro__):
        props |= {k: v for k, v in vars(klass).items() if isinstance(v, GraphProp)}
    return props


class PropertyView:
    """An op's typed properties before the op exists (`create` infers its result types
    from a property dict): `view.strides` reads the op class's own `strides`
    declaration, as `op.strides` does on the op."""

    def __init__(self, properties: Mapping[str, Attribute | None]) -> None:
        self.properties = properties

    @staticmethod
    @cache
    def of(op_type: type) -> type[PropertyView]:
        """The view class of `op_type`: its property declarations on a `PropertyView`."""
        return type(f"{op_type.__name__}Properties", (PropertyView,), declared_props(op_type))


# --------------------------------------------------------------------------- helpers


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


#: an op's operand types by operand name: one type, a list (variadic) or None (absent)
OperandTypes = Mapping[str, TensorType | list[TensorType] | None]

_GENERIC_CREATE_KEYS = frozenset({"properties", "attributes", "successors", "regions"})


class GraphOp(IRDLOperation, ABC):
    """Base of graph ops: pure, value semantics, result types inferred from operands.

    Subclasses declare typed properties (`GraphProp`), shared checks (`CONSTRAINTS`) and
    override `infer_result_types`; `create` builds an op from operands and Python
    property values, and `verify_` checks the stored result types against it. Both first
    check the operand count against the op's operand definitions, then `CONSTRAINTS` in
    order, then infer.
    """

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "operands attr-dict `:` functional-type(operands, results)"

    #: ops whose result type cannot be inferred (e.g. reshape) set this to True and are
    #: built with an explicit `result_types=`.
    EXPLICIT_RESULT_TYPES: ClassVar[bool] = False
    #: checks of operand types and properties shared with other ops, run in order
    #: before `infer_result_types` (`mlc.dialects.graph.constraints`)
    CONSTRAINTS: ClassVar[tuple[Constraint, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register each typed property the class declares with IRDL (`<name>_attr`)."""
        super().__init_subclass__(**kwargs)
        for name, prop in list(vars(cls).items()):
            if isinstance(prop, GraphProp):
                setattr(cls, f"{name}_attr", prop.field_def())

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        """The result types for operands of `operand_types` (present ones, in order).

        `props` reads the op's typed properties (`props.strides`): it is the op itself
        when verifying, and a `PropertyView` with the same property attributes when
        `create` infers result types before the op exists.
        """
        raise NotImplementedError(f"{cls.name} does not infer its result types")

    @classmethod
    def check_and_infer(cls, operands: OperandTypes, props: Self) -> list[TensorType] | None:
        """Check the operand count and `CONSTRAINTS`, then infer the result types (None
        for ops with `EXPLICIT_RESULT_TYPES`)."""
        cls._check_operand_count(operands)
        for constraint in cls.CONSTRAINTS:
            constraint.check(cls.name, operands, props)
        if cls.EXPLICIT_RESULT_TYPES:
            return None
        present: list[TensorType] = []
        for value in operands.values():
            if isinstance(value, list):
                present += value
            elif value is not None:
                present.append(value)
        return cls.infer_result_types(present, props)

    @classmethod
    def _check_operand_count(cls, operands: OperandTypes) -> None:
        """As many operands as the op's operand definitions take (at least one for a
        variadic op)."""
        defs = cls.get_irdl_definition().operands
        if len(defs) == 1 and isinstance(defs[0][1], VariadicDef):
            if not operands.get(defs[0][0]):
                raise GraphError(f"{cls.name} needs at least one operand")
            return
        given = sum(v is not None for v in operands.values())
        required = sum(not isinstance(d, OptionalDef) for _, d in defs)
        if not required <= given <= len(defs):
            counts = f"{required} or {len(defs)}" if required < len(defs) else str(required)
            noun = "operand" if counts == "1" else "operands"
            names = ", ".join(name for name, _ in defs)
            raise GraphError(f"{cls.name} takes {counts} {noun} ({names})")

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
            named = cls._operand_types_by_name(types)
            view = cast(Self, PropertyView.of(cls)(properties))
            inferred = cls.check_and_infer(named, view)
            assert inferred is not None
            result_types = inferred
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

    @classmethod
    def _operand_types_by_name(cls, present: Sequence[TensorType]) -> OperandTypes:
        """Operand types by definition name, from the present operands in order (absent
        optional operands are trailing)."""
        defs = cls.get_irdl_definition().operands
        if len(defs) == 1 and isinstance(defs[0][1], VariadicDef):
            return {defs[0][0]: list(present)}
        named: dict[str, TensorType | list[TensorType] | None] = {}
        for i, (name, _) in enumerate(defs):
            named[name] = present[i] if i < len(present) else None
        if len(present) > len(defs):  # too many: keep them, for the count check
            named |= {f"#{i}": t for i, t in enumerate(present[len(defs) :], len(defs))}
        return named

    def verify_(self) -> None:
        types = [tensor_type(o.type, f"operand #{i}") for i, o in enumerate(self.operands)]
        for i, r in enumerate(self.results):
            tensor_type(r.type, f"result #{i}")
        self.verify_props()
        expected = self.check_and_infer(self._operand_types_by_name(types), self)
        if expected is None:
            return
        actual = [r.type for r in self.results]
        if list(expected) != actual:
            shown = ", ".join(str(t) for t in expected)
            raise GraphError(f"result type(s) should be {shown}")

    def verify_props(self) -> None:
        """Extra checks of property values against the op (after IRDL's own checks);
        override when needed."""
