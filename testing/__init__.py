"""mlc.testing: property testing for rewrites (strategies, semantics checks, bisection),
the conformance harness and the coverage contract. See docs/testing.md."""

from mlc.testing.bisect import BisectResult, bisect_semantics
from mlc.testing.schedules import random_schedule, schedules
from mlc.testing.semantics import (
    Counterexample,
    SemanticsError,
    Tolerance,
    assert_preserves_semantics,
    check_regression,
    read_regression,
    tolerance_for,
    write_regression,
)
from mlc.testing.strategies import (
    GRAPH_OP_GENERATORS,
    KernelCase,
    OpGenerator,
    Program,
    ProgramBuilder,
    arrays_for,
    graph_programs,
    inputs_for,
    kernel_modules,
)

__all__ = [
    "GRAPH_OP_GENERATORS",
    "BisectResult",
    "Counterexample",
    "KernelCase",
    "OpGenerator",
    "Program",
    "ProgramBuilder",
    "SemanticsError",
    "Tolerance",
    "arrays_for",
    "assert_preserves_semantics",
    "bisect_semantics",
    "check_regression",
    "graph_programs",
    "inputs_for",
    "kernel_modules",
    "random_schedule",
    "schedules",
    "read_regression",
    "tolerance_for",
    "write_regression",
]
