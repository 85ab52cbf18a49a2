"""Reference semantics (numpy) of the graph dialect: the registry, and one module per op
family, imported here so that each registers its ops before the registry is asked."""

from mlc.interpreters.graph import (  # noqa: F401  (each registers its reference semantics)
    elementwise,
    indexing,
    layout,
    nn,
    quant,
    reduce,
    shape,
    trees,
)
from mlc.interpreters.graph.registry import (
    evaluate,
    graph_functions,
    has_reference,
    reference,
    registered_ops,
)

__all__ = ["evaluate", "graph_functions", "has_reference", "reference", "registered_ops"]
