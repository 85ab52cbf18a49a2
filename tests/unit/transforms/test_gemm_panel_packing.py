"""The default schedule's matrix-product tiles on AVX2-class hosts: register tiles chosen
per useful lane (no half-width vectors where full ones fit), guarded remainders of the
row's vectors where no dividing tile is good, and packed blocks of B panels (MLAS / BLIS
order) for tall products, each compiled and compared with numpy for any shape."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note, settings
from hypothesis import strategies as st

import mlc
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import compile_model
from mlc.testing.coverage import covers
from mlc.tests.unit.lowering.test_vector_codegen import MATMUL
from mlc.transforms.loops.default_schedule import (
    CpuDefaultSchedule,
    apply_default_schedules,
    tile_cost,
)


def _schedule(m: int, n: int, k: int, strategy: CpuDefaultSchedule) -> tuple[object, str]:
    module = parse_module(mlc.context(), MATMUL.format(m=m, n=n, k=k))
    (text,) = apply_default_schedules(module, strategy).values()
    return module, text


def test_avx2_tiles_use_full_width_vectors() -> None:
    avx2 = CpuDefaultSchedule(vector_bits=256)
    assert avx2._register_tile(8, 1024, 1024) == (8, 6, 2)  # MLAS's 6 x 16 on AVX2
    # a 56-wide conv row: 7 vectors; 4 x 3 with one guarded vector left, not 4-lane vectors
    assert avx2._register_tile(8, 56, 64) == (8, 4, 3)
    no_ragged = CpuDefaultSchedule(vector_bits=256, ragged_vectors=False)
    assert no_ragged._register_tile(8, 56, 64) == (8, 8, 1)
    assert tile_cost(6, 2, 4, 8, 1024, 256) == 2 * tile_cost(6, 2, 8, 8, 1024, 128)


def test_avx512_tiles_leave_two_registers_spare() -> None:
    """A 13-vector row (208 columns) over 192 rows: 3 x 7 (21 accumulators, 29 of the 32
    registers with a row of B and a broadcast), not 5 x 5 (31 of 32, 1.6x slower measured);
    a 1024 x 1024 product keeps 6 x 4 (29)."""
    avx512 = CpuDefaultSchedule(vector_bits=512)
    assert avx512._register_tile(16, 208, 192) == (16, 3, 7)
    assert avx512._register_tile(16, 1024, 1024) == (16, 6, 4)
    for _, rows, vectors in (
        avx512._register_tile(16, n, m) for n in (77, 96, 160, 208, 1000) for m in (13, 197)
    ):
        assert rows * vectors + vectors + 1 <= 30


def test_tall_products_pack_blocks_of_b_panels() -> None:
    _, text = _schedule(1024, 1024, 1024, CpuDefaultSchedule(vector_bits=256, threads=True))
    assert "split mm/n.o.o 8" in text  # 8 panels of 16 columns x 256 k: 128 KiB
    assert "reorder mm/k.o mm/n.o.o.o mm/m.o mm/n.o.o.i mm/k.i" in text
    assert "cache_read mm 1 mm/m.o" in text and "parallel mm/m.o" in text
    # short products (few row tiles) and narrow B (one block) are not packed
    _, short = _schedule(64, 1024, 1024, CpuDefaultSchedule(vector_bits=256))
    _, narrow = _schedule(512, 32, 256, CpuDefaultSchedule(vector_bits=256))
    assert "cache_read" not in short and "cache_read" not in narrow


@covers("tl-default-schedule")
@settings(max_examples=12, deadline=None)
@given(
    st.integers(1, 70),
    st.integers(1, 90),
    st.integers(1, 40),
    st.sampled_from([256, 512]),
    st.booleans(),
    st.sampled_from([0, 1024, 4096]),
)
def test_packed_and_ragged_tiles_compute_the_product(
    m: int, n: int, k: int, vector_bits: int, threads: bool, block_bytes: int
) -> None:
    """Small panel blocks and row-tile thresholds force packing (with remainders of rows,
    panels, vectors and lanes) onto small shapes; the result is numpy's product."""
    strategy = CpuDefaultSchedule(
        vector_bits=vector_bits,
        threads=threads,
        panel_block_bytes=block_bytes,
        min_pack_row_tiles=2,
        min_parallel_work=0,
    )
    module, text = _schedule(m, n, k, strategy)
    note(text)
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    (_, _, c) = compile_model(module).run_buffers(a, b, np.zeros((m, n), np.float32))
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
