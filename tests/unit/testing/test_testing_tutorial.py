"""The tutorial in docs/testing.md runs: its python block is imported as a module and its
test function called."""

import re
import runpy
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "testing.md"


def test_tutorial_example_runs(tmp_path: Path) -> None:
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    script = tmp_path / "tutorial.py"
    script.write_text(block.group(1))
    namespace = runpy.run_path(str(script))
    namespace["test_double_to_add"]()
