"""Exported libraries are checked before `dlopen`: `export_library` writes a manifest
(`<library>.mlc.json`: sha256, size, signature) and `load` refuses, with an `AotError` and
never a crash, a library that is truncated, corrupted, edited, swapped or without manifest.
The damaged libraries are loaded in a child interpreter, so that a crash would show as a
return code instead of killing the test run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlc
from mlc.targets import aot
from mlc.targets.aot import AotError, export_library, export_object, load, manifest_path
from mlc.targets.compiled import CompiledModel

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None, reason="no C compiler (`cc`) on PATH to link the libraries"
)

#: the input's entry in the embedded signature (json.dumps, sort_keys)
INPUT_JSON = b'{"dtype": "float32", "name": "x", "shape": [2, 7]}'
NAME = "m.so"

#: loads each (case, path, verify) of argv[1] and prints one JSON line per case
CHILD = r"""
import json, sys
from mlc.targets.aot import AotError, load
for case, path, verify in json.loads(sys.argv[1]):
    try:
        load(path, verify=verify)
        result = {"case": case, "outcome": "loaded"}
    except AotError as e:
        result = {"case": case, "outcome": "AotError", "message": str(e)}
    except Exception as e:
        result = {"case": case, "outcome": type(e).__name__, "message": str(e)}
    print(json.dumps(result), flush=True)
"""


def _model(seed: int) -> onnx.ModelProto:
    """y = relu(x @ w + b), x: float32[2, 7], with weights drawn from `seed`."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((7, 5)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def models() -> tuple[CompiledModel, CompiledModel]:
    """Two models with the same signature and different weights."""
    return mlc.compile(_model(0)), mlc.compile(_model(1))


@pytest.fixture(scope="module")
def good(models: tuple[CompiledModel, CompiledModel], tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("good") / NAME
    models[0].export(path)
    return path


@pytest.fixture(scope="module")
def other(models: tuple[CompiledModel, CompiledModel], tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("other") / NAME
    models[1].export(path)
    return path


def _x() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((2, 7)).astype(np.float32)


# -- the damaged artifacts -------------------------------------------------------------------


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _edit_signature(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    """Replace, in the embedded signature, the input's `old` by `new` (same length)."""

    def edit(data: bytes) -> bytes:
        assert len(old) == len(new) and data.count(INPUT_JSON) == 1
        return data.replace(INPUT_JSON, INPUT_JSON.replace(old, new))

    return edit


def _edit_manifest(edit: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    def edited(text: str) -> str:
        manifest = json.loads(text)
        edit(manifest)
        return json.dumps(manifest)

    return edited


def _flip_digest(manifest: dict[str, Any]) -> None:
    digest = manifest["sha256"]
    manifest["sha256"] = ("1" if digest[0] == "0" else "0") + digest[1:]


def _grow_size(manifest: dict[str, Any]) -> None:
    manifest["size"] += 1


def _edit_manifest_shape(manifest: dict[str, Any]) -> None:
    manifest["signature"]["inputs"][0]["shape"] = [1, 3, 32, 3]


@dataclass(frozen=True)
class Case:
    """A damaged copy of the good library: how to damage it and what load must say."""

    name: str
    message: str
    library: Callable[[bytes], bytes] | None = None
    manifest: Callable[[str], str] | None = None
    #: copy the manifest at all; load with verify=...
    keep_manifest: bool = True
    verify: bool = True
    #: refused before dlopen (every case but a manifest that lies consistently)
    before_dlopen: bool = True


MISMATCH = "the library does not match its manifest (corrupted or modified since export"
TRUNCATED = "cannot load it as a shared library (truncated"
CASES = [
    Case("truncated-10%", MISMATCH, library=_truncate(0.1)),
    Case("truncated-50%", MISMATCH, library=_truncate(0.5)),
    Case("truncated-by-1", MISMATCH, library=lambda data: data[:-1]),
    Case("empty", MISMATCH, library=lambda data: b""),
    Case("flipped-byte", MISMATCH + ": its sha256 differs", library=_flip_middle),
    Case("signature-shape", MISMATCH, library=_edit_signature(b"[2, 7]", b"[2, 9]")),
    Case("signature-dtype", MISMATCH, library=_edit_signature(b"float32", b"float64")),
    Case("swapped-library", MISMATCH, library=lambda data: b"swap"),
    Case("no-manifest", "the library has no mlc manifest (m.so.mlc.json)", keep_manifest=False),
    Case("manifest-digest", MISMATCH, manifest=_edit_manifest(_flip_digest)),
    Case("manifest-size", MISMATCH, manifest=_edit_manifest(_grow_size)),
    Case("manifest-not-json", "invalid mlc manifest", manifest=lambda text: text[:-40]),
    Case("manifest-pickle", "invalid mlc manifest", manifest=lambda text: "\x80\x04K\x01."),
    Case(
        "manifest-shape",
        "its embedded mlc_signature does not match the signature in its manifest",
        manifest=_edit_manifest(_edit_manifest_shape),
        before_dlopen=False,
    ),
    Case(
        "unverified-manifest-shape",
        "its embedded mlc_signature does not match the signature in its manifest",
        manifest=_edit_manifest(_edit_manifest_shape),
        verify=False,
        before_dlopen=False,
    ),
    Case("unverified-truncated-50%", TRUNCATED, _truncate(0.5), keep_manifest=False, verify=False),
    Case(
        "unverified-truncated-by-1", TRUNCATED, lambda d: d[:-1], keep_manifest=False, verify=False
    ),
    Case(
        "unverified-text",
        "not an ELF file",
        lambda d: b"hello\n",
        keep_manifest=False,
        verify=False,
    ),
]


def _make(case: Case, good: Path, other: Path, root: Path) -> Path:
    """The damaged library of `case` (with its manifest, as the case says) under `root`."""
    path = root / case.name / NAME
    path.parent.mkdir()
    data = good.read_bytes()
    if case.name == "swapped-library":  # another model's library, this one's manifest
        data = other.read_bytes()
        assert len(data) == len(good.read_bytes()) and data != good.read_bytes()
    elif case.library is not None:
        data = case.library(data)
    path.write_bytes(data)
    if case.keep_manifest:
        text = manifest_path(good).read_text()
        manifest_path(path).write_text(case.manifest(text) if case.manifest else text)
    return path


@pytest.fixture(scope="module")
def damaged(good: Path, other: Path, tmp_path_factory: Any) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    return {case.name: _make(case, good, other, root) for case in CASES}


@pytest.fixture(scope="module")
def child_results(damaged: dict[str, Path]) -> tuple[subprocess.CompletedProcess, dict]:
    """Every damaged library loaded in one child interpreter: its run and result per case."""
    jobs = [(case.name, str(damaged[case.name]), case.verify) for case in CASES]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(jobs)], capture_output=True, text=True, timeout=300
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done, {r["case"]: r for r in results}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_damaged_library_is_refused_without_a_crash(
    case: Case, child_results: tuple[subprocess.CompletedProcess, dict]
) -> None:
    done, results = child_results
    assert done.returncode == 0, f"the child crashed ({done.returncode}): {done.stderr[-2000:]}"
    result = results[case.name]
    assert result["outcome"] == "AotError", result
    assert case.message in result["message"], result["message"]
    assert "\n" not in result["message"]


@pytest.mark.parametrize("case", [c for c in CASES if c.before_dlopen], ids=lambda c: c.name)
def test_damaged_library_is_refused_before_dlopen(
    case: Case, damaged: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dlopen(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"dlopen{args} of a damaged library")

    monkeypatch.setattr(aot.ctypes, "CDLL", no_dlopen)
    with pytest.raises(AotError, match="m.so") as info:
        load(damaged[case.name], verify=case.verify)
    assert case.message in str(info.value)


# -- the good library ------------------------------------------------------------------------


def test_good_library_loads_and_equals_the_jit(
    models: tuple[CompiledModel, CompiledModel], good: Path
) -> None:
    loaded = mlc.load(good)
    x = _x()
    np.testing.assert_array_equal(loaded(x)[0], models[0](x)[0])
    assert loaded.manifest is not None
    assert loaded.manifest["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()


def test_manifest_records_digest_and_signature(good: Path) -> None:
    manifest = json.loads(manifest_path(good).read_text())
    data = good.read_bytes()
    assert manifest_path(good).name == "m.so.mlc.json"
    assert manifest["format"] == "mlc-library-manifest" and manifest["version"] == 1
    assert manifest["library"] == NAME and manifest["size"] == len(data)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["signature"] == load(good).signature
    assert INPUT_JSON in data  # the signature the damaged cases edit
    assert f"sha256 {manifest['sha256']}" in good.with_suffix(".h").read_text()
    assert sorted(p.name for p in good.parent.iterdir()) == ["m.h", "m.so", "m.so.mlc.json"]


def test_export_returns_the_manifest(
    models: tuple[CompiledModel, CompiledModel], tmp_path: Path
) -> None:
    exported = export_library(models[0], tmp_path / "lib.so", header=False)
    assert exported.manifest == tmp_path / "lib.so.mlc.json" and exported.manifest.is_file()
    assert exported.header is None


def test_unverified_load_of_a_library_without_manifest(
    models: tuple[CompiledModel, CompiledModel], good: Path, tmp_path: Path
) -> None:
    bare = tmp_path / NAME
    shutil.copy(good, bare)
    with pytest.raises(AotError, match="has no mlc manifest"):
        load(bare)
    loaded = load(bare, verify=False)
    assert loaded.manifest is None
    x = _x()
    np.testing.assert_array_equal(loaded(x)[0], models[0](x)[0])


def test_reexport_to_the_same_path_loads_the_new_library(
    models: tuple[CompiledModel, CompiledModel], tmp_path: Path
) -> None:
    """glibc hands out a loaded library again for the same name: load must not."""
    path, x = tmp_path / NAME, _x()
    for model in (*models, models[0]):
        model.export(path)
        np.testing.assert_array_equal(load(path)(x)[0], model(x)[0])


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd")
def test_loading_again_holds_no_new_descriptor(good: Path) -> None:
    load(good)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        load(good)
    assert len(os.listdir("/proc/self/fd")) == before


def test_object_export_writes_no_manifest(
    models: tuple[CompiledModel, CompiledModel], tmp_path: Path
) -> None:
    exported = export_object(models[0], tmp_path / "m.o")
    assert exported.manifest is None and not manifest_path(exported.path).exists()


def test_cli_compile_writes_the_manifest(tmp_path: Path) -> None:
    from mlc.tools import mlc as mlc_cli

    onnx.save(_model(0), tmp_path / "small.onnx")
    out = tmp_path / "small.so"
    assert mlc_cli.main(["compile", str(tmp_path / "small.onnx"), "-o", str(out)]) == 0
    assert json.loads(manifest_path(out).read_text())["size"] == out.stat().st_size
    (y,) = load(out)(_x())
    assert y.shape == (2, 5)
