"""A learned cost model: LightGBM on nest features, ranking candidates before measurement.

    ranker = LightGBMRanker()                      # needs `pip install -e ".[ml]"`
    tune(model, db=..., ranker=ranker)             # evolves over its predictions

Trained online on every measurement of the run (and warm-started from the database's
records of each task): the target is the candidate's speed-up over the task's first
measured time (the default schedule's), as log2, so tasks of any size share one model.
`predict` scores candidates for the search (`tuning.search`: evolution over the
predictions, then the best measured, with ε-greedy exploration); before `min_samples`
measurements every score is 0 (the proposal order is kept). `lightgbm` is imported when the
model is first trained, so importing this module needs nothing extra.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlc.tuning.features import trace_features
from mlc.tuning.space import Candidate
from mlc.tuning.task import Task

__all__ = ["LightGBMRanker", "held_out_tau", "kendall_tau"]


def kendall_tau(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Kendall's tau between two scorings of the same candidates (1: same order)."""
    from scipy.stats import kendalltau

    tau = kendalltau(predicted, measured).statistic
    return 0.0 if tau is None or math.isnan(tau) else float(tau)


@dataclass
class LightGBMRanker:
    """Ranks candidates by a LightGBM regressor of log2 speed-up (see the module doc)."""

    min_samples: int = 8
    rounds: int = 100
    params: dict[str, Any] = field(
        default_factory=lambda: {
            "objective": "regression",
            "learning_rate": 0.1,
            "num_leaves": 15,
            "min_data_in_leaf": 2,
            "min_data_in_bin": 1,
            "verbose": -1,
            "num_threads": 1,  # the measurements own the cores
            "deterministic": True,
            "seed": 0,
        }
    )
    _x: list[list[float]] = field(default_factory=list)
    _y: list[float] = field(default_factory=list)
    _reference: dict[str, float] = field(default_factory=dict)
    _model: Any = None
    _trained_on: int = 0

    def update(self, task: Task, candidate: Candidate, seconds: float | None) -> None:
        """Learn from one measurement (`seconds` None: it failed; not learned from)."""
        if seconds is None or seconds <= 0 or not candidate.trace:
            return
        reference = self._reference.setdefault(task.key, seconds)
        self._x.append(list(candidate.features or trace_features(task, candidate.trace)))
        self._y.append(math.log2(reference / seconds))

    def _train(self) -> None:
        if len(self._y) < self.min_samples or self._trained_on == len(self._y):
            return
        import lightgbm

        data = lightgbm.Dataset(np.asarray(self._x), np.asarray(self._y), params=self.params)
        self._model = lightgbm.train(self.params, data, num_boost_round=self.rounds)
        self._trained_on = len(self._y)

    @property
    def ready(self) -> bool:
        """Whether predictions come from a trained model (else they are all 0)."""
        self._train()
        return self._model is not None

    def predict(self, task: Task, candidates: Sequence[Candidate]) -> list[float]:
        """Predicted log2 speed-ups over the task's default (0 before training)."""
        self._train()
        if self._model is None or not candidates:
            return [0.0] * len(candidates)
        x = np.asarray([c.features or trace_features(task, c.trace) for c in candidates])
        return [float(v) for v in self._model.predict(x)]


def held_out_tau(
    task: Task, measured: Sequence[tuple[Candidate, float]], *, train_fraction: float = 0.7
) -> float:
    """Kendall τ of a fresh `LightGBMRanker` trained on the first `train_fraction` of
    `measured` (candidate, seconds), in order, then ranking the rest against their
    measured speed."""
    cut = int(len(measured) * train_fraction)
    if cut < 2 or len(measured) - cut < 2:
        raise ValueError(f"{len(measured)} measurements are too few to hold some out")
    ranker = LightGBMRanker(min_samples=2)
    for candidate, seconds in measured[:cut]:
        ranker.update(task, candidate, seconds)
    held = measured[cut:]
    predicted = ranker.predict(task, [c for c, _ in held])
    return kendall_tau(predicted, [-seconds for _, seconds in held])
