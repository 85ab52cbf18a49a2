"""The table of expression builders: graph op class -> function building its `Expression`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from xdsl.ir import Operation

from mlc.texpr.library.template import Expression

Builder = Callable[[Any], Expression]
F = TypeVar("F", bound=Builder)

BUILDERS: dict[type[Operation], Builder] = {}
#: the op classes whose expression depends on the values of constant operands (e.g. a
#: zero point known to be 0), not only on the op's properties and types
READS_CONSTANTS: set[type[Operation]] = set()


def expresses(*op_types: type[Operation], reads_constants: bool = False) -> Callable[[F], F]:
    """Register the decorated function as the expression builder of ``op_types``; with
    `reads_constants` if it looks at the values of constant operands."""

    def register(fn: F) -> F:
        for op_type in op_types:
            if op_type in BUILDERS:
                raise ValueError(f"expression of {op_type.name} registered twice")
            BUILDERS[op_type] = fn
            if reads_constants:
                READS_CONSTANTS.add(op_type)
        return fn

    return register
