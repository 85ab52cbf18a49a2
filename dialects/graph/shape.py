"""Graph ops: shape group."""

from __future__ import annotations

from mlc.dialects.graph.base import GraphOp

SHAPE_OPS: list[type[GraphOp]] = []
