"""The discrete choices of the schedule search space that sampling (`tuning.space`) and
trace mutation (`tuning.trace_mutation`) share.

    factor_choices(96, rng)   # [2, 3, 4, 6, 8, 12, 16, 24, 32, 48] (the divisors up to 64
                              # and the powers of two below 96) and one random factor
"""

from __future__ import annotations

import random

__all__ = ["MAX_UNROLLED", "factor_choices"]

#: the most copies of a kernel body that unrolling inner tile loops may make
MAX_UNROLLED = 64


def factor_choices(extent: int, rng: random.Random) -> list[int]:
    """Split factors for a loop of `extent` iterations: its divisors up to 64, the powers
    of two below it (a non-divisor leaves a guarded remainder) and one random factor;
    none if the loop is too short to split."""
    if extent < 4:
        return []
    choices = {d for d in range(2, min(extent - 1, 64) + 1) if extent % d == 0}
    choices |= {p for p in (2, 4, 8, 16, 32) if p < extent}
    choices |= {rng.randint(2, extent - 1)}
    return sorted(choices)
