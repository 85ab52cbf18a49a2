"""`expression_for` builds an expression once per op signature (name, properties, operand
and result types), except for ops whose expression reads constant operands."""

from __future__ import annotations

import numpy as np
from xdsl.ir import Block

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn, quant
from mlc.dialects.graph.types import element_type_from_numpy, tensor
from mlc.texpr.library import expression_for, signature

F32 = element_type_from_numpy(np.dtype(np.float32))


def _args(*shapes: tuple[int, ...]) -> tuple:
    return tuple(Block(arg_types=[tensor(s, F32) for s in shapes]).args)


def _conv(stride: int) -> nn.ConvOp:
    x, w = _args((1, 3, 8, 8), (4, 3, 3, 3))
    return nn.ConvOp.create(
        [x, w], strides=[stride, stride], pads=[1, 1, 1, 1], dilations=[1, 1], group=1
    )


def test_equal_signatures_share_one_expression() -> None:
    a, b = _conv(1), _conv(1)
    assert a.input is not b.input and signature(a) == signature(b)
    assert expression_for(a) is expression_for(b)


def test_another_property_or_type_is_another_expression() -> None:
    assert signature(_conv(1)) != signature(_conv(2))
    assert expression_for(_conv(1)) is not expression_for(_conv(2))
    (x,) = _args((2, 3))
    (y,) = _args((3, 2))
    assert expression_for(ew.ReluOp.create([x])) is not expression_for(ew.ReluOp.create([y]))


def _matmul_integer(zero_point: int) -> quant.MatMulIntegerOp:
    u8 = element_type_from_numpy(np.dtype(np.uint8))
    a, b = Block(arg_types=[tensor((2, 4), u8), tensor((4, 3), u8)]).args
    zp = ew.ConstantOp.from_array(np.array(zero_point, np.uint8))
    return quant.MatMulIntegerOp.create([a, b, zp.result, zp.result])


def test_an_expression_that_reads_constants_is_built_every_time() -> None:
    """matmul_integer drops a zero point known to be 0: same signature, other constants,
    other expressions."""
    zero, three = _matmul_integer(0), _matmul_integer(3)
    assert signature(zero) == signature(three)
    assert expression_for(zero).definition != expression_for(three).definition
