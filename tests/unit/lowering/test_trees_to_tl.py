"""The native tree kernels (`lowering/trees_to_tl.py`: tree traversal for
`graph.tree_ensemble`, perfect tree traversal for `graph.perfect_tree_ensemble`) compute
what the reference semantics do, on generated ensembles: native code against
`mlc.interpret`, bit for bit (both sum in f64 and round once)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import mlc
from mlc.dialects.graph.trees import NodeMode, branch_test
from mlc.lowering.trees_to_tl import KIND_LEQ, ROW_GROUP, normalize_tests
from mlc.testing.coverage import covers
from mlc.testing.strategies import Program
from mlc.testing.trees import SPECIAL_THRESHOLDS, random_tree_ensemble, tree_ensembles


def _native_matches_reference(program: Program, strategy: str) -> None:
    (want,) = mlc.interpret(program.module, *program.inputs)
    model = mlc.compile(program.module, tree_strategy=strategy, cache=False)
    (got,) = model(*program.inputs)
    np.testing.assert_array_equal(got, want)


@covers("convert-graph-to-tl")
@settings(max_examples=15, deadline=None)  # a native compile each
@given(
    program=tree_ensembles(max_rows=2 * ROW_GROUP + 3),
    strategy=st.sampled_from(["traversal", "perfect"]),
)
def test_native_tree_kernels_match_the_reference(program: Program, strategy: str) -> None:
    """Rows in groups of ROW_GROUP and one by one, every mode, NaN both ways, f32 and f64."""
    _native_matches_reference(program, strategy)


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from([m for m in NodeMode if m != NodeMode.LEAF]),
    threshold=st.sampled_from(SPECIAL_THRESHOLDS) | st.floats(width=64),
    x=st.floats(width=32),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_normalized_tests_decide_as_the_f64_comparison(
    mode: NodeMode, threshold: float, x: float, dtype: type
) -> None:
    """`(x <= t') ^ flip` (or t' equality) in the input's precision is the f64 test."""
    tests = normalize_tests(np.array([mode]), np.array([threshold]), np.array([0]), np.dtype(dtype))
    value = dtype(x)
    want = bool(
        branch_test(np.array([mode]), np.array([value], np.float64), np.array([threshold]))[0]
    )
    t = tests.threshold[0]
    if np.isnan(value):
        got = bool(tests.missing_true[0])
    elif tests.kind[0] == KIND_LEQ:
        got = bool(value <= t) ^ bool(tests.flip[0])
    else:
        got = bool(value == t) if mode == NodeMode.EQ else bool(value != t)
    assert got == want, (mode, threshold, value, t, tests)


def test_large_forests_in_both_kernels_match_the_reference() -> None:
    """Blocks of rows past ROW_BLOCK and a remainder group; 40 trees of depth 7; NaN
    routed per node (XGBoost / LightGBM style) and MAX over a mixed-mode ensemble."""
    rng = np.random.default_rng(0)
    cases = [
        random_tree_ensemble(rng, n_trees=40, max_depth=7, n_features=12, n_targets=3, n_rows=157),
        random_tree_ensemble(
            rng, n_trees=30, max_depth=6, n_rows=70, mode=NodeMode.LT, aggregate="MAX"
        ),
        random_tree_ensemble(
            rng, n_trees=20, max_depth=5, n_rows=65, x_dtype=np.float64, aggregate="AVERAGE"
        ),
    ]
    for program in cases:
        program.inputs[0][::5, 0] = np.nan
        for strategy in ("traversal", "perfect"):
            _native_matches_reference(program, strategy)
