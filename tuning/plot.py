"""Tuning curves: the best time measured so far per kernel as trials go on, against the
default schedule's time, and the model's estimated speed-up (`mlc tune --plot`).

    recorder = CurveRecorder()
    report = tune("model.onnx", db="tuning.db", on_record=recorder.record)
    plot_curves(recorder.curves(), "tuning.png")

The curves are collected from `tune`'s `on_record` callback, so they exist for whatever
was measured when a run is interrupted. A trial is the first measurement of a trace in
the run: invalid candidates (never measured) are not trials, and neither are the
confirmation measurements after a task's search (they measure again traces that
already have a time: `TaskResult.times`, this run's or the database's). The best-so-far
curve is the running minimum of single measurements; the default's line and the final
best are medians (`TaskResult`), as in `TuneReport.table`.

matplotlib is optional (the `plot` extra: `pip install 'mlc[plot]'`) and imported only
when checking or drawing; figures are drawn on the Agg canvas directly (no pyplot, no
display, no change to matplotlib's global backend).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.tuning.target import target_id

if TYPE_CHECKING:
    from mlc.tuning.database import TuningRecord
    from mlc.tuning.search import TaskResult

__all__ = [
    "CurveRecorder",
    "KernelCurve",
    "MatplotlibMissingError",
    "check_plot_path",
    "confirmed_model_speedup",
    "model_speedup_curve",
    "plot_curves",
    "require_matplotlib",
]


class MatplotlibMissingError(ImportError):
    """Plotting was asked for but matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise `MatplotlibMissingError` unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MatplotlibMissingError(
            "plotting tuning curves needs matplotlib: pip install 'mlc[plot]'"
        ) from None


def check_plot_path(path: str | os.PathLike[str]) -> Path:
    """`path` as a `Path` if a plot can be written there: matplotlib installed
    (`MatplotlibMissingError` otherwise), its directory exists and its suffix is a format
    matplotlib writes (`ValueError` otherwise). Cheap: call it before tuning."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    formats = sorted(FigureCanvasAgg(Figure()).get_supported_filetypes())
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise ValueError(
            f"{out}: cannot tell the image format from the suffix; use one of "
            + ", ".join(f".{f}" for f in formats)
        )
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: no such directory")
    return out


@dataclass
class KernelCurve:
    """One task's trials, in the order they were measured."""

    name: str
    #: how often the model runs the kernel (its weight in the model's time)
    calls: int = 1
    #: per trial: the measured seconds; None if it failed (crash, wrong, timeout) or was
    #: measured on another target (a Ray node of another kind: no time for this one)
    times: list[float | None] = field(default_factory=list)
    #: the index in `times` of the default schedule's trial, if this run measured it
    default_trial: int | None = None
    #: the default schedule's time (median of its measurements), if measured
    default_seconds: float | None = None
    #: the best trace's time (median of its measurements) at the end
    best_seconds: float | None = None

    def best_so_far(self) -> list[float | None]:
        """The running minimum of the successful times (None before the first)."""
        best: float | None = None
        out: list[float | None] = []
        for t in self.times:
            if t is not None and (best is None or t < best):
                best = t
            out.append(best)
        return out


class CurveRecorder:
    """Collects `KernelCurve`s from `tune(..., on_record=recorder.record)`; times
    measured on a target other than `target` (default: this host's) are not times."""

    def __init__(self, target: str | None = None) -> None:
        self._target = target
        self._results: dict[str, TaskResult] = {}
        self._traces: dict[str, set[str]] = {}
        self._times: dict[str, list[float | None]] = {}
        self._default_trial: dict[str, int] = {}

    def record(self, result: TaskResult, record: TuningRecord) -> None:
        """`on_record`: note `record` if it is a trial (the first measurement of its
        trace; `result.times` does not have the trace yet: it is offered after this)."""
        if self._target is None:
            self._target = target_id()
        key = result.task.key
        self._results[key] = result
        traces = self._traces.setdefault(key, set())
        times = self._times.setdefault(key, [])
        if record.status == "invalid" or record.trace in traces or record.trace in result.times:
            return  # never measured, or a confirmation measurement
        traces.add(record.trace)
        if record.is_default:
            self._default_trial[key] = len(times)
        ok = record.status == "ok" and record.seconds is not None
        times.append(record.seconds if ok and record.target == self._target else None)

    def curves(self) -> list[KernelCurve]:
        """A curve per task seen so far, in the order they were tuned; the default and
        best times as the results have them now."""
        return [
            KernelCurve(
                name=r.task.name,
                calls=r.task.count,
                times=list(self._times[key]),
                default_trial=self._default_trial.get(key),
                default_seconds=r.default_seconds,
                best_seconds=r.best_seconds,
            )
            for key, r in self._results.items()
        ]

    def __len__(self) -> int:
        return len(self._results)


def model_speedup_curve(curves: Sequence[KernelCurve]) -> list[float]:
    """The model's estimated speed-up after each trial, the tasks' trials one after the
    other: sum over kernels of default x calls over sum of min(default, best so far) x
    calls. Kernels without a default time are left out; [] if none has one."""
    total = sum(c.default_seconds * c.calls for c in curves if c.default_seconds)
    if not total:
        return []
    now = total
    out: list[float] = []
    for c in curves:
        current = c.default_seconds
        for t in c.times:
            if current is not None and t is not None and t < current:
                now -= (current - t) * c.calls
                current = t
            out.append(total / now)
    return out


def confirmed_model_speedup(curves: Sequence[KernelCurve]) -> float | None:
    """The estimated speed-up from the final medians (as `TuneReport.model_speedup`)."""
    pairs = [(c.default_seconds, c.best_seconds, c.calls) for c in curves]
    pairs = [(d, b, n) for d, b, n in pairs if d and b]
    if not pairs:
        return None
    return sum(d * n for d, _, n in pairs) / sum(min(b, d) * n for d, b, n in pairs)


def _unit(seconds: Sequence[float]) -> tuple[float, str]:
    """A scale and unit for the times on an axis (from their median: outliers of a busy
    machine aside)."""
    typical = statistics.median(seconds) if seconds else 0.0
    if typical < 1e-3:
        return 1e6, "µs"
    if typical < 1.0:
        return 1e3, "ms"
    return 1.0, "s"


def _plot_kernel(ax: Any, curve: KernelCurve) -> None:
    from matplotlib.ticker import MaxNLocator

    trials = list(range(1, len(curve.times) + 1))
    values = [t for t in curve.times if t is not None]
    extra = [t for t in (curve.default_seconds, curve.best_seconds) if t is not None]
    scale, unit = _unit(values + extra)
    ok = [(i, t * scale) for i, t in zip(trials, curve.times) if t is not None]
    if ok:
        ax.scatter(*zip(*ok), s=8, color="0.65", label="measured", zorder=2)
    failed_at = [i for i, t in zip(trials, curve.times) if t is None]
    if failed_at:  # along the bottom edge: trials that failed (or timed elsewhere)
        ax.scatter(
            failed_at,
            [0.03] * len(failed_at),
            marker="x",
            s=14,
            color="C1",
            label="no time",
            transform=ax.get_xaxis_transform(),
            zorder=3,
        )
    first = curve.default_trial
    if first is not None and curve.times[first] is not None:
        ax.scatter(
            [first + 1], [curve.times[first] * scale], s=14, color="C3", label="default", zorder=3
        )
    best = [(i, b * scale) for i, b in zip(trials, curve.best_so_far()) if b is not None]
    if best:
        ax.step(*zip(*best), where="post", color="C0", label="best so far", zorder=3)
    if curve.default_seconds is not None:
        ax.axhline(
            curve.default_seconds * scale,
            color="C3",
            linestyle="--",
            label="default (median)",
            zorder=1,
        )
    if curve.best_seconds is not None and trials:
        ax.scatter(
            [trials[-1]],
            [curve.best_seconds * scale],
            marker="*",
            s=80,
            color="C2",
            label="best (median)",
            zorder=4,
        )
    title = curve.name + (f" (x{curve.calls})" if curve.calls > 1 else "")
    if curve.default_seconds and curve.best_seconds:
        title += f": {curve.default_seconds / min(curve.best_seconds, curve.default_seconds):.2f}x"
    ax.set_title(title, fontsize=9)
    failed = f" ({len(failed_at)} with no time)" if failed_at else ""
    ax.set_xlabel(f"trial{failed}", fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if values or extra:
        low, high = min(values + extra) * scale, max(values + extra) * scale
        if low > 0 and high / low > 10:  # outliers (a busy machine): keep the rest readable
            ax.set_yscale("log")
        else:
            pad = 0.05 * (high - low) or 0.05 * high or 1.0
            ax.set_ylim(max(0.0, low - pad), high + pad)
    if not trials:
        ax.text(0.5, 0.5, "no trials", ha="center", va="center", transform=ax.transAxes)


def _plot_model(ax: Any, curves: Sequence[KernelCurve], speedups: Sequence[float]) -> None:
    from matplotlib.ticker import MaxNLocator

    steps = list(range(1, len(speedups) + 1))
    ax.step(steps, speedups, where="post", color="C0", label="best so far")
    ax.axhline(1.0, color="C3", linestyle="--", label="default")
    start = 0
    for c in curves[:-1]:  # where each kernel's trials end
        start += len(c.times)
        ax.axvline(start + 0.5, color="0.85", linewidth=0.8, zorder=0)
    confirmed = confirmed_model_speedup(curves)
    if confirmed is not None and steps:
        ax.scatter([steps[-1]], [confirmed], marker="*", s=80, color="C2", label="medians")
    ax.set_title("estimated model speed-up", fontsize=9)
    ax.set_xlabel("trials, all kernels", fontsize=8)
    ax.set_ylabel("default / tuned", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="best")


def plot_curves(
    curves: Sequence[KernelCurve], path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Draw a subplot per kernel (measured times, best so far, the default's time, the
    final median best) and, for several kernels, one of the model's estimated speed-up
    (`model_speedup_curve`); write it to `path` (format from the suffix). Returns the
    path."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # the model's panel only where it says more than the one kernel's
    speedups = model_speedup_curve(curves) if len(curves) > 1 else []
    panels = len(curves) + (1 if speedups else 0)
    cols = max(1, min(3, panels))
    rows = max(1, math.ceil(panels / cols))
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, curve in zip(axes, curves):
        _plot_kernel(ax, curve)
    if speedups:
        _plot_model(axes[len(curves)], curves, speedups)
    for ax in axes[panels:]:
        ax.set_visible(False)
    if panels:
        axes[0].legend(fontsize=7, loc="best")
    kernels = f"{len(curves)} kernel" + ("" if len(curves) == 1 else "s")
    fig.suptitle(title or f"tuning curves: {kernels}", fontsize=10)
    out = Path(path)
    fig.savefig(out, dpi=100)
    return out
