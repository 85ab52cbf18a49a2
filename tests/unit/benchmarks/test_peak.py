"""The peak-FLOP probe computes what its IR says (the timing itself is a benchmark)."""

import ctypes

import pytest

from mlc.benchmarks.peak import fma_loop_ir, vpmaddwd_loop_ir
from mlc.targets.cpu import JitEngine, host_features


def test_fma_loop_converges_to_its_fixed_point() -> None:
    # a <- a * 0.5 + 0.25 from 0: 0.25, 0.375, ... -> 0.5 in each of 6 accumulators
    engine = JitEngine(opt=2)
    engine.add_module(fma_loop_ir(lanes=4, accumulators=6))
    fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(engine.function_address("fma_peak"))
    assert fn(1) == 6 * 0.25
    assert fn(2) == 6 * 0.375
    assert abs(fn(100) - 3.0) < 1e-6


@pytest.mark.skipif(not host_features().avx2, reason="CPU lacks AVX2")
def test_vpmaddwd_loop_counts_its_steps() -> None:
    # a <- vpmaddwd(a, ones) + 1 from 0: each lane counts the steps; 5 accumulators summed
    engine = JitEngine(opt=2)
    engine.add_module(vpmaddwd_loop_ir(accumulators=5))
    fn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64)(engine.function_address("pmaddwd_peak"))
    assert fn(1) == 5
    assert fn(1000) == 5 * 1000
