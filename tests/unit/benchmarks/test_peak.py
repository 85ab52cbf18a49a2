"""The peak-FLOP probe computes what its IR says (the timing itself is a benchmark)."""

import ctypes

from mlc.benchmarks.peak import fma_loop_ir
from mlc.targets.cpu import JitEngine


def test_fma_loop_converges_to_its_fixed_point() -> None:
    # a <- a * 0.5 + 0.25 from 0: 0.25, 0.375, ... -> 0.5 in each of 6 accumulators
    engine = JitEngine(opt=2)
    engine.add_module(fma_loop_ir(lanes=4, accumulators=6))
    fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(engine.function_address("fma_peak"))
    assert fn(1) == 6 * 0.25
    assert fn(2) == 6 * 0.375
    assert abs(fn(100) - 3.0) < 1e-6
