"""Graph ops: nn group."""

from __future__ import annotations

from mlc.dialects.graph.base import GraphOp

NN_OPS: list[type[GraphOp]] = []
