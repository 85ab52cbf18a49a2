"""Reference semantics (numpy) of the graph dialect."""

from mlc.interpreters.graph.registry import (
    evaluate,
    graph_functions,
    has_reference,
    reference,
    registered_ops,
)

__all__ = ["evaluate", "graph_functions", "has_reference", "reference", "registered_ops"]
