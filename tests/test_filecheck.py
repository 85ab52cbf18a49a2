"""Runs the FileCheck/lit suite under tests/filecheck as part of pytest."""

import os
import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).parent / "filecheck"


def test_lit_suite() -> None:
    bin_dir = os.path.dirname(sys.executable)
    lit = os.path.join(bin_dir, "lit")
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(
        [lit, "-q", "-j", "2", str(SUITE)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
