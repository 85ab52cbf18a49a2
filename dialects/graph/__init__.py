"""The `graph` dialect: tensor dataflow with value semantics and static shapes.

Ops are named after ONNX operators where they share ONNX's semantics; the reference
semantics (numpy) of every op lives in `mlc.interpreters.graph`. Ops read their
properties typed (`op.strides: tuple[int, ...]`) and declare shared checks as
`CONSTRAINTS` (`base.py`, `constraints.py`).
"""

from xdsl.ir import Dialect

from mlc.dialects.graph.base import (
    GraphError,
    GraphOp,
    GraphProp,
    PropertyView,
    broadcast_shapes,
    to_attr,
)
from mlc.dialects.graph.elementwise import *  # noqa: F403
from mlc.dialects.graph.elementwise import ELEMENTWISE_OPS
from mlc.dialects.graph.indexing import *  # noqa: F403
from mlc.dialects.graph.indexing import INDEXING_OPS
from mlc.dialects.graph.layout import *  # noqa: F403
from mlc.dialects.graph.layout import LAYOUT_OPS
from mlc.dialects.graph.nn import *  # noqa: F403
from mlc.dialects.graph.nn import NN_OPS
from mlc.dialects.graph.quant import *  # noqa: F403
from mlc.dialects.graph.quant import QUANT_OPS
from mlc.dialects.graph.reduce import *  # noqa: F403
from mlc.dialects.graph.reduce import REDUCE_OPS
from mlc.dialects.graph.shape import *  # noqa: F403
from mlc.dialects.graph.shape import SHAPE_OPS
from mlc.dialects.graph.trees import *  # noqa: F403
from mlc.dialects.graph.trees import TREE_OPS

ALL_OPS: list[type[GraphOp]] = [
    *ELEMENTWISE_OPS,
    *NN_OPS,
    *SHAPE_OPS,
    *REDUCE_OPS,
    *LAYOUT_OPS,
    *QUANT_OPS,
    *TREE_OPS,
    *INDEXING_OPS,
]

Graph = Dialect("graph", ALL_OPS, [])

__all__ = [
    "ALL_OPS",
    "Graph",
    "GraphError",
    "GraphOp",
    "GraphProp",
    "PropertyView",
    "broadcast_shapes",
    "to_attr",
]
