"""Runs the FileCheck/lit suite under tests/filecheck as part of pytest: one test per
`.mlir` file, so pytest-xdist spreads the files over its workers (a single `lit` run of
the whole suite was one long test that no worker could share)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).parent / "filecheck"
FILES = sorted(p for p in SUITE.rglob("*.mlir") if "inputs" not in p.relative_to(SUITE).parts)


def test_every_lit_file_is_collected() -> None:
    assert len(FILES) >= 20, FILES


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SUITE)) for p in FILES])
def test_lit_file(path: Path) -> None:
    bin_dir = os.path.dirname(sys.executable)
    lit = os.path.join(bin_dir, "lit")
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(
        [lit, "-q", "-j", "1", str(path)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
