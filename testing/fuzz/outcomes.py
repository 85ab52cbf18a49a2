"""Outcome classes of a fuzz case and how exceptions and CLI runs are classified."""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable

ACCEPTED = "accepted"
"""The target ran to the end (the input was valid, or invalid and not noticed)."""
CLEAN_ERROR = "clean-error"
"""A documented mlc error type, or a CLI exit status 1 with an `error:` message."""
INTERNAL_ERROR = "internal-error"
"""An unexpected Python exception type, or a CLI `internal error` / traceback."""
CRASH = "crash"
"""The child process died from a signal (or exited without reporting)."""
HANG = "hang"
"""The child process ran past the timeout and was killed."""
MISMATCH = "mismatch"
"""Compiled results differ from the reference (`mlc.interpret`), or one raised and the
other did not (values fuzzer only)."""

OUTCOMES: tuple[str, ...] = (ACCEPTED, CLEAN_ERROR, INTERNAL_ERROR, CRASH, HANG, MISMATCH)
FAILURES: frozenset[str] = frozenset({INTERNAL_ERROR, CRASH, HANG, MISMATCH})
"""The outcomes that are findings: their inputs are kept."""

_SEVERITY = {ACCEPTED: 0, CLEAN_ERROR: 1, MISMATCH: 2, INTERNAL_ERROR: 3, HANG: 4, CRASH: 5}


def worst(outcomes: list[str]) -> str:
    """The most severe of `outcomes` (`accepted` for none)."""
    return max(outcomes, key=_SEVERITY.__getitem__, default=ACCEPTED)


def clean_error_types() -> tuple[type[BaseException], ...]:
    """mlc's documented error types (and xDSL's diagnostics, which the parser, verifiers
    and schedule checks raise): an exception of one of these is a `clean-error`."""
    from xdsl.utils.exceptions import DiagnosticException, ParseError

    from mlc.dialects.graph.types import UnsupportedTypeError
    from mlc.dialects.tl import RuntimeCheckError
    from mlc.interpreters import InterpretError
    from mlc.lowering.arith_to_llvm import LlvmLoweringError
    from mlc.lowering.graph_to_tl import GraphToTlError
    from mlc.lowering.texpr_to_tl import TranslationError
    from mlc.parser.onnx import OnnxImportError
    from mlc.targets.compiled import InvalidInputError
    from mlc.targets.cpu import TargetError
    from mlc.targets.llvm_emit import EmitError
    from mlc.texpr.errors import TexprError
    from mlc.texpr.library.template import ExpressionError

    return (
        DiagnosticException,
        ParseError,
        OnnxImportError,
        InvalidInputError,
        RuntimeCheckError,
        InterpretError,
        UnsupportedTypeError,
        GraphToTlError,
        TranslationError,
        LlvmLoweringError,
        EmitError,
        TargetError,
        TexprError,
        ExpressionError,
    )


def one_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of `text` (with the next one when it ends with `:`, as a
    list of problems does), at most `limit` characters."""
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    if not lines:
        return ""
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        first += " " + lines[1]
    return first[:limit]


def describe(e: BaseException) -> str:
    """`Type: first line of the message`."""
    return f"{type(e).__name__}: {one_line(str(e))}".rstrip(": ")


def classify_exception(e: BaseException, stage: str = "") -> tuple[str, str]:
    """(outcome, detail) for an exception raised by the target at `stage`."""
    where = f"{stage}: " if stage else ""
    kind = CLEAN_ERROR if isinstance(e, clean_error_types()) else INTERNAL_ERROR
    return kind, where + describe(e)


def exception_report(e: BaseException, stage: str = "") -> dict[str, str]:
    """The report (`{"outcome", "detail"}`) of a target that raised `e` at `stage`;
    `SystemExit` and the like from inside mlc are internal errors. With `MLC_DEBUG` set,
    the traceback is printed to stderr."""
    if os.environ.get("MLC_DEBUG"):
        traceback.print_exception(e)
    if isinstance(e, Exception):
        outcome, detail = classify_exception(e, stage)
    else:
        outcome, detail = INTERNAL_ERROR, (f"{stage}: " if stage else "") + describe(e)
    return {"outcome": outcome, "detail": detail}


def guarded(fn: Callable[[], object], stage: str = "") -> dict[str, str]:
    """Run `fn` and report: `accepted`, or its exception classified."""
    try:
        fn()
    except BaseException as e:
        return exception_report(e, stage)
    return {"outcome": ACCEPTED, "detail": ""}


_PASS_FAILED = re.compile(r"pass '([^']*)' failed: (\w+)")


def clean_error_names() -> frozenset[str]:
    """The class names of `clean_error_types` and their subclasses' usual names."""
    return frozenset(t.__name__ for t in clean_error_types()) | {
        "VerifyException",
        "GraphError",
        "TlError",
        "ScheduleError",
        "IRDiagnostic",
        "PassFailedException",
    }


def classify_cli(status: int, stderr: str) -> tuple[str, str]:
    """(outcome, detail) of a CLI run (`mlc-opt`): status 0 is `accepted`; 1 with an
    `error:` message `clean-error`, unless the message is a traceback, an `internal
    error` or a pass that failed with an exception of a type mlc does not document."""
    for line in stderr.splitlines():
        if "Traceback" in line or "internal error" in line:
            return INTERNAL_ERROR, line.strip()[:300]
    if status == 0:
        return ACCEPTED, ""
    if status == 1:
        found = _PASS_FAILED.search(stderr)
        if found and found.group(2) not in clean_error_names():
            line = next(x for x in stderr.splitlines() if found.group(0) in x)
            return INTERNAL_ERROR, line[line.index("pass '") :][:300]
        for line in stderr.splitlines():
            if "error" in line:
                return CLEAN_ERROR, line.strip()[:300]
        return INTERNAL_ERROR, f"exit status 1 without an error message: {one_line(stderr)}"
    return INTERNAL_ERROR, f"exit status {status}: {one_line(stderr)}"
