"""Replay every regression file (`*.mlir`) in this folder: the transform named in its
header must now preserve the semantics of its IR on its inputs (format:
`mlc.testing.semantics.write_regression`)."""

from pathlib import Path

import pytest

from mlc.testing.semantics import check_regression

HERE = Path(__file__).parent
FILES = sorted(HERE.glob("*.mlir"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_regression(path: Path) -> None:
    check_regression(path)
