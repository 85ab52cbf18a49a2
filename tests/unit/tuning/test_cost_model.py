"""The LightGBM cost model: learns a ranking from measurements, guides the search."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mlc.tests.unit.tuning.test_search import FakeMeasurer, matmul_task
from mlc.transforms.loops.schedule import parse_schedule
from mlc.tuning.cost_model import LightGBMRanker, held_out_tau, kendall_tau
from mlc.tuning.database import TuningDatabase
from mlc.tuning.features import feature_count, trace_features
from mlc.tuning.search import tune
from mlc.tuning.space import Candidate, SearchSpace

pytest.importorskip("lightgbm")


def fake_seconds(trace: str) -> float:
    """A machine on which vectorizing and unrolling pay: a function of the trace."""
    verbs = [s.verb for s in parse_schedule(trace)]
    return 1e-3 / (1 + 4 * verbs.count("vectorize") + verbs.count("unroll"))


def test_the_model_learns_a_ranking_of_held_out_candidates() -> None:
    task = matmul_task()
    space = SearchSpace(task, features=True)
    rng = random.Random(0)
    found: dict[str, Candidate] = {}
    while len(found) < 60:
        c = space.sample(rng)
        if c.valid:
            found.setdefault(c.trace, c)
    candidates = list(found.values())
    assert list(candidates[0].features) == trace_features(task, candidates[0].trace)
    assert len(candidates[0].features) == feature_count()
    ranker = LightGBMRanker()
    for c in candidates[:40]:
        ranker.update(task, c, fake_seconds(c.trace))
    held_out = candidates[40:]
    predicted = ranker.predict(task, held_out)
    tau = kendall_tau(predicted, [-fake_seconds(c.trace) for c in held_out])
    assert tau >= 0.5, tau
    measured = [(c, fake_seconds(c.trace)) for c in candidates]
    assert held_out_tau(task, measured) >= 0.5
    # a model that learned nothing useful (times unrelated to the schedule) ranks no better
    # than chance
    noise = random.Random(5)
    shuffled = [(c, noise.uniform(1e-4, 1e-3)) for c in candidates]
    assert abs(held_out_tau(task, shuffled)) < 0.4


def test_guided_tuning_is_seeded_and_measures_top_candidates(tmp_path: Path) -> None:
    task = matmul_task()
    runs = []
    for name in ("a", "b"):
        db = TuningDatabase(tmp_path / f"{name}.db")
        ranker = LightGBMRanker(min_samples=4)
        report = tune(
            task, db=db, trials=16, seed=3, batch_size=2, measurer=FakeMeasurer(), ranker=ranker
        )
        assert ranker.ready  # trained along the way
        (result,) = report.tasks
        # the trained model's scores of what it chose, paired with the measured times
        assert result.predictions and all(s > 0 for _, s in result.predictions)
        assert "model tau" in report.table()
        runs.append([(r.trace, r.status, r.seconds) for r in db.records()])
    assert runs[0] == runs[1]
