"""The runtime of a model wheel built by `mlc package`: ctypes and numpy, nothing else.

This file is copied verbatim into every wheel (as `<name>/_mlc_runtime.py`), so it imports
neither mlc nor llvmlite, and it runs on Python 3.9 and later. mlc's server loads wheels
with it too (`mlc.deploy.backends`).

    model = Model("site-packages/resnet")       # the directory holding mlc_model.json
    model.input_specs                           # [TensorSpec('image', float32, (None, 3, 32, 32))]
    (y,) = model.run(x)                         # numpy in, numpy out; any batch size

A wheel holds one shared library per compiled batch size (`lib/<name>_b<N>.so`, the C
header and mlc's manifest beside it). A call with `n` rows runs as chunks of those sizes
(`plan_chunks`: exact fits, largest first; a remainder smaller than every size is
zero-padded), which assumes rows are independent (true of inference-mode models; every
batching server assumes it).

Before any library is `dlopen`ed, `Model` checks that this machine is the wheel's
(`platform.machine()`) and that its CPU has every instruction-set feature the code was
compiled for (the `flags` line of `/proc/cpuinfo`; `MLC_CPUINFO` names another file, for
tests), and that each library has the sha256 recorded at build time: a wheel built for an
AVX-512 machine refuses to load on an AVX2 one with `UnsupportedCpuError` (an
`ImportError`) instead of dying on an illegal instruction.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import platform
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "METADATA_FILE",
    "InvalidInputError",
    "Model",
    "ModelLoadError",
    "TensorSpec",
    "UnsupportedCpuError",
    "check_cpu",
    "cpu_flags",
    "plan_chunks",
    "run_in_chunks",
]

#: the wheel's metadata, next to this module in the package directory
METADATA_FILE = "mlc_model.json"
METADATA_FORMAT = "mlc-wheel"
METADATA_VERSION = 1
#: the library signature format this runtime calls (`mlc.targets.aot`)
SIGNATURE_VERSION = 2

#: a batch of rows as one array per input -> one array per output
BatchFn = Callable[[list[np.ndarray]], list[np.ndarray]]


class ModelLoadError(ImportError):
    """The wheel's libraries cannot be loaded here (corrupt, wrong machine, no libgomp)."""


class UnsupportedCpuError(ModelLoadError):
    """This CPU lacks an instruction-set feature the model was compiled for."""


class InvalidInputError(ValueError):
    """An input that does not match the model's input specs."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, numpy dtype and shape (`None`: the batch dimension,
    any size from 1 up)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    def __str__(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype.name, "shape": list(self.shape)}

    @staticmethod
    def from_json(d: dict[str, Any]) -> TensorSpec:
        return TensorSpec(str(d["name"]), numpy_dtype(str(d["dtype"])), tuple(d["shape"]))


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype named `name` (bfloat16 needs the ml_dtypes package)."""
    if name == "bfloat16":
        import ml_dtypes  # only models with bfloat16 inputs or outputs need it

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


# -- the CPU check --------------------------------------------------------------------------


def cpu_flags(path: str | None = None) -> frozenset | None:
    """The CPU's feature flags from `/proc/cpuinfo` (x86 `flags`, Arm `Features`), or the
    file `MLC_CPUINFO` names; None where there is no such file."""
    where = path or os.environ.get("MLC_CPUINFO") or "/proc/cpuinfo"
    try:
        with open(where, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() in ("flags", "features"):
                    return frozenset(value.split())
    except OSError:
        return None
    return frozenset()


def check_cpu(metadata: dict[str, Any], flags: frozenset | None = None) -> None:
    """Raise `UnsupportedCpuError` unless this machine can run the code `metadata`
    describes: the same architecture and every required CPU flag."""
    name = metadata.get("name", "model")
    machine = metadata.get("machine")
    if machine and platform.machine().lower() not in _aliases(machine):
        raise UnsupportedCpuError(
            f"{name}: compiled for {machine} ({metadata.get('triple')}), this machine is "
            f"{platform.machine()}; build the wheel on (or for) this machine with mlc package"
        )
    required = list(metadata.get("required_cpu_flags", []))
    have = cpu_flags() if flags is None else flags
    if have is None:
        warnings.warn(
            f"{name}: cannot read the CPU's features (no /proc/cpuinfo): not checking that "
            f"this CPU has {', '.join(required)}",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    missing = [f for f in required if f not in have]
    if missing:
        raise UnsupportedCpuError(
            f"{name}: this CPU lacks {', '.join(missing)}, which the model was compiled for "
            f"(CPU '{metadata.get('cpu') or 'generic'}' on {metadata.get('triple')}); running "
            "it would fault on an illegal instruction. Rebuild the wheel on this machine, or "
            "for a baseline both machines have: mlc package --cpu x86-64-v2 (or -v3)"
        )


def _aliases(machine: str) -> tuple[str, ...]:
    machine = machine.lower()
    same = {"x86_64": ("x86_64", "amd64"), "aarch64": ("aarch64", "arm64")}
    return same.get(machine, (machine,))


# -- batches --------------------------------------------------------------------------------


def plan_chunks(
    rows: int, sizes: Sequence[int], costs: dict[int, float] | None = None
) -> list[tuple[int, int, int]]:
    """How to run `rows` rows with libraries compiled for batch `sizes`: a list of (first
    row, rows taken, batch size run) whose summed cost is least (`costs`: size -> the cost
    of one run; by default the size, a constant cost per row, so that exact fits win and
    padding with zero rows only fills a remainder smaller than every size); ties go to
    fewer runs, then to larger sizes first."""
    if rows < 1:
        raise ValueError(f"a batch needs at least one row, got {rows}")
    ordered = sorted(set(sizes), reverse=True)
    cost = {s: float(s) for s in ordered} if costs is None else costs
    best: list[tuple[float, int]] = [(0.0, 0)]  # (cost, runs) for 0, 1, ... rows
    choice: list[int] = [0]
    for n in range(1, rows + 1):
        options = [
            (cost[s] + best[max(0, n - s)][0], best[max(0, n - s)][1] + 1, -s) for s in ordered
        ]
        c, runs, neg = min(options)
        best.append((c, runs))
        choice.append(-neg)
    plan, start = [], 0
    while start < rows:
        size = choice[rows - start]
        take = min(size, rows - start)
        plan.append((start, take, size))
        start += take
    return plan


def run_in_chunks(
    fns: dict[int, BatchFn], inputs: Sequence[np.ndarray], costs: dict[int, float] | None = None
) -> list[np.ndarray]:
    """Run `inputs` (each with the same number of rows first) through `fns` (batch size ->
    function of exactly that batch) as `plan_chunks` says; the outputs concatenated."""
    rows = int(inputs[0].shape[0])
    plan = plan_chunks(rows, list(fns), costs)
    if len(plan) == 1 and plan[0][2] == rows:
        return fns[rows](list(inputs))
    parts: list[list[np.ndarray]] = []
    for start, take, size in plan:
        chunk = [x[start : start + take] for x in inputs]
        if take < size:  # zero rows up to the compiled size; their outputs are dropped
            chunk = [
                np.concatenate([c, np.zeros((size - take, *c.shape[1:]), c.dtype)]) for c in chunk
            ]
        parts.append([y[:take] for y in fns[size](chunk)])
    return [np.concatenate(ys) for ys in zip(*parts)]


# -- one shared library -----------------------------------------------------------------------


def _aligned_empty(shape: Sequence[int], dtype: np.dtype, alignment: int) -> np.ndarray:
    n = math.prod(shape) * dtype.itemsize
    raw = np.empty(n + alignment, np.uint8)
    offset = -raw.__array_interface__["data"][0] % alignment
    return raw[offset : offset + n].view(dtype).reshape(tuple(shape))


class _Library:
    """One mlc shared library: checked against its recorded sha256, `dlopen`ed, called on
    its inputs (aligned copies of unaligned ones; serialized: the thread count and
    status word are the library's)."""

    def __init__(self, path: Path, record: dict[str, Any], num_threads: int) -> None:
        self.path = path
        data = _read(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest != record.get("sha256"):
            raise ModelLoadError(
                f"{path}: the library does not match the sha256 recorded in {METADATA_FILE} "
                "(corrupted or modified since the wheel was built); reinstall the wheel"
            )
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as e:
            hint = " (install libgomp: apt install libgomp1)" if "gomp" in str(e) else ""
            raise ModelLoadError(f"{path}: cannot load the library: {e}{hint}") from None
        raw = ctypes.c_char.in_dll(self._lib, "mlc_signature")
        signature = json.loads(ctypes.string_at(ctypes.addressof(raw)).decode())
        if signature != record.get("signature") or signature.get("version") != SIGNATURE_VERSION:
            raise ModelLoadError(f"{path}: its embedded signature differs from {METADATA_FILE}")
        self.signature = signature
        self.alignment = int(signature["alignment"])
        self.inputs = [(numpy_dtype(b["dtype"]), tuple(b["shape"])) for b in signature["inputs"]]
        self.outputs = [(numpy_dtype(b["dtype"]), tuple(b["shape"])) for b in signature["outputs"]]
        n = len(self.inputs) + len(self.outputs)
        self._fn = ctypes.CFUNCTYPE(ctypes.c_int64, *([ctypes.c_void_p] * n))(
            ctypes.cast(self._lib[signature["entry"]], ctypes.c_void_p).value
        )
        checks = signature.get("checks") or {}
        self._messages: list[str] = list(checks.get("messages") or [])
        status = checks.get("status")
        self._status = ctypes.c_int64.in_dll(self._lib, status) if status else None
        self._lock = threading.Lock()
        threads = signature.get("num_threads")
        if threads:
            setter = self._lib[threads["set"]]
            setter.restype, setter.argtypes = None, [ctypes.c_int32]
            setter(int(num_threads))

    def __call__(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        args = []
        for a, (dtype, shape) in zip(arrays, self.inputs):
            aligned = a.ctypes.data % self.alignment == 0 and a.flags.c_contiguous
            if aligned and a.size and a.dtype == dtype and a.shape == tuple(shape):
                args.append(a)  # inputs are only read: no copy needed
                continue
            buf = _aligned_empty(shape, dtype, self.alignment)
            buf[...] = a
            args.append(buf)
        results = [_aligned_empty(s, d, self.alignment) for d, s in self.outputs]
        with self._lock:
            if self._status is not None:
                self._status.value = 0
            code = self._fn(*[b.ctypes.data for b in (*args, *results)])
            if self._status is not None:
                code, self._status.value = code or self._status.value, 0
        if code:
            known = 0 < code <= len(self._messages)
            message = self._messages[code - 1] if known else f"run-time check #{code}"
            text = f"{self.path.name}: {message}; the outputs were discarded"
            raise MemoryError(text) if "out of memory" in message else InvalidInputError(text)
        return results


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the library ({e.strerror})") from None


# -- the model ------------------------------------------------------------------------------------


class Model:
    """A packaged model: its libraries (one per compiled batch size), loaded once the CPU
    and every library's digest check out; `run(*inputs)` -> one array per output."""

    def __init__(self, directory: Any = None, *, num_threads: int | None = None) -> None:
        self.directory = Path(directory) if directory is not None else Path(__file__).parent
        where = self.directory / METADATA_FILE
        try:
            self.metadata: dict[str, Any] = json.loads(where.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"{where}: cannot read the model's metadata ({e})") from None
        if (
            self.metadata.get("format") != METADATA_FORMAT
            or self.metadata.get("version") != METADATA_VERSION
        ):
            raise ModelLoadError(f"{where}: not an {METADATA_FORMAT} v{METADATA_VERSION} file")
        check_cpu(self.metadata)
        self.name: str = self.metadata["name"]
        self.input_specs = [TensorSpec.from_json(d) for d in self.metadata["inputs"]]
        self.output_specs = [TensorSpec.from_json(d) for d in self.metadata["outputs"]]
        #: whether the first dimension of every input and output is a batch dimension
        self.batched: bool = bool(self.metadata["batched"])
        if num_threads is None:
            env = os.environ.get("MLC_NUM_THREADS", "").strip()
            num_threads = int(env) if env.isdigit() else 0
        self._libraries: dict[int, _Library] = {
            int(rec["batch_size"]): _Library(self.directory / rec["file"], rec, num_threads)
            for rec in self.metadata["libraries"]
        }

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes a library was compiled for (others run as chunks of these)."""
        return sorted(self._libraries)

    def check_inputs(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        """The inputs as C-contiguous arrays, or `InvalidInputError` naming the bad one."""
        if len(inputs) != len(self.input_specs):
            names = ", ".join(str(s) for s in self.input_specs)
            raise InvalidInputError(f"{self.name} takes {len(inputs)} inputs ({names})")
        rows = None
        checked = []
        for a, spec in zip(inputs, self.input_specs):
            if not isinstance(a, np.ndarray):
                raise InvalidInputError(f"input '{spec.name}' must be a numpy array ({spec})")
            if a.dtype != spec.dtype:
                raise InvalidInputError(
                    f"input '{spec.name}' must have dtype {spec.dtype}, got {a.dtype} "
                    f"(x.astype(np.{spec.dtype.name}))"
                )
            ok = a.ndim == len(spec.shape) and all(
                d is None or d == n for d, n in zip(spec.shape, a.shape)
            )
            if ok and self.batched:
                ok = a.shape[0] >= 1 and rows in (None, a.shape[0])
                rows = a.shape[0]
            if not ok:
                raise InvalidInputError(
                    f"input '{spec.name}' must have shape {_shape(spec.shape)}, got "
                    f"{list(a.shape)}" + (" (the same batch size for every input)" if rows else "")
                )
            checked.append(np.ascontiguousarray(a))
        return checked

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """The outputs (one array each) for `inputs` (one array each, in `input_specs`
        order; with a batch dimension any number of rows)."""
        arrays = self.check_inputs(inputs)
        if not self.batched:
            return self._libraries[self.batch_sizes[0]](arrays)
        return run_in_chunks(dict(self._libraries), arrays)

    __call__ = run

    def batch_functions(self) -> dict[int, BatchFn]:
        """Batch size -> the library compiled for it (inputs already checked)."""
        return dict(self._libraries)

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.input_specs))
        outs = ", ".join(map(str, self.output_specs))
        return f"<{self.name} ({ins}) -> ({outs}), batch sizes {self.batch_sizes}>"


def _shape(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"
