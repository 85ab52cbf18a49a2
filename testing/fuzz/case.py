"""Fuzz cases, their results, the fuzzer interface and the files a kept case is saved as.

A kept case is two files in the output directory: the raw input given to the target
(`<name>.mlir` / `<name>.onnx`, exactly the bytes that failed) and `<name>.json` with
everything else (fuzzer, seed, index, arguments, mutations, inputs as JSON values,
outcome). Nothing is unpickled or evaluated when a case is loaded.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

INPUT = "{input}"
"""In `Case.args`: where the path of the input file goes."""


@dataclass
class Case:
    """One generated input and how to run it."""

    fuzzer: str
    seed: int
    index: int
    data: bytes
    """The input given to the target: IR text or a serialized ONNX model."""
    args: list[str] = field(default_factory=list)
    """Command-line arguments (IR fuzzer); `INPUT` marks the input file."""
    source: str = ""
    """The corpus file or seed model the input was made from."""
    mutations: list[str] = field(default_factory=list)
    """What was changed, in order."""
    inputs: list[list[dict[str, Any]]] = field(default_factory=list)
    """Values fuzzer: input sets, each a list of encoded arrays (`encode_array`)."""

    @property
    def name(self) -> str:
        return f"{self.fuzzer}-s{self.seed}-{self.index:05d}"

    def meta(self) -> dict[str, Any]:
        """Everything but the data, as JSON values."""
        return {
            "fuzzer": self.fuzzer,
            "seed": self.seed,
            "index": self.index,
            "args": self.args,
            "source": self.source,
            "mutations": self.mutations,
            "inputs": self.inputs,
        }


@dataclass
class Result:
    """The outcome of one case."""

    case: Case
    outcome: str
    detail: str = ""
    seconds: float = 0.0
    saved: str | None = None
    """The JSON file the case was saved as, if it was kept."""

    def to_json(self) -> dict[str, Any]:
        meta = self.case.meta()
        del meta["inputs"]
        return {
            **meta,
            "outcome": self.outcome,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
            "saved": self.saved,
        }


def case_rng(fuzzer: str, seed: int, index: int) -> random.Random:
    """The random generator of case `index` of a run with `seed` (independent of the
    other cases, so a case can be made again from its seed and index alone)."""
    return random.Random(f"mlc.testing.fuzz:{fuzzer}:{seed}:{index}")


class Fuzzer(ABC):
    """A generator of cases (in the parent) and the code that runs one (in a child)."""

    name: ClassVar[str]
    extension: ClassVar[str]
    """The file extension of a saved input (`.mlir`, `.onnx`)."""
    native: ClassVar[bool] = False
    """Whether a case runs compiled native code (OpenMP: see `run.run_fuzzer`)."""
    timeout: ClassVar[float] = 10.0

    def prepare(self) -> None:  # noqa: B027 (optional hook)
        """In the parent, before the first fork: load corpora, import what children use."""

    @abstractmethod
    def generate(self, seed: int, index: int) -> Case:
        """Case `index` of the run with `seed` (deterministic)."""

    @abstractmethod
    def execute(self, case: Case, workdir: Path) -> dict[str, Any]:
        """Run `case` (in a child whose current directory is `workdir`); returns
        `{"outcome": ..., "detail": ...}`."""


def save_case(result: Result, directory: Path, extension: str) -> Path:
    """Write the case of `result` into `directory` (its input as `<name><extension>`);
    returns the JSON file."""
    directory.mkdir(parents=True, exist_ok=True)
    case = result.case
    data_path = directory / f"{case.name}{extension}"
    data_path.write_bytes(case.data)
    meta = {
        **case.meta(),
        "input_file": data_path.name,
        "outcome": result.outcome,
        "detail": result.detail,
    }
    path = directory / f"{case.name}.json"
    path.write_text(json.dumps(meta, indent=1, allow_nan=True) + "\n")
    return path


def load_case(path: Path | str) -> tuple[Case, dict[str, Any]]:
    """The case saved as `path` (its JSON file, or its input file next to the JSON) and
    the whole JSON record (outcome and detail included)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    meta = json.loads(path.read_text())
    case = Case(
        fuzzer=str(meta["fuzzer"]),
        seed=int(meta["seed"]),
        index=int(meta["index"]),
        data=(path.parent / meta["input_file"]).read_bytes(),
        args=[str(a) for a in meta.get("args", [])],
        source=str(meta.get("source", "")),
        mutations=[str(m) for m in meta.get("mutations", [])],
        inputs=meta.get("inputs", []),
    )
    return case, meta
