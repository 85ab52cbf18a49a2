"""Random tree ensembles for property tests: `tree_ensembles()` draws a module whose
`@main(X)` is one `graph.tree_ensemble`, with an input `X` aimed at the corner cases of
tree traversal; `random_tree_ensemble(rng, ...)` builds large ones with numpy (for cost
models and benchmarks, where Hypothesis would be slow).

    from mlc.testing.trees import tree_ensembles

    @given(tree_ensembles(aggregates=("SUM",)))
    def test_my_lowering(program: Program) -> None:
        want = mlc.interpret(program.module, *program.inputs)
        ...

What `tree_ensembles` covers: all six branch modes (mixed in one ensemble), NaN going
either way (`nodes_missing_true`), unbalanced trees and trees that are a lone leaf, nodes
in shuffled order (a root is not necessarily node 0), leaves sharing a `leaf_values` row
and unused rows, several targets, NaN leaf weights (none), every aggregate, f32 and f64
`X`, thresholds that f32 cannot hold (0.1, 1e-46, 1e39), infinite and NaN thresholds. The
input draws most elements from the thresholds themselves and their neighbours in `X`'s
precision, plus NaN, +-0 and +-inf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from xdsl.dialects.builtin import f32, f64
from xdsl.ir import Attribute

from mlc.dialects import graph as g
from mlc.dialects.graph.trees import AGGREGATES, NodeMode
from mlc.dialects.graph.types import numpy_dtype
from mlc.testing.strategies import Program, ProgramBuilder

__all__ = [
    "BRANCH_MODES",
    "SPECIAL_THRESHOLDS",
    "TreeTablesBuilder",
    "random_tree_ensemble",
    "tree_ensemble_program",
    "tree_ensembles",
]

BRANCH_MODES: tuple[NodeMode, ...] = tuple(m for m in NodeMode if m != NodeMode.LEAF)

SPECIAL_THRESHOLDS: tuple[float, ...] = (
    0.0, -0.0, 0.5, -1.5, 0.1, 1 / 3, -2.7, 1e-46, -1e-40, 3.4028235677973366e38, 1e39,
    math.inf, -math.inf, math.nan,
)  # fmt: skip
"""Thresholds with something to get wrong: signed zeros, values f32 cannot hold (rounded
up, down, to 0, to a subnormal, past the f32 range), infinities and NaN."""

_X_SPECIALS = (math.nan, 0.0, -0.0, math.inf, -math.inf)


@dataclass
class TreeTablesBuilder:
    """Node tables under construction, node by node; `properties()` gives the keyword
    arguments of `graph.tree_ensemble` (without `aggregate`)."""

    n_targets: int
    mode: list[int] = field(default_factory=list)
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    true: list[int] = field(default_factory=list)
    false: list[int] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    leaf: list[int] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)
    leaf_rows: list[np.ndarray] = field(default_factory=list)

    def branch(self, mode: int, feature: int, threshold: float, missing_true: bool) -> int:
        """A branch node whose children are set later (`link`); returns its id."""
        return self._node(mode, feature, threshold, int(missing_true), -1)

    def link(self, node: int, true: int, false: int) -> None:
        self.true[node], self.false[node] = true, false

    def leaf_node(self, row: int) -> int:
        """A leaf giving `leaf_values[row]`; returns its id."""
        return self._node(int(NodeMode.LEAF), 0, 0.0, 0, row)

    def add_row(self, weights: Sequence[float]) -> int:
        self.leaf_rows.append(np.asarray(weights, np.float64))
        return len(self.leaf_rows) - 1

    def _node(self, mode: int, feature: int, threshold: float, missing: int, leaf: int) -> int:
        self.mode.append(mode)
        self.feature.append(feature)
        self.threshold.append(threshold)
        self.true.append(0)
        self.false.append(0)
        self.missing_true.append(missing)
        self.leaf.append(leaf)
        return len(self.mode) - 1

    def properties(
        self,
        base_values: Sequence[float],
        order: Sequence[int] | None = None,
        leaf_dtype: type = np.float32,
    ) -> dict[str, np.ndarray]:
        """The tables, nodes renumbered so that node `n` is stored at `order[n]` (a
        permutation; identity when None)."""
        n = len(self.mode)
        new = np.arange(n) if order is None else np.asarray(order, np.int64)
        old = np.empty(n, np.int64)
        old[new] = np.arange(n)  # the old id of the node stored at each position

        def table(values: Sequence[float] | Sequence[int], dtype: type) -> np.ndarray:
            return np.asarray(values, dtype).reshape(n)[old]

        branch = table(self.mode, np.int64) != NodeMode.LEAF
        true = np.where(branch, new[table(self.true, np.int64)], 0)
        false = np.where(branch, new[table(self.false, np.int64)], 0)
        rows = np.stack(self.leaf_rows) if self.leaf_rows else np.zeros((0, self.n_targets))
        return {
            "tree_roots": new[np.asarray(self.roots, np.int64)],
            "nodes_mode": table(self.mode, np.int64),
            "nodes_feature": table(self.feature, np.int64),
            "nodes_threshold": table(self.threshold, np.float64),
            "nodes_true": true,
            "nodes_false": false,
            "nodes_missing_true": table(self.missing_true, np.int64),
            "nodes_leaf": table(self.leaf, np.int64),
            "leaf_values": rows.astype(leaf_dtype),
            "base_values": np.asarray(base_values, np.float64),
        }


def tree_ensemble_program(
    properties: dict[str, np.ndarray], aggregate: str, x: np.ndarray
) -> Program:
    """A module `@main(X) -> scores` of one `graph.tree_ensemble` with these tables, and
    `x` as its input (its dtype and shape give X's type)."""
    x_type: Attribute = f64 if x.dtype == np.float64 else f32
    p = ProgramBuilder(lambda s: None, x_type, np.random.default_rng(0))  # type: ignore[arg-type, return-value]
    arg = p.new_arg(list(x.shape))
    p.insert(g.TreeEnsembleOp.create([arg], aggregate=aggregate, **properties))
    return Program(p.finish(), [x])


def _neighbours(values: np.ndarray) -> np.ndarray:
    """The next representable values either side of `values`, in their precision."""
    up = np.nextafter(values, np.array(np.inf, values.dtype))
    down = np.nextafter(values, np.array(-np.inf, values.dtype))
    return np.concatenate([up, down])


@st.composite
def tree_ensembles(
    draw: st.DrawFn,
    *,
    max_trees: int = 4,
    max_depth: int = 4,
    max_features: int = 3,
    max_targets: int = 3,
    max_rows: int = 6,
    aggregates: Sequence[str] = AGGREGATES,
    modes: Sequence[NodeMode] = BRANCH_MODES,
    x_types: Sequence[Attribute] = (f32, f64),
    leaf_dtypes: Sequence[type] = (np.float32,),
    nan_weights: bool = True,
    special_thresholds: bool = True,
) -> Program:
    """A module `@main(X) -> scores` with one random `graph.tree_ensemble`, and an input
    (see the module docstring). Trees have at most `max_depth` tests on a path."""
    n_trees = draw(st.integers(1, max_trees))
    n_features = draw(st.integers(1, max_features))
    n_targets = draw(st.integers(1, max_targets))
    depth_limit = draw(st.integers(min(1, max_depth), max_depth))
    aggregate = draw(st.sampled_from(list(aggregates)))
    x_type = draw(st.sampled_from(list(x_types)))
    leaf_dtype = draw(st.sampled_from(list(leaf_dtypes)))
    used_modes = draw(st.lists(st.sampled_from(list(modes)), min_size=1, max_size=3, unique=True))

    plain = st.floats(-4, 4, allow_nan=False, width=64)
    specials = st.sampled_from(SPECIAL_THRESHOLDS if special_thresholds else (0.0, 0.5, 0.1))
    pool = draw(st.lists(st.one_of(plain, specials), min_size=1, max_size=4))
    weight = st.floats(-8, 8, allow_nan=False, width=32)
    if nan_weights and draw(st.booleans()):  # about one weight in six is none
        weight = st.one_of(weight, weight, st.just(math.nan), weight, weight, weight)

    tables = TreeTablesBuilder(n_targets)

    def new_row() -> int:
        return tables.add_row(draw(st.lists(weight, min_size=n_targets, max_size=n_targets)))

    def leaf() -> int:
        if tables.leaf_rows and draw(st.integers(0, 4)) == 0:  # share a row
            return tables.leaf_node(draw(st.integers(0, len(tables.leaf_rows) - 1)))
        return tables.leaf_node(new_row())

    def tree(level: int) -> int:
        # a root is a lone leaf one time in six, a deeper node one in three
        if level >= depth_limit or draw(st.integers(0, 5 if level == 0 else 2)) == 0:
            return leaf()
        node = tables.branch(
            int(draw(st.sampled_from(used_modes))),
            draw(st.integers(0, n_features - 1)),
            draw(st.sampled_from(pool)),
            draw(st.booleans()),
        )
        true = tree(level + 1)
        tables.link(node, true, tree(level + 1))
        return node

    tables.roots = [tree(0) for _ in range(n_trees)]
    if draw(st.booleans()):
        new_row()  # a row no leaf uses
    order = draw(st.permutations(range(len(tables.mode))))
    base = draw(st.lists(st.floats(-4, 4, width=32), min_size=n_targets, max_size=n_targets))
    properties = tables.properties(base, order, leaf_dtype)

    dtype = np.dtype(numpy_dtype(x_type))
    thresholds = np.asarray(pool, np.float64)
    with np.errstate(over="ignore"):
        rounded = thresholds.astype(dtype)
    element = st.one_of(
        st.sampled_from(thresholds.tolist()),  # rounded to X's precision
        st.sampled_from(_neighbours(rounded).tolist()),
        st.sampled_from(_X_SPECIALS),
        st.just(math.nan),
        st.floats(-4, 4, width=32 if dtype == np.float32 else 64),
    )
    n_rows = draw(st.integers(1, max_rows))
    values = draw(st.lists(element, min_size=n_rows * n_features, max_size=n_rows * n_features))
    with np.errstate(over="ignore"):
        x = np.asarray(values, np.float64).astype(dtype).reshape(n_rows, n_features)
    return tree_ensemble_program(properties, aggregate, x)


def random_tree_ensemble(
    rng: np.random.Generator,
    *,
    n_trees: int,
    max_depth: int,
    n_features: int = 8,
    n_targets: int = 1,
    n_rows: int = 1,
    leaf_probability: float = 0.2,
    aggregate: str = "SUM",
    mode: NodeMode = NodeMode.LEQ,
    x_dtype: type = np.float32,
) -> Program:
    """A random ensemble built with numpy: each node below `max_depth` is a leaf with
    `leaf_probability` (the root never, when `max_depth` > 0), thresholds and inputs
    standard normal; returns the module and a matching input."""
    tables = TreeTablesBuilder(n_targets)

    def tree(level: int) -> int:
        if level >= max_depth or (level > 0 and rng.random() < leaf_probability):
            return tables.leaf_node(tables.add_row(rng.standard_normal(n_targets)))
        node = tables.branch(
            int(mode), int(rng.integers(n_features)), float(rng.standard_normal()), False
        )
        true = tree(level + 1)
        tables.link(node, true, tree(level + 1))
        return node

    tables.roots = [tree(0) for _ in range(n_trees)]
    properties = tables.properties(rng.standard_normal(n_targets))
    x = rng.standard_normal((n_rows, n_features)).astype(x_dtype)
    return tree_ensemble_program(properties, aggregate, x)
