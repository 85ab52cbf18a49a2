"""A learned cost model: LightGBM on nest features, ranking candidates before measurement.

    ranker = LightGBMRanker()                      # needs `pip install -e ".[ml]"`
    tune(model, db=..., ranker=ranker)             # samples 8x, measures the top-k

Trained online on every measurement of the run (and warm-started from the database's
records of each task): the target is the candidate's speed-up over the task's first
measured time (the default schedule's), as log2, so tasks of any size share one model.
`select` scores the sampled candidates and measures the best `n`, except that a
fraction `epsilon` of the `n` are drawn at random from the rest (exploration). Before
`min_samples` measurements it keeps the sampled order. `lightgbm` is imported when the
model is first trained, so importing this module needs nothing extra.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlc.tuning.features import trace_features
from mlc.tuning.space import Candidate
from mlc.tuning.task import Task

__all__ = ["LightGBMRanker", "kendall_tau"]


def kendall_tau(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Kendall's tau between two scorings of the same candidates (1: same order)."""
    from scipy.stats import kendalltau

    tau = kendalltau(predicted, measured).statistic
    return 0.0 if tau is None or math.isnan(tau) else float(tau)


@dataclass
class LightGBMRanker:
    """Ranks candidates by a LightGBM regressor of log2 speed-up (see the module doc)."""

    epsilon: float = 0.2
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

    def predict(self, task: Task, candidates: Sequence[Candidate]) -> list[float]:
        """Predicted log2 speed-ups over the task's default (0 before training)."""
        self._train()
        if self._model is None or not candidates:
            return [0.0] * len(candidates)
        x = np.asarray([c.features or trace_features(task, c.trace) for c in candidates])
        return [float(v) for v in self._model.predict(x)]

    def select(
        self, task: Task, candidates: Sequence[Candidate], n: int, rng: random.Random
    ) -> list[Candidate]:
        """The `n` candidates to measure: the best predicted, and about `epsilon * n`
        random others."""
        self._train()
        if self._model is None or len(candidates) <= n:
            return list(candidates[:n])
        scores = self.predict(task, candidates)
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        explore = min(n - 1, round(self.epsilon * n)) if n > 1 else 0
        chosen = order[: n - explore]
        rest = order[n - explore :]
        chosen += rng.sample(rest, explore)
        return [candidates[i] for i in chosen]
