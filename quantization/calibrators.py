"""Calibrators: the range [lo, hi] an activation is quantized over, from observed values.

Each calibrator sees every calibration batch of one tensor (`observe`) and then answers
`range(levels)`, where `levels` is the number of quantization steps available for |x|
(128 for a symmetric int8 grid; 256 for nonnegative data on an asymmetric uint8 grid):

    cal = make_calibrator("entropy")
    for batch in batches:
        cal.observe(batch)
    lo, hi = cal.range(levels=128)

- `minmax`: the observed minimum and maximum.
- `percentile`: |x| clipped at its `percentile`-th percentile (default 99.999).
- `entropy`: TensorRT's KL-divergence threshold: the clipping point whose quantized
  histogram of |x| diverges least from the observed one.
- `mse`: the clipping point that minimizes the expected squared quantization error.

The histogram calibrators keep a fixed number of bins over a symmetric range that doubles
(merging neighbouring bins) when a batch exceeds it, so memory does not grow with the
calibration set.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


class Calibrator(ABC):
    """Streams one tensor's calibration values; `range` picks what to quantize."""

    def __init__(self) -> None:
        self.lo = math.inf
        self.hi = -math.inf

    def observe(self, values: np.ndarray) -> None:
        finite = np.asarray(values, dtype=np.float64).reshape(-1)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return
        self.lo = min(self.lo, float(finite.min()))
        self.hi = max(self.hi, float(finite.max()))
        self._observe(finite)

    def _observe(self, values: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Subclasses that need more than the extremes record `values` here."""

    def observed(self) -> tuple[float, float]:
        """The observed extremes ((0, 0) when nothing finite was seen)."""
        if self.lo > self.hi:
            return 0.0, 0.0
        return self.lo, self.hi

    @abstractmethod
    def range(self, levels: int) -> tuple[float, float]:
        """The range to quantize over, within the observed extremes."""


class MinMax(Calibrator):
    """The observed extremes."""

    def range(self, levels: int) -> tuple[float, float]:
        return self.observed()


@dataclass
class Histogram:
    """Counts of values over [-limit, limit) in `bins` equal bins (`bins` even); the
    range doubles, merging neighbouring bins, to take values beyond it."""

    bins: int = 2048
    limit: float = 0.0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, values: np.ndarray) -> None:
        peak = float(np.abs(values).max())
        if self.limit == 0.0:
            self.limit = peak if peak > 0 else 1.0
            self.counts = np.zeros(self.bins, np.int64)
        while peak > self.limit:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.zeros(self.bins, np.int64)
            quarter = self.bins // 4
            self.counts[quarter : quarter + merged.size] = merged
            self.limit *= 2
        counts, _ = np.histogram(values, bins=self.bins, range=(-self.limit, self.limit))
        self.counts += counts

    @property
    def width(self) -> float:
        return 2 * self.limit / self.bins

    def magnitudes(self) -> np.ndarray:
        """Counts of |x| over [0, limit) in bins/2 bins of the same width."""
        half = self.bins // 2
        return self.counts[half:] + self.counts[:half][::-1]

    def centers(self) -> np.ndarray:
        return -self.limit + (np.arange(self.bins) + 0.5) * self.width


class HistogramCalibrator(Calibrator):
    """A calibrator that clips |x| at a threshold chosen from its histogram."""

    def __init__(self, bins: int = 2048) -> None:
        super().__init__()
        self.histogram = Histogram(bins)

    def _observe(self, values: np.ndarray) -> None:
        self.histogram.add(values)

    def range(self, levels: int) -> tuple[float, float]:
        lo, hi = self.observed()
        if lo == hi or self.histogram.limit == 0.0:
            return lo, hi
        t = self.threshold(levels)
        return max(lo, -t), min(hi, t)

    @abstractmethod
    def threshold(self, levels: int) -> float:
        """The clipping point for |x|."""


class Percentile(HistogramCalibrator):
    """|x| clipped at its `percentile`-th percentile."""

    def __init__(self, percentile: float = 99.999, bins: int = 2048) -> None:
        super().__init__(bins)
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile

    def threshold(self, levels: int) -> float:
        counts = self.histogram.magnitudes()
        cumulative = np.cumsum(counts)
        j = int(np.searchsorted(cumulative, cumulative[-1] * self.percentile / 100))
        return (min(j, counts.size - 1) + 1) * self.histogram.width


def _smooth(d: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    """`d` normalized, with `eps` moved from its nonzero bins to its empty ones (so the
    divergence stays finite); None when `d` is all zeros."""
    zeros = d == 0
    nonzero = d.size - int(zeros.sum())
    if nonzero == 0:
        return None
    d = d / d.sum()
    return d + eps * zeros - eps * zeros.sum() / nonzero * ~zeros


def _kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    sp, sq = _smooth(p), _smooth(q)
    if sp is None or sq is None:
        return math.inf
    mask = sp > 0
    if np.any(sq[mask] <= 0):
        return math.inf
    return float(np.sum(sp[mask] * np.log(sp[mask] / sq[mask])))


class Entropy(HistogramCalibrator):
    """TensorRT's entropy calibration: for each candidate threshold (a bin edge of the |x|
    histogram, from `levels` bins up), the reference distribution P is the histogram up
    to it with the outliers added to its last bin; the candidate Q merges the same bins
    (without the outliers) into `levels` groups and spreads each group's count over the
    bins where P is nonzero; both are smoothed, and the threshold with the least KL(P||Q)
    wins."""

    def threshold(self, levels: int) -> float:
        counts = self.histogram.magnitudes().astype(np.float64)
        width = self.histogram.width
        n = counts.size
        if n <= levels:
            return n * width
        best, best_i = math.inf, n
        step = max(1, (n - levels) // 256)
        for i in range(levels, n + 1, step):
            p = counts[:i].copy()
            p[-1] += counts[i:].sum()
            q = np.zeros(i)
            edges = np.linspace(0, i, levels + 1).astype(int)
            for a, b in zip(edges[:-1], edges[1:]):
                occupied = p[a:b] > 0
                if occupied.any():
                    q[a:b][occupied] = counts[a:b].sum() / occupied.sum()
            divergence = _kl_divergence(p, q)
            if divergence < best:
                best, best_i = divergence, i
        return best_i * width


class Mse(HistogramCalibrator):
    """The clipping point minimizing the expected squared error of quantizing the
    observed values (bin centers weighted by their counts) onto `2 * levels - 1` uniform
    steps over the clipped range."""

    def threshold(self, levels: int) -> float:
        hist = self.histogram
        centers, counts = hist.centers(), hist.counts.astype(np.float64)
        used = counts > 0
        centers, counts = centers[used], counts[used]
        lo, hi = self.observed()
        peak = max(abs(lo), abs(hi))
        candidates = np.linspace(peak / 256, peak, 256)
        errors = [_quantization_error(centers, counts, lo, hi, t, levels) for t in candidates]
        return float(candidates[int(np.argmin(errors))])


def _quantization_error(
    x: np.ndarray, weights: np.ndarray, lo: float, hi: float, t: float, levels: int
) -> float:
    a, b = max(lo, -t), min(hi, t)
    a, b = min(a, 0.0), max(b, 0.0)
    steps = 2 * levels - 1 if a < 0 else levels - 1
    scale = (b - a) / steps if b > a else 1.0
    fq = np.clip(np.round((x - a) / scale), 0, steps) * scale + a
    return float(np.sum(weights * (x - fq) ** 2))


CALIBRATORS: dict[str, type[Calibrator]] = {
    "minmax": MinMax,
    "percentile": Percentile,
    "entropy": Entropy,
    "mse": Mse,
}


def make_calibrator(name: str) -> Calibrator:
    """A fresh calibrator by name (one of `CALIBRATORS`)."""
    try:
        return CALIBRATORS[name]()
    except KeyError:
        known = ", ".join(CALIBRATORS)
        raise ValueError(f"unknown calibrator {name!r} (known: {known})") from None
