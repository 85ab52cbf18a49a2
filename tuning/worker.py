"""What a measurement worker process runs: compile one candidate of a task, check its
output against the reference, time it.

    result = measure_candidate(request)      # request: MeasureRequest.to_json()

Requests and results are plain JSON-able dicts (strings and numbers), so nothing but
text crosses the process boundary; every result names the measuring machine's target
(`"target": target_id()`), so measurements from different machines are never mixed.
The same functions run in a local worker process or in a Ray actor (`ray_measure`).
The reference output (the interpreter's on the unscheduled kernel, or the default
schedule's for kernels too large to interpret) is computed once per task and seed in
each worker and kept for the next candidates.
"""

from __future__ import annotations

import ctypes
import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from mlc.dialects.tl import KernelOp
from mlc.interpreters.tl import run_buffers
from mlc.interpreters.tl.buffers import numpy_dtype
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.targets.compiled import aligned_empty, compile_model
from mlc.transforms.loops.schedule import Schedule
from mlc.tuning.target import target_id

__all__ = [
    "INTERPRETER_WORK",
    "ReplayTrace",
    "build_candidate",
    "compile_candidate",
    "init_worker",
    "measure_candidate",
    "random_inputs",
    "same_outputs",
    "time_candidate",
    "worker_ready",
]

#: kernels with at most this much work (`Task.work`) are checked against the interpreter
#: (vectorized numpy: a 256^3 matmul takes 0.4 s); larger ones against the default schedule
INTERPRETER_WORK = 1 << 27


@dataclass(frozen=True)
class ReplayTrace:
    """A `ScheduleStrategy` replaying `trace` on the task's first kernel (`t0`); other
    kernels it leaves to the plain lowering."""

    trace: str
    label: str = "t0"

    def schedule_kernel(self, sch: Schedule, kernel: KernelOp) -> None:
        if kernel.label.data == self.label:
            sch.replay(self.trace)


def init_worker(cache_dir: str) -> None:
    """Process initializer: a private compile cache, one thread unless asked; Ctrl-C
    ignored (it reaches the whole process group: the tuner stops its workers itself,
    and a worker must not print a traceback of its own)."""
    os.environ["MLC_CACHE_DIR"] = cache_dir
    os.environ["MLC_NUM_THREADS"] = "1"
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_ready() -> dict[str, Any]:
    """`{"pid": the process id (so a hung worker can be stopped by id), "target": this
    machine's target_id()}`, once the worker is up (importing this module, to unpickle
    its initializer, imported what measuring needs)."""
    return {"pid": os.getpid(), "target": target_id()}


def _parse(text: str) -> ModuleOp:
    return parse_module(make_context(), text, "<task>")


def random_inputs(module: ModuleOp, seed: int) -> list[np.ndarray]:
    """Seeded random arrays for the task function's buffer arguments."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import MemRefType

    f = next(op for op in module.ops if isinstance(op, func.FuncOp))
    rng = np.random.default_rng(seed)
    arrays = []
    for t in f.function_type.inputs.data:
        assert isinstance(t, MemRefType)
        shape, dtype = tuple(t.get_shape()), numpy_dtype(t.element_type)
        if dtype == np.bool_:
            arrays.append(rng.integers(0, 2, shape).astype(bool))
        elif np.issubdtype(dtype, np.integer):
            arrays.append(rng.integers(-5, 6, shape).astype(dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(dtype))
    return arrays


def same_outputs(got: list[np.ndarray], expected: list[np.ndarray]) -> str:
    """What differs between `got` and `expected` ("" if every buffer matches: floats
    within reassociation error, the rest exactly)."""
    for i, (g, e) in enumerate(zip(got, expected)):
        if g.shape != e.shape or g.dtype != e.dtype:
            return f"buffer #{i}: {g.dtype}{list(g.shape)} vs {e.dtype}{list(e.shape)}"
        if np.issubdtype(e.dtype, np.floating):
            wide = e.astype(np.float64)
            finite = np.abs(wide[np.isfinite(wide)])
            scale = max(1.0, float(finite.max()) if finite.size else 1.0)
            ok = np.allclose(
                g.astype(np.float64), wide, rtol=1e-3, atol=1e-3 * scale, equal_nan=True
            )
        else:
            ok = np.array_equal(g, e)
        if not ok:
            bad = int(np.sum(~np.isclose(g, e, equal_nan=True))) if e.size else 0
            return f"buffer #{i} differs from the reference in {bad} of {e.size} elements"
    return ""


def compile_candidate(module: ModuleOp, trace: str) -> Any:
    """The task module compiled with `trace` (no fusion: the task is already fused)."""
    return compile_model(module, schedule=ReplayTrace(trace), fuse=False, layout=None)


_REFERENCES: dict[tuple[str, int], tuple[list[np.ndarray], list[np.ndarray]]] = {}


def _reference(request: dict[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    key = (request["task_key"], request["seed"])
    if key not in _REFERENCES:
        module = _parse(request["module"])
        inputs = random_inputs(module, request["seed"])
        if request["work"] <= INTERPRETER_WORK or not request["reference_trace"]:
            expected = run_buffers(module, *inputs)
        else:
            expected = compile_candidate(module, request["reference_trace"]).run_buffers(*inputs)
        _REFERENCES.clear()  # one task at a time: keep memory bounded
        _REFERENCES[key] = (inputs, expected)
    return _REFERENCES[key]


def _time(compiled: Any, inputs: list[np.ndarray], repeat: int, min_run_s: float) -> list[float]:
    """Seconds per call: `repeat` runs of enough calls to last `min_run_s` each."""
    buffers = []
    for a in inputs:
        b = aligned_empty(a.shape, a.dtype)
        b[...] = a
        buffers.append(b)
    n = len(buffers)
    fn = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * n))(
        compiled.engine.function_address(compiled.name)
    )
    args = [b.ctypes.data for b in buffers]
    fn(*args)  # warm up
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn(*args)
        elapsed = time.perf_counter() - start
        if elapsed >= min_run_s or number >= 1 << 20:
            break
        number *= 2 if elapsed <= 0 else max(2, min(100, int(min_run_s / elapsed) + 1))
    runs = [elapsed / number]
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(number):
            fn(*args)
        runs.append((time.perf_counter() - start) / number)
    return runs


_BUILT: dict[int, tuple[Any, list[np.ndarray], dict[str, Any]]] = {}


def build_candidate(request: dict[str, Any]) -> dict[str, Any]:
    """Compile one candidate (`MeasureRequest.to_json()` plus a `token`) and check its
    output; keep it for `time_candidate(token)`. Returns `{"status": "built" | "wrong" |
    "crash", "error", "compile_s", "target"}` (an exception compiling or running it is a
    "crash")."""
    return {**_build(request), "target": target_id()}


def time_candidate(token: int) -> dict[str, Any]:
    """Time the candidate `build_candidate` kept under `token` (and forget it): `{"status":
    "ok", "seconds": the median, "runs", "target"}`."""
    return {**_time_built(token), "target": target_id()}


def _build(request: dict[str, Any]) -> dict[str, Any]:
    try:
        inputs, expected = _reference(request)
        start = time.perf_counter()
        compiled = compile_candidate(_parse(request["module"]), request["trace"])
        compile_s = time.perf_counter() - start
        compiled.num_threads = (os.cpu_count() or 1) if request["parallel"] else 1
        problem = same_outputs(compiled.run_buffers(*inputs), expected)
    except Exception as e:  # a compiler error on this candidate: recorded, never raised
        return {"status": "crash", "error": f"{type(e).__name__}: {e}"[:2000]}
    if problem:
        return {"status": "wrong", "error": problem, "compile_s": compile_s}
    _BUILT[request.get("token", 0)] = (compiled, inputs, request)
    return {"status": "built", "compile_s": compile_s}


def _time_built(token: int) -> dict[str, Any]:
    entry = _BUILT.pop(token, None)
    if entry is None:
        return {"status": "crash", "error": f"no built candidate #{token} in this worker"}
    compiled, inputs, request = entry
    try:
        runs = _time(compiled, inputs, request["repeat"], request["min_run_s"])
    except Exception as e:
        return {"status": "crash", "error": f"{type(e).__name__}: {e}"[:2000]}
    return {"status": "ok", "seconds": statistics.median(runs), "runs": runs}


def measure_candidate(request: dict[str, Any]) -> dict[str, Any]:
    """`build_candidate` then `time_candidate`, in this process: `{"status": "ok" |
    "wrong" | "crash", "seconds", "runs", "error", "compile_s", "target"}`."""
    built = build_candidate({**request, "token": -1})
    if built["status"] != "built":
        return built
    return {**time_candidate(-1), "compile_s": built["compile_s"]}
