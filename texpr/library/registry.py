"""The table of expression builders: graph op class -> function building its `Expression`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from xdsl.ir import Operation

from mlc.texpr.library.template import Expression

Builder = Callable[[Any], Expression]
F = TypeVar("F", bound=Builder)

BUILDERS: dict[type[Operation], Builder] = {}


def expresses(*op_types: type[Operation]) -> Callable[[F], F]:
    """Register the decorated function as the expression builder of ``op_types``."""

    def register(fn: F) -> F:
        for op_type in op_types:
            if op_type in BUILDERS:
                raise ValueError(f"expression of {op_type.name} registered twice")
            BUILDERS[op_type] = fn
        return fn

    return register
