"""Graph ops: reduce group."""

from __future__ import annotations

from mlc.dialects.graph.base import GraphOp

REDUCE_OPS: list[type[GraphOp]] = []
