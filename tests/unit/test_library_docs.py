"""docs/library.md runs: its Python blocks in order in one namespace (in an empty
directory), then its C program is built against the exported library and its shell
commands (`mlc`, `mlc-opt`, `cc`, `./main`) are run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlc.tools import mlc as mlc_cli
from mlc.tools import mlc_opt

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _needs_cc(language: str, code: str) -> bool:
    return language in ("c", "sh") or ".export(" in code


def _run_shell_line(line: str, namespace: dict[str, Any]) -> None:
    argv = shlex.split(line)
    if argv[0] == "mlc":
        assert mlc_cli.main(argv[1:]) == 0, line
    elif argv[0] == "mlc-opt":
        assert mlc_opt.main(argv[1:]) == 0, line
    elif argv[0] == "cc":
        done = subprocess.run(argv, capture_output=True, text=True)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    elif argv[0] == "./main":
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        printed = np.array(done.stdout.split(), np.float32)
        loaded, model = namespace["loaded"], namespace["model"]
        (spec,) = loaded.inputs
        x = (np.arange(int(np.prod(spec.shape))) % 7 - 3).astype(np.float32)
        (want,) = model(x.reshape(spec.shape))
        np.testing.assert_allclose(printed, want.reshape(-1), rtol=1e-5, atol=1e-5)
    else:
        raise AssertionError(f"the test does not know how to run: {line}")


def test_library_doc_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert [lang for lang, _ in blocks].count("python") >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "library_md"}
    for i, (language, code) in enumerate(blocks):
        if _needs_cc(language, code) and shutil.which("cc") is None:
            pytest.skip(f"block {i} ({language}) needs a C compiler (`cc`), none on PATH")
        if language == "python":
            exec(compile(code, f"{DOC.name}:block{i}", "exec"), namespace)
        elif language == "c":
            Path("main.c").write_text(code)
        elif language == "sh":
            for line in code.splitlines():
                if line.strip():
                    _run_shell_line(line, namespace)
        else:
            raise AssertionError(f"block {i}: unexpected language {language}")
    assert os.path.exists("tiny_cli.so") and os.path.exists("tiny_arm.o")
