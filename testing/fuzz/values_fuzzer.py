"""The run-time value fuzzer: small models (`value_models`) compiled once per case and
called on a few input sets full of NaN, infinities, extreme integers and out-of-range
indices; each call is compared with the reference semantics (`mlc.interpret`).

Per input set:

- both return: outputs compared with `mlc.testing.semantics.compare_outputs` (exact for
  integers; floats within the reduction-aware tolerance; NaN in the same places, the same
  infinities), a difference is a `mismatch`;
- the reference raises: the compiled model must raise a documented error too (e.g.
  `RuntimeCheckError` for an index out of range), else `mismatch`;
- the compiled model raises a documented error and the reference does not: `mismatch`;
- anything raises an undocumented exception type: `internal-error`.

The case's outcome is the worst over its input sets (`clean-error` when the model does
not import or compile, or when both sides rejected an input).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

import mlc
from mlc.testing.fuzz.arrays import decode_array, encode_array
from mlc.testing.fuzz.case import Case, Fuzzer, case_rng
from mlc.testing.fuzz.onnx_fuzzer import prepare_native, write_model
from mlc.testing.fuzz.outcomes import (
    ACCEPTED,
    CLEAN_ERROR,
    INTERNAL_ERROR,
    MISMATCH,
    clean_error_types,
    describe,
    exception_report,
    worst,
)
from mlc.testing.fuzz.value_models import TEMPLATES, draw_input, pick_template
from mlc.testing.semantics import compare_outputs, reduction_length

INPUT_SETS = 3
"""Input sets per case (the model is compiled once)."""


def _run(fn: Any, *args: Any) -> tuple[list[np.ndarray] | None, BaseException | None]:
    try:
        return fn(*args), None
    except Exception as e:
        return None, e


def check_call(reference: Any, compiled: Any, arrays: list[np.ndarray], k: int) -> tuple[str, str]:
    """(outcome, detail) of one input set. The reference may reject an input with a
    documented error or an `IndexError` (an index out of range)."""
    want, ref_error = _run(reference, *arrays)
    got, error = _run(compiled, *arrays)
    clean = clean_error_types()
    if ref_error is not None and not isinstance(ref_error, (*clean, IndexError)):
        return INTERNAL_ERROR, f"reference: {describe(ref_error)}"
    if error is not None and not isinstance(error, clean):
        return INTERNAL_ERROR, f"call: {describe(error)}"
    if ref_error is not None:
        if error is None:
            return (
                MISMATCH,
                f"the reference raised {describe(ref_error)}; the compiled model returned",
            )
        return CLEAN_ERROR, f"call: {describe(error)}"
    if error is not None:
        return MISMATCH, f"the compiled model raised {describe(error)}; the reference returned"
    assert want is not None and got is not None
    diffs = compare_outputs(want, got, k)
    if diffs:
        d = diffs[0]
        at = "; ".join(f"at {list(p)}: expected {w!r}, got {g!r}" for p, w, g in d.elements[:3])
        return MISMATCH, f"output #{d.index}: {d.message}: {at}"
    return ACCEPTED, ""


class ValuesFuzzer(Fuzzer):
    """Extreme run-time values through compiled models, against the interpreter."""

    name = "values"
    extension = ".onnx"
    native = True
    timeout = 30.0

    def prepare(self) -> None:
        prepare_native()

    def generate(self, seed: int, index: int) -> Case:
        rng = case_rng(self.name, seed, index)
        template = pick_template(rng)
        model, specs = TEMPLATES[template](rng)
        values = np.random.default_rng(rng.getrandbits(64))
        inputs = [
            [encode_array(draw_input(values, spec)) for spec in specs] for _ in range(INPUT_SETS)
        ]
        return Case(
            self.name,
            seed,
            index,
            model.SerializeToString(),
            source=template,
            mutations=[f"{n.op_type}{_attrs(n)}" for n in model.graph.node],
            inputs=inputs,
        )

    def execute(self, case: Case, workdir: Path) -> dict[str, Any]:
        warnings.simplefilter("ignore")  # numpy's overflow / invalid-value warnings
        path = write_model(case, workdir)
        try:
            module = mlc.import_onnx(str(path))
        except BaseException as e:
            return exception_report(e, "import")  # (the templates all import)
        try:
            compiled = mlc.compile(module)
        except BaseException as e:
            return exception_report(e, "compile")
        k = reduction_length(module)
        results = []
        for n, encoded in enumerate(case.inputs):
            arrays = [decode_array(a) for a in encoded]
            outcome, detail = check_call(lambda *a: mlc.interpret(module, *a), compiled, arrays, k)
            results.append((outcome, f"input set {n}: {detail}" if detail else ""))
        outcome = worst([o for o, _ in results])
        detail = next((d for o, d in results if o == outcome), "")
        return {"outcome": outcome, "detail": detail.replace(str(workdir), "<dir>")}


def _attrs(node: Any) -> str:
    from onnx import helper

    if not len(node.attribute):
        return ""
    items = ", ".join(f"{a.name}={helper.get_attribute_value(a)!r}" for a in node.attribute)
    return "{" + items + "}"
