"""Meta-test: every registered pass and rewrite pattern has a Hypothesis property test
(`@covers(name)` + `@given`) comparing semantics before and after."""

from pathlib import Path

from mlc.registry import all_pass_factories, all_rewrite_patterns
from mlc.testing.coverage import covered_names

TESTS = Path(__file__).parent


def test_every_pass_and_pattern_has_a_property_test() -> None:
    covered = covered_names(TESTS)
    registered = set(all_pass_factories()) | set(all_rewrite_patterns())
    missing = sorted(registered - set(covered))
    assert not missing, f"registered but without a @covers property test: {missing}"


def test_covers_names_are_registered() -> None:
    registered = set(all_pass_factories()) | set(all_rewrite_patterns())
    unknown = sorted(set(covered_names(TESTS)) - registered)
    assert not unknown, f"@covers names that are not registered: {unknown}"
