"""Fuzzers for mlc: mutated textual IR through `mlc-opt`, mutated ONNX models through the
importer and the compiler, and extreme run-time values through compiled models compared
with the reference interpreter. Each case runs in a forked child with a timeout and is
classified (`outcomes`); failing inputs are kept for `replay`. See docs/testing.md,
"Fuzzing", and `python -m mlc.testing.fuzz --help`.
"""

from mlc.testing.fuzz.case import Case, Fuzzer, Result, load_case, save_case
from mlc.testing.fuzz.child import ChildResult, run_child, run_children
from mlc.testing.fuzz.outcomes import (
    ACCEPTED,
    CLEAN_ERROR,
    CRASH,
    FAILURES,
    HANG,
    INTERNAL_ERROR,
    MISMATCH,
    OUTCOMES,
    classify_cli,
    classify_exception,
)
from mlc.testing.fuzz.report import Report, classify_child
from mlc.testing.fuzz.run import FUZZERS, make_fuzzer, replay, run_cases, run_fuzzer

__all__ = [
    "ACCEPTED",
    "CLEAN_ERROR",
    "CRASH",
    "FAILURES",
    "FUZZERS",
    "HANG",
    "INTERNAL_ERROR",
    "MISMATCH",
    "OUTCOMES",
    "Case",
    "ChildResult",
    "Fuzzer",
    "Report",
    "Result",
    "classify_child",
    "classify_cli",
    "classify_exception",
    "load_case",
    "make_fuzzer",
    "replay",
    "run_cases",
    "run_child",
    "run_children",
    "run_fuzzer",
    "save_case",
]
