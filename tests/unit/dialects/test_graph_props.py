"""Typed properties (`GraphProp`) and declared constraints (`CONSTRAINTS`) of graph ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Self

import numpy as np
import pytest
from xdsl.dialects.builtin import DenseArrayBase, FloatAttr, IntegerAttr, StringAttr, TensorType
from xdsl.irdl import OptPropertyDef, irdl_op_definition, operand_def, result_def

import mlc
from mlc.dialects import graph
from mlc.dialects.graph.base import (
    FloatProp,
    GraphError,
    GraphOp,
    GraphProp,
    IntProp,
    IntsProp,
    PropertyView,
    declared_props,
)
from mlc.dialects.graph.constraints import Constraints, Positive
from mlc.parser.mlir import parse_module


def constant(shape: tuple[int, ...], dtype: type = np.float32) -> graph.ConstantOp:
    return graph.ConstantOp.from_array(np.zeros(shape, dtype))


def conv(**props: object) -> graph.ConvOp:
    x, w = constant((1, 3, 8, 8)), constant((4, 3, 3, 3))
    window = {"strides": [1, 2], "pads": [0, 1, 0, 1], "dilations": [1, 1], "group": 1}
    return graph.ConvOp.create([x, w], **{**window, **props})


def test_properties_read_typed() -> None:
    op = conv()
    assert op.strides == (1, 2) and op.pads == (0, 1, 0, 1) and op.group == 1
    assert isinstance(op.strides_attr, DenseArrayBase)  # the raw attribute, for IRDL
    gemm = graph.GemmOp.create(
        [constant((2, 3)), constant((4, 3))], alpha=0.5, beta=1.0, trans_a=False, trans_b=True
    )
    assert (gemm.alpha, gemm.beta, gemm.trans_a, gemm.trans_b) == (0.5, 1.0, False, True)
    assert type(gemm.trans_b) is bool
    gelu = graph.GeluOp.create([constant((4,))], approximate="tanh")
    assert gelu.approximate == "tanh"


def test_optional_numbers_keep_their_kind() -> None:
    x = constant((4,), np.int64)
    assert graph.ClipOp.create([x]).min is None
    clip = graph.ClipOp.create([x], min=-3, max=2.5)
    assert clip.min == -3 and type(clip.min) is int
    assert clip.max == 2.5 and type(clip.max) is float
    pad = graph.PadOp.create([x], pads=[1, 0], mode="constant")
    assert pad.value is None and pad.pad_value() == 0


def test_declarations_are_the_irdl_properties() -> None:
    for op_type in graph.ALL_OPS:
        defs = op_type.get_irdl_definition().properties
        declared = declared_props(op_type)
        if op_type is graph.ConstantOp:
            assert not declared  # its value is data, kept as the attribute
            continue
        assert set(declared) == set(defs), op_type.name
        for name, prop in declared.items():
            assert isinstance(defs[name], OptPropertyDef) == prop.optional, name


def test_the_view_reads_the_same_declarations() -> None:
    view = PropertyView.of(graph.ConvOp)({"strides": IntegerAttr(2, 64)})
    assert type(view).strides is graph.ConvOp.strides
    with pytest.raises(GraphError, match="property 'strides' must be array<i64: ...>, got 2"):
        _ = view.strides
    with pytest.raises(GraphError, match="missing integer property 'group'"):
        _ = view.group


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: graph.TransposeOp.create([constant((2, 3))]),
            "missing integer-array property 'perm'",
        ),
        (
            lambda: graph.TransposeOp.create([constant((2, 3))], perm=[1.0, 0.0]),
            r"property 'perm' must be array<i64: \.\.\.>",
        ),
        (lambda: conv(group="one"), "property 'group' must be an integer"),
        (lambda: graph.ReduceSumOp.create([constant((2, 3))], axes=[1]), "missing boolean"),
        (
            lambda: graph.LeakyReluOp.create([constant((2,))], alpha="a").alpha,
            "property 'alpha' must be a float",
        ),
        (lambda: graph.GeluOp.create([constant((2,))], approximate=1), "must be a string"),
        (
            lambda: graph.ClipOp.create([constant((2,))], min="low").min,
            "property 'min' must be a number",
        ),
    ],
)
def test_missing_or_ill_typed_properties(build: Callable[[], object], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        build()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: graph.ReluOp.create([constant((2,)), constant((2,))]),
            r"takes 1 operand \(input\)",
        ),
        (
            lambda: graph.ConvOp.create([constant((1, 3, 8, 8))], strides=[1, 1]),
            r"graph.conv takes 2 or 3 operands \(input, weight, bias\)",
        ),
        (lambda: graph.ConcatOp.create([], axis=0), "needs at least one operand"),
        (lambda: conv(group=0), "graph.conv group must be positive, got 0"),
        (lambda: conv(strides=[1]), "strides has 1 values, expected 2 for 2 spatial"),
        (
            lambda: graph.ConvOp.create(
                [constant((1, 3, 8, 8), np.int32), constant((4, 3, 3, 3), np.int32)],
                strides=[1, 1],
                pads=[0, 0, 0, 0],
                dilations=[1, 1],
                group=1,
            ),
            "graph.conv expects a floating-point input, got tensor<1x3x8x8xi32>",
        ),
        (
            lambda: graph.ConvOp.create(
                [constant((3, 8)), constant((4, 3))],
                strides=[],
                pads=[],
                dilations=[],
                group=1,
            ),
            r"input must have rank >= 3 \(N x C x D1 \.\.\. Dn\), got tensor<3x8xf32>",
        ),
        (
            lambda: graph.AddOp.create([constant((2,)), constant((2,), np.int32)]),
            "graph.add operands must have the same element type, got f32 and i32",
        ),
        (
            lambda: graph.ExpOp.create([constant((2,), np.int32)]),
            "graph.exp expects a floating-point tensor, got tensor<2xi32>",
        ),
        (
            lambda: graph.AndOp.create([constant((2,)), constant((2,))]),
            r"graph.and expects boolean \(i1\) tensors, got tensor<2xf32>",
        ),
        (
            lambda: graph.TileOp.create([constant((2, 3))], repeats=[2]),
            r"graph.tile repeats must have 2 entries \(one per axis\), got 1",
        ),
        (
            lambda: graph.TileOp.create([constant((2, 3))], repeats=[2, -1]),
            r"graph.tile repeats \[2, -1\] must not be negative",
        ),
        (
            lambda: graph.GatherOp.create([constant((2, 3)), constant((2,), np.int64)], axis=2),
            r"graph.gather axis 2 is out of range \[0, 2\) for rank 2",
        ),
        (
            lambda: graph.SoftmaxOp.create([constant((2, 3))], axes=[]),
            "graph.softmax needs at least one axis",
        ),
        (
            lambda: graph.PadOp.create([constant((2,))], pads=[0, 0], mode="mirror"),
            "graph.pad mode must be one of constant, reflect, edge, wrap, got 'mirror'",
        ),
        (
            lambda: graph.BatchNormOp.create(
                [constant((2, 3, 4)), *(constant((3,)),) * 3, constant((4,))], epsilon=1e-5
            ),
            r"graph.batch_norm var must have shape \(3,\), got tensor<4xf32>",
        ),
    ],
)
def test_declared_constraints(build: Callable[[], object], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        build()


def test_constraints_name_operands_and_properties_the_op_has() -> None:
    for op_type in graph.ALL_OPS:
        operands = {name for name, _ in op_type.get_irdl_definition().operands}
        props = set(declared_props(op_type))
        for constraint in op_type.CONSTRAINTS:
            assert set(constraint.operand_names()) <= operands, (op_type.name, constraint)
            assert set(constraint.prop_names()) <= props, (op_type.name, constraint)


def test_constraints_also_run_when_verifying() -> None:
    module = parse_module(
        mlc.context(),
        """func.func @f(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}""",
    )
    op = next(o for o in module.walk() if isinstance(o, graph.ConvOp))
    op.properties["group"] = IntegerAttr(0, 64)
    with pytest.raises(GraphError, match="group must be positive"):
        op.verify()


@irdl_op_definition
class _ScaleOp(GraphOp):
    """A test op: x * factor ** power, `power` 1 when absent."""

    name = "test.scale"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    factor = FloatProp()
    power = IntProp(default=1)
    pattern = IntsProp(default=(0,))
    CONSTRAINTS: ClassVar[Constraints] = (Positive("power"),)

    @classmethod
    def infer_result_types(cls, operand_types: list[TensorType], props: Self) -> list[TensorType]:
        assert isinstance(props.power, int)
        return [operand_types[0]]


def test_a_default_makes_a_property_optional() -> None:
    op = _ScaleOp.create([constant((2,))], factor=2.0)
    assert (op.factor, op.power, op.pattern) == (2.0, 1, (0,))
    assert "power" not in op.properties  # the default is not stored: the IR is unchanged
    op.verify()
    assert _ScaleOp.create([constant((2,))], factor=2.0, power=3).power == 3
    with pytest.raises(GraphError, match="power must be positive, got 0"):
        _ScaleOp.create([constant((2,))], factor=2.0, power=0)
    assert isinstance(_ScaleOp.factor, GraphProp)
    assert isinstance(op.factor_attr, FloatAttr)
    assert not isinstance(op.factor_attr, StringAttr)
