"""Wall-time per compile stage and pass, printed as a table (`-mlir-timing`, `-ftime-report`).

    timings = Timings()
    with timings.stage("import"):
        module = import_onnx(path)
    print(timings.table())

    ===-- mlc compile time --===
      seconds    share  stage
        0.412    41.2%  import
        ...
        1.000   100.0%  total

A stage entered several times (a pass run once per kernel) is summed under its name, in
the order the names first appear.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Timings"]


class Timings:
    """Accumulated wall time per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the `with` body under `name` (added to earlier time of that name)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def table(self, title: str = "mlc compile time") -> str:
        """One line per stage: seconds, share of the total, name; then the total."""
        total = self.total or 1e-12
        lines = [f"===-- {title} --===", f"{'seconds':>9}  {'share':>7}  stage"]
        for name, s in self.seconds.items():
            lines.append(f"{s:9.3f}  {100 * s / total:6.1f}%  {name}")
        lines.append(f"{self.total:9.3f}  {100.0:6.1f}%  total")
        return "\n".join(lines)
