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
    assert {m.kind for m in sites} == set(M.FAULT_KINDS)
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
    assert {m.kind for m in a[:4]} == set(M.FAULT_KINDS)
    assert M.sample(sites, 1000, seed=0).__len__() == len(sites)


@pytest.fixture(scope="module")
def real_sites() -> list[M.Mutation]:
    return M.all_sites()


def test_real_targets_have_sites_of_every_kind(real_sites: list[M.Mutation]) -> None:
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


def test_known_equivalent_entries_match_a_site(real_sites: list[M.Mutation]) -> None:
    """Every reviewed equivalent mutant still exists (remove stale entries when the code
    changes), and only the reviewed sites are classified as equivalent."""
    sites = real_sites
    matched = {(m.path, m.description) for m in sites if M.known_equivalent(m)}
    assert matched == set(M.KNOWN_EQUIVALENT), set(M.KNOWN_EQUIVALENT) - matched
    generic = [m for m in sites if m.description == "0 -> 1"]
    assert any(not M.known_equivalent(m) for m in generic)
