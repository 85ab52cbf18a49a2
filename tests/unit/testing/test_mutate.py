"""The fault-injection tool `mlc.testing.mutate`: site enumeration finds every fault kind,
mutations keep line numbers, sampling is deterministic, mutated modules run in a
subprocess through the import hook (killed / survived / invalid), and the covering tests
of a module come from `@covers` + the registry. The full mutation run is a script
(`python -m mlc.tools.mutate`), not a test."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mlc.testing import mutate as M

SOURCE = '''"""A toy module."""

import math


def reduce_sum(xs, n):
    init = 0.0
    acc = init
    for i in range(0, n - 1):
        if i < n:
            acc = acc + xs[i]
    return acc, math.inf, divmod(n, 3), identity("+")
'''


def toy_sites(tmp_path: Path) -> list[M.Mutation]:
    (tmp_path / "toy.py").write_text(SOURCE)
    return M.find_sites(tmp_path / "toy.py", tmp_path)


def test_sites_cover_every_fault_kind(tmp_path: Path) -> None:
    sites = toy_sites(tmp_path)
    described = {(m.kind, m.description) for m in sites}
    expected = {
        ("swap-operands", "n - 1 -> 1 - n"),
        ("swap-operands", "i < n -> n < i"),
        ("swap-operands", "divmod(n, 3) -> divmod(3, n)"),
        ("swap-operands", "range(0, n - 1) -> range(n - 1, 0)"),
        ("off-by-one", "1 -> 2"),
        ("off-by-one", "0 -> 1"),
        ("off-by-one", "i < n -> <="),
        ("wrong-identity", "0.0 -> other value"),
        ("wrong-identity", "math.inf -> 0.0"),
        ("wrong-identity", 'identity("+") -> other value'),
        ("drop-init", "delete `init = 0.0`"),
        ("drop-init", "delete `acc = init`"),
    }
    assert expected <= described, expected - described
    assert {m.kind for m in sites} == set(M.GENERIC_KINDS)
    # nothing in the docstring or the import
    assert all(m.line >= 6 for m in sites)


def test_mutations_parse_and_keep_line_numbers(tmp_path: Path) -> None:
    for m in toy_sites(tmp_path):
        mutated = m.apply(SOURCE)
        ast.parse(mutated)
        original_lines = SOURCE.splitlines()
        mutated_lines = mutated.splitlines()
        # every line except the mutated one is unchanged and in place
        for i, line in enumerate(original_lines, 1):
            if not m.line <= i <= m.end_line:
                assert mutated_lines[i - 1] == line, (m, i)
    swap = next(m for m in toy_sites(tmp_path) if m.description == "n - 1 -> 1 - n")
    assert "range(0, ((1) - (n)))" in swap.apply(SOURCE)
    wrong = next(m for m in toy_sites(tmp_path) if m.description == "0.0 -> other value")
    namespace: dict[str, object] = {"identity": lambda op: 0}
    exec(compile(wrong.apply(SOURCE), "toy.py", "exec"), namespace)
    assert namespace["reduce_sum"]([5.0, 7.0], 2)[0] == 6.0  # type: ignore[operator]


def test_sample_is_deterministic_and_round_robin(tmp_path: Path) -> None:
    sites = toy_sites(tmp_path)
    a, b = M.sample(sites, 8, seed=3), M.sample(sites, 8, seed=3)
    assert a == b and len(a) == 8
    assert {m.kind for m in a[:4]} == set(M.GENERIC_KINDS)
    assert M.sample(sites, 1000, seed=0).__len__() == len(sites)


def test_real_sites() -> None:
    """The checks that read every real site, in one test: collecting the sites takes most
    of a minute, once (separate tests would collect them once per xdist worker)."""
    sites = M.all_sites()
    check_every_kind_has_sites(sites)
    check_known_equivalent_entries_match_a_site(sites)
    check_real_corner_sites(sites)


def check_every_kind_has_sites(real_sites: list[M.Mutation]) -> None:
    sites = real_sites
    assert {m.kind for m in sites} == set(M.FAULT_KINDS)
    paths = {m.path for m in sites}
    assert {"lowering/tl_kernel_to_loops.py", "lowering/texpr_to_tl.py"} <= paths
    for m in sites[:: max(1, len(sites) // 50)]:
        ast.parse(m.apply((M.ROOT / m.path).read_text()))


def test_covering_tests_come_from_covers_and_the_registry() -> None:
    lowering = M.covering_tests(M.ROOT / "lowering/tl_kernel_to_loops.py")
    assert any(
        t.endswith("test_tl_lowering.py::test_lowering_preserves_semantics") for t in lowering
    )
    # the loop transformations lower kernels with it, so their property tests cover it too
    assert any(
        t.endswith("test_loop_schedule.py::test_split_preserves_semantics") for t in lowering
    )
    texpr = M.covering_tests(M.ROOT / "lowering/texpr_to_tl.py")
    assert "test_random_programs_keep_semantics" in [t.split("::")[1] for t in texpr]


LOWERING_TEST = (
    str(M.ROOT / "tests/unit/lowering/test_tl_lowering.py") + "::test_lowering_preserves_semantics"
)


def test_mutants_are_killed_survive_or_are_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    # fewer examples, always the same ones (random ones missed the mutant once in a while)
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "smoke")
    sites = M.find_sites(M.ROOT / "lowering/tl_kernel_to_loops.py")
    killer = next(
        m
        for m in sites
        if m.kind == "wrong-identity" and "argument init of arith.ConstantOp" in m.description
    )
    status, _, tail = M.run_tests([LOWERING_TEST], killer, timeout=300)
    assert status == "killed", tail
    # a "mutation" that changes nothing survives
    text = (M.ROOT / killer.path).read_text()
    same = dataclasses.replace(killer, description="no change", replacement=killer.original(text))
    status, _, tail = M.run_tests([LOWERING_TEST], same, timeout=300)
    assert status == "survived", tail
    # a module that no longer imports is invalid, not killed
    broken = M.Mutation(killer.path, 1, 0, 1, 0, "drop-init", "broken", "import no_such_mod\n")
    status, _, tail = M.run_tests([LOWERING_TEST], broken, timeout=300)
    assert status == "invalid" and "MUTANT-INVALID" in tail, tail


def test_exclude_files_and_definitions(tmp_path: Path) -> None:
    sites = toy_sites(tmp_path)
    assert all(M.excluded(m, ["toy.py"], tmp_path) for m in sites)
    assert all(M.excluded(m, ["*.py::reduce_sum"], tmp_path) for m in sites)
    assert not any(M.excluded(m, ["toy.py::other", "nope.py"], tmp_path) for m in sites)


def check_known_equivalent_entries_match_a_site(real_sites: list[M.Mutation]) -> None:
    """Every reviewed equivalent mutant still exists (remove stale entries when the code
    changes), and only the reviewed sites are classified as equivalent."""
    sites = real_sites
    matched = {(m.path, m.description) for m in sites if M.known_equivalent(m)}
    assert matched == set(M.KNOWN_EQUIVALENT), set(M.KNOWN_EQUIVALENT) - matched
    generic = [m for m in sites if m.description == "0 -> 1"]
    assert any(not M.known_equivalent(m) for m in generic)


CORNERS = '''"""Toy code generation with the corner fault classes."""

from xdsl.dialects import arith, llvm


def fold(e, lhs, rhs):
    if e.kind == AffineBinaryOpKind.FloorDiv:
        return lhs // rhs  # an affine expression rebuilt: not a site
    if isinstance(lhs, int):
        q, r = divmod(lhs, rhs)
        if lhs % rhs == 0:
            return lhs // rhs  # exact: not a site
        return q + r + (-lhs // rhs) + lhs % rhs


def floor_divmod(self, x, c):
    q = self.insert(llvm.SDivOp(x, c)).results[0]
    r = self.insert(llvm.SRemOp(x, c)).results[0]
    q = self.fix(q, r)
    return q, r


def emit(b, x, y, width, active, n):
    b.insert(arith.FloorDivSIOp(x, y))
    b.insert(arith.MaximumfOp(x, y))
    intrinsic("maximum")
    mask = [1 if i < active else 0 for i in range(width)]
    last = x * (width - 1)
    b.vector_body(x, n % width)
    return mask, last


def loops(fb, op, main, step):
    fb.serial_loop(op.lb, op.lb + main * step, step, body)
    fb.serial_loop(op.lb + main * step, op.ub, step, body)


def guards(block, pad, mask, fb):
    if block.predicate_map is not None:
        raise ScheduleError("a predicate")
    if pad is not None:
        valid = fb.in_bounds(idx, shape)
    if mask is None:
        return store()  # the path without a guard: not a site
    if pad is not None and always:
        pad = None  # drops a dead guard: not a site


def bits(element):
    width = element.width.data
    return width - 1  # a bit width: not a lane


def inline(written, read, m, at, row, c, group):
    for position, d in enumerate(written):
        at[d] = read.results[position]
    src = f"kb * {group} + g"
    return m.replace_dims_and_symbols(at, []), c * row[d], src
'''


def corner_sites(tmp_path: Path) -> list[M.Mutation]:
    (tmp_path / "corners.py").write_text(CORNERS)
    return [m for m in M.find_sites(tmp_path / "corners.py", tmp_path) if m.kind in M.CORNER_KINDS]


def test_corner_sites_are_found_where_the_code_emits_them(tmp_path: Path) -> None:
    sites = corner_sites(tmp_path)
    described = {(m.kind, m.description) for m in sites}
    expected = {
        ("floor-to-trunc", "divmod(lhs, rhs) -> rounded toward zero"),
        ("floor-to-trunc", "-lhs // rhs -> rounded toward zero"),
        ("floor-to-trunc", "lhs % rhs -> rounded toward zero"),
        ("floor-to-trunc", "floor_divmod: return the truncating q, r (no rounding toward -inf)"),
        ("floor-to-trunc", "arith.FloorDivSIOp -> arith.DivSIOp"),
        ("nan-minmax", "arith.MaximumfOp(...) -> MaxnumfOp"),
        ("nan-minmax", '"maximum" -> "maxnum"'),
        ("tail-lane", "active -> active - 1 (one lane short)"),
        ("tail-lane", "width - 1 -> width - 2 (the last lane one short)"),
        ("tail-lane", "n % width -> n % width - 1 (one lane short)"),
        (
            "drop-remainder",
            "delete `fb.serial_loop(op.lb + main * step, op.ub, step, body)`",
        ),
        ("skip-guard", "if block.predicate_map is not None -> if False"),
        ("skip-guard", "if pad is not None -> if False"),
        ("identity-map", "at[d] = read.results[position] -> at[position] (identity permutation)"),
        ("identity-map", "m.replace_dims_and_symbols(at, ...) -> m"),
        ("wrong-stride", "* row[d] -> * (row[d] + 1)"),
        ("wrong-stride", "* {group} -> * {group + 1}"),
    }
    assert expected <= described, expected - described
    # precise: divisibility tests, exact divisions, rebuilt affine expressions, the
    # unguarded path, dead-guard removal and bit widths are no sites
    assert len(described) == len(expected), described - expected
    assert {m.kind for m in sites} == set(M.CORNER_KINDS)


def test_corner_mutations_parse_keep_lines_and_mean_the_fault(tmp_path: Path) -> None:
    sites = corner_sites(tmp_path)
    for m in sites:
        mutated = m.apply(CORNERS)
        ast.parse(mutated)
        assert mutated.splitlines()[: m.line - 1] == CORNERS.splitlines()[: m.line - 1]
        assert len(mutated.splitlines()) >= len(CORNERS.splitlines()), m
    # Python floor arithmetic becomes truncating
    fold = [m for m in sites if m.kind == "floor-to-trunc" and "divmod" in m.description]
    namespace: dict[str, object] = {"AffineBinaryOpKind": type("K", (), {"FloorDiv": 1})}
    exec(compile(fold[0].apply(CORNERS), "corners.py", "exec"), namespace)
    e = type("E", (), {"kind": 0})()
    got = namespace["fold"](e, -7, 2)  # type: ignore[operator]
    # only divmod rounds toward zero, (-3, -1) instead of (-4, 1); the rest is unchanged
    assert got == -3 + -1 + (7 // 2) + (-7 % 2)
    # the remainder loop and a multi-line guard are deleted with their lines kept
    drop = next(m for m in sites if m.kind == "drop-remainder")
    assert "fb.serial_loop(op.lb + main" not in drop.apply(CORNERS)
    early = next(m for m in sites if "floor_divmod" in m.description)
    assert "results[0]; return q, r" in early.apply(CORNERS)


def check_real_corner_sites(real_sites: list[M.Mutation]) -> None:
    """The corner kinds find the code generation they model in the lowering modules, and
    every mutant compiles."""
    sites = [m for m in real_sites if m.kind in M.CORNER_KINDS]
    where = {(m.path, m.kind) for m in sites}
    assert {
        ("lowering/llvm_builder.py", "floor-to-trunc"),
        ("lowering/arith_to_llvm.py", "floor-to-trunc"),
        ("lowering/arith_to_llvm.py", "nan-minmax"),
        ("lowering/tl_vector_to_llvm.py", "drop-remainder"),
        ("lowering/tl_vector_to_llvm.py", "tail-lane"),
        ("lowering/tl_to_llvm.py", "skip-guard"),
        ("lowering/hw_x86_to_llvm.py", "wrong-stride"),
        ("transforms/loops/tensorize.py", "skip-guard"),
        ("transforms/loops/tensorize.py", "floor-to-trunc"),
        ("transforms/loops/tensorize.py", "wrong-stride"),
        ("transforms/loops/fusion.py", "identity-map"),
    } <= where
    drops = [m for m in sites if m.kind == "drop-remainder"]
    assert len(drops) == 2  # the unrolled loop's remainder and the vector loop's tail
    for m in sites:
        source = (M.ROOT / m.path).read_text()
        compile(m.apply(source), m.path, "exec")
    # the hardware lowerings, imported by name, are covered by convert-tl-to-llvm's tests
    assert M.covering_tests(M.ROOT / "lowering/hw_x86_to_llvm.py")
    assert M.area_of("lowering/llvm_builder.py") == "llvm lowering"
    assert M.area_of("transforms/loops/fusion.py") == "fusion"
    assert M.area_of("transforms/loops/split.py") == "loops"
