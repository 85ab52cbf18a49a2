"""The ONNX fuzzer: mutated seed models (`onnx_seeds`) through `mlc.import_onnx`, then,
when they import, `mlc.compile` and one call on random inputs.

A case is the serialized mutant (now and then also truncated or with a flipped byte).
The child writes it as `model.onnx` next to a 64-byte `data.bin` (for external-data
references that should resolve) and imports it by path, so that relative external-data
locations are resolved against the case's own directory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import mlc
from mlc.testing.fuzz.arrays import MAX_ELEMENTS, random_array
from mlc.testing.fuzz.case import Case, Fuzzer, case_rng
from mlc.testing.fuzz.onnx_mutations import mutate
from mlc.testing.fuzz.onnx_seeds import SEEDS
from mlc.testing.fuzz.outcomes import ACCEPTED, exception_report

DATA_FILE = "data.bin"


def prepare_native() -> None:
    """Import (without running anything) what a child compiles and runs with."""
    import mlc.interpreters
    import mlc.parser.onnx
    import mlc.targets.codegen
    import mlc.targets.compiled
    import mlc.targets.cpu  # noqa: F401
    from mlc.registry import all_pass_factories

    for factory in all_pass_factories().values():
        factory()


def write_model(case: Case, workdir: Path) -> Path:
    path = workdir / "model.onnx"
    path.write_bytes(case.data)
    (workdir / DATA_FILE).write_bytes(bytes(range(64)))
    return path


class OnnxFuzzer(Fuzzer):
    """Mutated ONNX models through the importer, the compiler and one call."""

    name = "onnx"
    extension = ".onnx"
    native = True
    timeout = 30.0

    def prepare(self) -> None:
        prepare_native()

    def generate(self, seed: int, index: int) -> Case:
        rng = case_rng(self.name, seed, index)
        source = rng.choice(sorted(SEEDS))
        model = SEEDS[source]()
        applied = mutate(rng, model)
        data = model.SerializeToString()
        if rng.random() < 0.05:
            data = data[: rng.randrange(len(data))]
            applied.append(f"bytes truncated to {len(data)}")
        elif rng.random() < 0.05:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
            applied.append(f"byte {i} changed")
        return Case(self.name, seed, index, data, source=source, mutations=applied)

    def execute(self, case: Case, workdir: Path) -> dict[str, Any]:
        report = self._run(case, write_model(case, workdir))
        report["detail"] = report["detail"].replace(str(workdir), "<dir>")
        return report

    def _run(self, case: Case, path: Path) -> dict[str, Any]:
        try:
            module = mlc.import_onnx(str(path))
        except BaseException as e:
            return exception_report(e, "import")
        try:
            compiled = mlc.compile(module)
        except BaseException as e:
            return exception_report(e, "compile")
        sizes = [math.prod(s.shape) for s in compiled.inputs]
        if sum(sizes) > MAX_ELEMENTS:
            return {"outcome": ACCEPTED, "detail": f"call skipped: {sum(sizes)} input elements"}
        rng = np.random.default_rng([case.seed, case.index])
        arrays = [random_array(rng, s.shape, s.dtype) for s in compiled.inputs]
        try:
            compiled(*arrays)
        except BaseException as e:
            return exception_report(e, "call")
        return {"outcome": ACCEPTED, "detail": ""}
