"""Bounds checking: interval arithmetic on affine indices over iterator ranges.

Every read that no ``if in bounds`` guards, and every target write, must stay inside
its tensor. `check_bounds_at` decides this exactly for concrete sizes (interval
arithmetic is exact for affine indices of independent iterators; indices with
``/`` or ``%`` are confirmed by enumeration). `check_bounds` runs at parse time,
when sizes are symbolic: it evaluates the same intervals, vectorized, over a grid
of small sizes (all combinations of 0..7 for up to four sizes; else all
combinations of 0..2 (or 0..1) plus a fixed pseudo-random sample) and rejects the definition with the first concrete counterexample. Sizes
for which some shape is negative or some divisor is zero are skipped, as are
statements whose iteration domain is empty.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mlc.texpr.affine import Atom, FloorDiv, Iter, Mod, Poly, it
from mlc.texpr.ast import Definition, Read, Statement, reads
from mlc.texpr.errors import error_at
from mlc.texpr.printer import format_expr

#: Values each size takes in the parse-time search.
SAMPLE_VALUES = (0, 1, 2, 3, 4, 5, 7)
MAX_SAMPLES = 8192
#: Largest index grid enumerated to confirm a violation of an index with `/` or `%`.
MAX_ENUMERATION = 1 << 22

Array = np.ndarray
Interval = tuple[Array, Array]


@dataclass
class _Env:
    """Sizes as int64 arrays over samples, and a mask of the samples still valid."""

    sizes: dict[str, Array]
    valid: Array

    def eval(self, poly: Poly) -> Array:
        zeros: list[Array] = []
        value = np.broadcast_to(
            np.asarray(poly.evaluate(self.sizes, zeros), dtype=np.int64), self.valid.shape
        )
        for zero in zeros:
            self.valid = self.valid & ~zero
        return value


def check_bounds(defn: Definition) -> None:
    """Reject ``defn`` if some unguarded access is out of bounds for some small sizes."""
    symbols = defn.symbols
    n = len(SAMPLE_VALUES) ** len(symbols)
    if n <= MAX_SAMPLES:
        grid = np.array(list(itertools.product(SAMPLE_VALUES, repeat=len(symbols))), dtype=np.int64)
        grid = grid.reshape(n, len(symbols))
    else:  # every combination of 0..2 (as far as affordable), then pseudo-random ones
        small = 3 if 3 ** len(symbols) <= MAX_SAMPLES else 2
        count = min(small ** len(symbols), 4 * MAX_SAMPLES)
        corner = np.array(
            list(itertools.islice(itertools.product(range(small), repeat=len(symbols)), count)),
            dtype=np.int64,
        )
        rng = np.random.default_rng(0)
        values = np.array(SAMPLE_VALUES, dtype=np.int64)
        grid = np.concatenate([corner, rng.choice(values, size=(MAX_SAMPLES, len(symbols)))])
    sizes = {name: grid[:, i] for i, name in enumerate(symbols)}
    _check(defn, _Env(sizes, np.ones(grid.shape[0], dtype=bool)), symbolic=True)


def check_bounds_at(defn: Definition, sizes: Mapping[str, int]) -> None:
    """Reject ``defn`` if some unguarded access is out of bounds for these sizes."""
    env = _Env({k: np.array([v], dtype=np.int64) for k, v in sizes.items()}, np.ones(1, dtype=bool))
    _check(defn, env, symbolic=False)


def _check(defn: Definition, env: _Env, symbolic: bool) -> None:
    shapes = {d.name: d.shape for d in (*defn.inputs, *defn.outputs, *defn.locals)}
    for shape in shapes.values():
        for dim in shape:
            env.valid = env.valid & (env.eval(dim) >= 0)
    for stmt in defn.statements:
        _check_statement(stmt, shapes, env, symbolic)


def _accesses(stmt: Statement) -> list[tuple[Read, bool]]:
    """The target write (as a `Read`) and every unguarded read of a statement."""
    target = Read(stmt.target, tuple(it(i) for i in stmt.indices), "", stmt.loc)
    return [(target, True)] + [(r, False) for r, guarded in reads(stmt.body) if not guarded]


def _check_statement(
    stmt: Statement, shapes: Mapping[str, tuple[Poly, ...]], env: _Env, symbolic: bool
) -> None:
    ranges: dict[str, Interval] = {}
    active = env.valid
    for itr in stmt.iterators:
        lo, hi = env.eval(itr.lower), env.eval(itr.upper) - 1
        ranges[itr.name] = (lo, hi)
        active = active & (hi >= lo)
    for access, is_target in _accesses(stmt):
        for d, index in enumerate(access.indices):
            zeros: list[Array] = []
            lo, hi = _interval(index, env.sizes, ranges, zeros)
            size = env.eval(shapes[access.tensor][d])
            ok = active & env.valid
            for zero in zeros:
                ok = ok & ~zero
            bad = np.flatnonzero(ok & ((lo < 0) | (hi >= size)))
            if bad.size:  # simplest counterexamples first: fewest zero sizes, then smallest
                values = [v[bad] for v in env.sizes.values()]
                total = np.sum(values, axis=0)
                zeros = np.sum([v == 0 for v in values], axis=0)
                bad = bad[np.lexsort((total, zeros))]
            for sample in bad[:8]:
                _report(
                    stmt, access, is_target, d, index, env, ranges, int(sample), shapes, symbolic
                )


def _report(
    stmt: Statement,
    access: Read,
    is_target: bool,
    d: int,
    index: Poly,
    env: _Env,
    ranges: Mapping[str, Interval],
    sample: int,
    shapes: Mapping[str, tuple[Poly, ...]],
    symbolic: bool,
) -> None:
    """Raise for the violation at ``sample`` unless enumeration shows it is spurious."""
    sizes = {k: int(v[sample]) for k, v in env.sizes.items()}
    iters = {k: (int(lo[sample]), int(hi[sample])) for k, (lo, hi) in ranges.items()}
    ilo, ihi = _interval(index, env.sizes, ranges, [])
    lo, hi = (
        int(np.broadcast_to(ilo, env.valid.shape)[sample]),
        int(np.broadcast_to(ihi, env.valid.shape)[sample]),
    )
    size = int(env.eval(shapes[access.tensor][d])[sample])
    if index.has_div():
        exact = _enumerate(index, sizes, iters)
        if exact is not None:
            lo, hi = exact
            if lo >= 0 and hi < size:
                return
    dim = shapes[access.tensor][d]
    text = f"{access.tensor}[{', '.join(str(i) for i in access.indices)}]"
    what = f"target {text}" if is_target else text
    dim_text = f" (`{dim}`)" if not dim.is_const() else ""
    relevant = index.symbols() | dim.symbols()
    for name in index.iterators():
        itr = stmt.iterator(name)
        relevant |= itr.lower.symbols() | itr.upper.symbols()
    when = ", ".join(f"{k} = {sizes[k]}" for k in sorted(relevant))
    ranges_text = ", ".join(
        f"{k} in {iters[k][0]}..{iters[k][1] + 1}" for k in sorted(index.iterators())
    )
    if is_target:
        hint = "narrow its iterator ranges"
    else:
        hint = (
            f"guard it: `{format_expr(access)} if in bounds else 0`, or narrow the iterator ranges"
        )
    message = (
        f"{what} {'can go' if symbolic else 'goes'} out of bounds: index {d} `{index}` ranges over "
        f"[{lo}, {hi}] but `{access.tensor}` has size {size} in dim {d}{dim_text}"
        + (f" when {when}" if when else "")
        + (f" ({ranges_text})" if ranges_text else "")
        + f"; {hint}"
    )
    raise error_at(access.loc, message)


def _interval(
    poly: Poly, sizes: Mapping[str, Array], ranges: Mapping[str, Interval], zeros: list[Array]
) -> Interval:
    """Bounds of ``poly`` over the iterator ``ranges`` (inclusive), per sample."""
    groups: dict[Atom | None, Array] = {}
    zero = np.zeros((), dtype=np.int64)
    for mono, coeff in poly.terms:
        var = [a for a in mono if _has_iterators(a)]
        rest = Poly.from_terms({tuple(a for a in mono if not _has_iterators(a)): coeff})
        key = var[0] if var else None
        groups[key] = groups.get(key, zero) + np.asarray(
            rest.evaluate(sizes, zeros), dtype=np.int64
        )
    lo: Array = np.zeros((), dtype=np.int64)
    hi: Array = np.zeros((), dtype=np.int64)
    for key, factor in groups.items():
        if key is None:
            lo, hi = lo + factor, hi + factor
            continue
        alo, ahi = _atom_interval(key, sizes, ranges, zeros)
        a, b = factor * alo, factor * ahi
        lo, hi = lo + np.minimum(a, b), hi + np.maximum(a, b)
    return lo, hi


def _has_iterators(atom: Atom) -> bool:
    if isinstance(atom, Iter):
        return True
    return isinstance(atom, FloorDiv | Mod) and bool(atom.num.iterators())


def _atom_interval(
    atom: Atom, sizes: Mapping[str, Array], ranges: Mapping[str, Interval], zeros: list[Array]
) -> Interval:
    if isinstance(atom, Iter):
        return ranges[atom.name]
    assert isinstance(atom, FloorDiv | Mod)
    nlo, nhi = _interval(atom.num, sizes, ranges, zeros)
    den = np.asarray(atom.den.evaluate(sizes, zeros), dtype=np.int64)
    nonpositive = den <= 0
    zeros.append(nonpositive)
    den = np.where(nonpositive, 1, den)
    qlo, qhi = nlo // den, nhi // den
    if isinstance(atom, FloorDiv):
        return qlo, qhi
    same = qlo == qhi
    return np.where(same, nlo % den, 0), np.where(same, nhi % den, den - 1)


def _enumerate(
    index: Poly, sizes: Mapping[str, int], iters: Mapping[str, tuple[int, int]]
) -> tuple[int, int] | None:
    """Exact min and max of ``index`` over its iterators' ranges, if small enough to enumerate."""
    names = sorted(index.iterators())
    extents = [iters[n][1] - iters[n][0] + 1 for n in names]
    if int(np.prod(extents, dtype=np.float64)) > MAX_ENUMERATION:
        return None
    env: dict[str, int | Array] = dict(sizes)
    for axis, name in enumerate(names):
        shape = [1] * len(names)
        shape[axis] = extents[axis]
        env[name] = np.arange(iters[name][0], iters[name][1] + 1, dtype=np.int64).reshape(shape)
    values = np.asarray(index.evaluate(env), dtype=np.int64)
    return int(values.min()), int(values.max())
