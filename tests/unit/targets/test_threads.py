"""Threads that never lose to one: the auto thread count follows measured latency, the
default schedule parallelizes only nests with enough work per parallel region, and the
thread setting never changes results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.targets.compiled import compile_model
from mlc.targets.threads import MAX_EXPLORE_GAP, WARMUP, AutoThreads

ROOT = Path(__file__).resolve().parents[3]
CNN = ROOT / "examples" / "tiny_resnet.onnx"


def _drive(policy: AutoThreads, latency: dict[int, float], calls: int) -> list[int]:
    chosen = []
    for _ in range(calls):
        n = policy.choose()
        chosen.append(n)
        policy.record(n, latency[n])
    return chosen


def test_auto_settles_on_the_faster_setting_and_rarely_tries_the_other() -> None:
    policy = AutoThreads(cores=2)
    chosen = _drive(policy, {1: 1e-3, 2: 30e-3}, 1000)  # a busy core: 2 threads lose badly
    assert chosen[: 2 * WARMUP].count(2) == WARMUP  # both are tried first
    assert policy.current == 1
    assert chosen.count(2) <= WARMUP + 1000 // MAX_EXPLORE_GAP + 2  # under 1 % of calls
    policy = AutoThreads(cores=2)
    chosen = _drive(policy, {1: 2e-3, 2: 1e-3}, 1000)  # a quiet machine: 2 threads win
    assert policy.current == 2 and chosen[-100:].count(2) >= 95


def test_auto_follows_a_change_of_load() -> None:
    policy = AutoThreads(cores=2)
    _drive(policy, {1: 1e-3, 2: 1.5e-3}, 500)
    assert policy.current == 1
    _drive(policy, {1: 1e-3, 2: 0.5e-3}, 2000)  # the other process stopped
    assert policy.current == 2


def test_one_core_means_one_thread() -> None:
    policy = AutoThreads(cores=1)
    assert set(_drive(policy, {1: 1e-3}, 50)) == {1}


def _parallel_loops(text: str) -> int:
    module = parse_module(make_context(), text)
    from mlc.targets.pipeline import ConvertGraphToTlPass, TlDefaultSchedulePass

    for p in (ConvertGraphToTlPass(), TlDefaultSchedulePass(vector_bits=256, threads=True)):
        p.apply(make_context(), module)
    return str(module).count(" parallel {")


@pytest.mark.parametrize(("n", "parallel"), [(1024, False), (1 << 21, True)])
def test_only_nests_with_enough_work_run_on_threads(n: int, parallel: bool) -> None:
    t = f"tensor<{n}xf32>"
    text = f"""func.func @main(%x: {t}, %y: {t}) -> {t} {{
      %s = graph.add %x, %y : ({t}, {t}) -> {t}
      func.return %s : {t}
    }}"""
    assert (_parallel_loops(text) > 0) == parallel


def test_no_parallel_region_inside_a_reduction_loop_of_a_small_matmul() -> None:
    """A 1x32 @ 32x16 product: its only parallel loop with 2+ trips sits inside the k
    loop; a region there would fork and join 32 times for 512 multiply-adds."""
    text = """func.func @main(%a: tensor<1x32xf32>, %b: tensor<32x16xf32>) -> tensor<1x16xf32> {
      %c = graph.matmul %a, %b : (tensor<1x32xf32>, tensor<32x16xf32>) -> tensor<1x16xf32>
      func.return %c : tensor<1x16xf32>
    }"""
    assert _parallel_loops(text) == 0


def test_thread_settings_give_identical_results() -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    compiled = compile_model(CNN)
    assert compiled.num_threads == 0  # auto
    outs = [compiled(x)[0] for _ in range(2 * WARMUP + 2)]  # auto tries 1 and all cores
    for n in (1, 2, 3):
        compiled.num_threads = n
        assert compiled.threads_in_use == n
        outs.append(compiled(x)[0])
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    with pytest.raises(ValueError, match=">= 0"):
        compiled.num_threads = -1


def test_mlc_num_threads_fixes_the_count(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLC_NUM_THREADS", "1")
    compiled = compile_model(CNN)
    assert compiled.num_threads == 1 and compiled.threads_in_use == 1
