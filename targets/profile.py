"""Per-kernel profiles of compiled models: `CompiledModel.profile(*inputs)`, `mlc profile`.

A model compiled with `profile=True` (`mlc-cpu-pipeline{profile=true}`, which runs
`llvm-profile-kernels`) writes a timestamp before and after every kernel call into
`@mlc_profile_ticks` and describes its calls in `@mlc_profile_sites`; `profile_native`
calls it `repeat` times and reads both after each call:

    prof = compiled.profile(x, repeat=50)
    print(prof.table())                       # kernels by median time, % of the model
    prof.save_chrome_trace("model.json")      # open in https://ui.perfetto.dev

Times are medians over the runs. `other` is the model's time outside kernel calls
(allocation, inline copies, the loop nests that were not outlined).
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlc.lowering.llvm_profile import SITES_GLOBAL, TICKS_GLOBAL

__all__ = ["KernelTime", "Profile", "ProfileError", "profile_native"]


class ProfileError(RuntimeError):
    """The model carries no profile instrumentation, or it is inconsistent."""


@dataclass(frozen=True)
class KernelTime:
    """One kernel call of the model: what it runs and its median time."""

    index: int
    label: str
    kernel: str
    flops: int
    bytes: int
    seconds: float
    #: every run's time, for the trace
    samples: tuple[float, ...] = ()

    @property
    def gflops(self) -> float | None:
        return self.flops / self.seconds / 1e9 if self.flops and self.seconds > 0 else None

    @property
    def gbytes_per_s(self) -> float | None:
        return self.bytes / self.seconds / 1e9 if self.bytes and self.seconds > 0 else None


@dataclass
class Profile:
    """Median time per kernel call over `runs` calls of the model."""

    model: str
    kernels: list[KernelTime]
    #: median time of the whole native call (entry to return)
    total_seconds: float
    runs: int
    threads: int
    #: per run: (start, [(kernel start, kernel end) ...], end) in nanoseconds
    raw: list[tuple[int, list[tuple[int, int]], int]] = field(default_factory=list)

    @property
    def other_seconds(self) -> float:
        """Time outside kernel calls (median of the per-run remainders)."""
        rests = [
            (end - start - sum(b - a for a, b in calls)) * 1e-9 for start, calls, end in self.raw
        ]
        return max(statistics.median(rests), 0.0) if rests else 0.0

    def by_label(self) -> list[KernelTime]:
        """The kernel calls, slowest first."""
        return sorted(self.kernels, key=lambda k: -k.seconds)

    def table(self, top: int | None = None) -> str:
        """A text table: kernels by median time, share of the model, GFLOP/s, GB/s."""
        total = self.total_seconds or 1e-30
        rows = self.by_label()[:top] if top else self.by_label()
        lines = [
            f"profile of @{self.model}: {self.runs} runs, {self.threads} thread(s), "
            f"median {self.total_seconds * 1e3:.3f} ms per call, {len(self.kernels)} kernel calls",
            f"{'#':>4} {'kernel':<44} {'ms':>9} {'%':>6} {'GFLOP/s':>9} {'GB/s':>8}",
        ]
        for k in rows:
            gf, gb = k.gflops, k.gbytes_per_s
            lines.append(
                f"{k.index:>4} {_clip(k.label, 44):<44} {k.seconds * 1e3:>9.4f} "
                f"{100 * k.seconds / total:>5.1f}% {_opt(gf):>9} {_opt(gb):>8}"
            )
        if top and len(self.kernels) > top:
            rest = sum(k.seconds for k in self.by_label()[top:])
            lines.append(
                f"{'':>4} {f'({len(self.kernels) - top} more)':<44} {rest * 1e3:>9.4f} "
                f"{100 * rest / total:>5.1f}%"
            )
        other = self.other_seconds
        lines.append(
            f"{'':>4} {'other (outside kernels)':<44} {other * 1e3:>9.4f} {100 * other / total:>5.1f}%"
        )
        return "\n".join(lines)

    def chrome_trace(self) -> dict[str, Any]:
        """Every run as Chrome trace events (`ph: X`, microseconds): the model call and its
        kernel calls, viewable in Perfetto or chrome://tracing."""
        events: list[dict[str, Any]] = []
        origin = self.raw[0][0] if self.raw else 0
        for run, (start, calls, end) in enumerate(self.raw):
            events.append(_event(f"@{self.model}", "model", start, end, origin, {"run": run}))
            for k, (a, b) in zip(self.kernels, calls):
                args = {"kernel": k.kernel, "flops": k.flops, "bytes": k.bytes, "run": run}
                events.append(_event(k.label, "kernel", a, b, origin, args))
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def save_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w") as f:
            json.dump(self.chrome_trace(), f)


def _event(
    name: str, cat: str, start: int, end: int, origin: int, args: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "cat": cat,
        "ph": "X",
        "ts": (start - origin) / 1e3,
        "dur": (end - start) / 1e3,
        "pid": 1,
        "tid": 1,
        "args": args,
    }


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _opt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def read_sites(address: int) -> list[dict[str, Any]]:
    """The JSON site table at `address` (NUL-terminated)."""
    try:
        sites = json.loads(ctypes.string_at(address).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileError(f"@{SITES_GLOBAL} is not a site table: {e}") from None
    if not isinstance(sites, list):
        raise ProfileError(f"@{SITES_GLOBAL} is not a list")
    return sites


def profile_native(
    run: Callable[[], object],
    global_address: Callable[[str], int],
    model: str,
    *,
    repeat: int = 20,
    warmup: int = 2,
    threads: int = 1,
) -> Profile:
    """Call `run` `warmup` + `repeat` times and read the instrumentation of the model whose
    globals `global_address` finds after each timed call."""
    ticks_at, sites_at = global_address(TICKS_GLOBAL), global_address(SITES_GLOBAL)
    if not ticks_at or not sites_at:
        raise ProfileError(f"@{model} was not compiled with profile=True")
    sites = read_sites(sites_at)
    ticks = np.ctypeslib.as_array((ctypes.c_int64 * (2 + 2 * len(sites))).from_address(ticks_at))
    for _ in range(warmup):
        run()
    raw: list[tuple[int, list[tuple[int, int]], int]] = []
    for _ in range(max(1, repeat)):
        run()
        t = ticks.tolist()
        raw.append((t[0], [(t[2 + 2 * i], t[3 + 2 * i]) for i in range(len(sites))], t[1]))
    return _summarize(model, sites, raw, threads)


def _summarize(
    model: str,
    sites: Sequence[dict[str, Any]],
    raw: list[tuple[int, list[tuple[int, int]], int]],
    threads: int,
) -> Profile:
    kernels = []
    for i, site in enumerate(sites):
        samples = tuple((calls[i][1] - calls[i][0]) * 1e-9 for _, calls, _ in raw)
        kernels.append(
            KernelTime(
                i,
                str(site.get("label", "")),
                str(site.get("kernel", "")),
                int(site.get("flops", 0)),
                int(site.get("bytes", 0)),
                statistics.median(samples),
                samples,
            )
        )
    total = statistics.median((end - start) * 1e-9 for start, _, end in raw)
    return Profile(model, kernels, total, len(raw), threads, raw)
