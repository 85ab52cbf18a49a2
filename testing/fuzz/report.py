"""A run's report (counts, findings grouped by message, JSON) and the classification of a
finished child."""

from __future__ import annotations

import re
import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mlc.testing.fuzz.case import Case, Result
from mlc.testing.fuzz.child import ChildResult
from mlc.testing.fuzz.outcomes import CRASH, FAILURES, HANG, INTERNAL_ERROR, OUTCOMES


@dataclass
class Report:
    """The results of a run."""

    fuzzer: str
    seed: int
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        c = Counter(r.outcome for r in self.results)
        return {o: c[o] for o in OUTCOMES if c[o]}

    def failures(self) -> list[Result]:
        return [r for r in self.results if r.outcome in FAILURES]

    def to_json(self) -> dict[str, Any]:
        return {
            "fuzzer": self.fuzzer,
            "seed": self.seed,
            "cases": len(self.results),
            "seconds": round(self.seconds, 2),
            "counts": self.counts(),
            "results": [r.to_json() for r in self.results],
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Report:
        results = [
            Result(
                Case(
                    r["fuzzer"], r["seed"], r["index"], b"", r["args"], r["source"], r["mutations"]
                ),
                r["outcome"],
                r["detail"],
                r["seconds"],
                r["saved"],
            )
            for r in data["results"]
        ]
        return Report(data["fuzzer"], data["seed"], results, data["seconds"])

    def summary(self) -> str:
        """Counts, then the failures grouped by outcome and detail."""
        counts = ", ".join(f"{n} {o}" for o, n in self.counts().items())
        lines = [f"{self.fuzzer}: {len(self.results)} cases in {self.seconds:.1f} s: {counts}"]
        groups: dict[tuple[str, str], list[Result]] = {}
        for r in self.failures():
            groups.setdefault((r.outcome, _signature(r.detail)), []).append(r)
        for (outcome, _), rs in sorted(groups.items(), key=lambda g: -len(g[1])):
            first = rs[0]
            where = f" (e.g. {first.saved})" if first.saved else f" (e.g. case {first.case.index})"
            lines.append(f"  {len(rs):4d} {outcome}: {first.detail}{where}")
        return "\n".join(lines)


def _signature(detail: str) -> str:
    """`detail` without the numbers and quoted names that vary between cases."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "#", detail)[:120]


def classify_child(child: ChildResult, timeout: float) -> tuple[str, str]:
    """(outcome, detail) of a finished child."""
    if child.timed_out:
        return HANG, f"no result after {timeout:g} s"
    if child.signal is not None:
        name = signal.Signals(child.signal).name
        frame = next(
            (x.strip() for x in child.stderr.splitlines() if x.strip().startswith("File ")), ""
        )
        return CRASH, f"killed by {name}" + (f" at {frame}" if frame else "")
    if child.report is None:
        tail = (child.stderr.strip().splitlines() or [""])[-1][:200]
        if child.status == 70:  # the fuzzer's own code raised in the child
            return INTERNAL_ERROR, f"fuzzer child failed: {tail}"
        return CRASH, f"exited with status {child.status} without a result: {tail}"
    return str(child.report["outcome"]), str(child.report.get("detail", ""))
