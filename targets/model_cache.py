"""Whole compiled models in the compile cache: a warm `mlc.compile` of a model compiled
before skips import, passes and code generation and only links.

    key = model_key(model, options)               # None: this model is not cacheable
    record = load_model(cache, key)               # ModelRecord or None
    save_model(cache, key, record, objects, constants)

The key hashes the model's bytes (an ONNX file or `ModelProto` as serialized, a module as
printed), every compile option, the target (triple, CPU, features), the `-O` level, the
mlc and llvmlite versions and a fingerprint of mlc's own source files (`code_fingerprint`:
an edited schedule or pass in a development checkout misses instead of returning the old
code). The record (JSON, parsed with `json` only) names the model's
function, its input and output buffers, workspace sizes, the compile-cache keys of its
objects and the content-addressed names of its constants; constants are stored as
entries of their own (`const`), their name being the SHA-256 of their bytes, and checked
against it when read. Any entry missing or corrupted makes the lookup a miss, and the
model is compiled (and stored) again. ONNX models with external data files and schedules
given as Python objects are not cached at this level (their content is not in the key);
their kernels still are.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import mlc
from mlc.targets.compile_cache import CompileCache
from mlc.targets.cpu import host_features, target_machine
from mlc.targets.llvm_emit import constant_digest

__all__ = ["ModelRecord", "code_fingerprint", "load_model", "model_key", "save_model"]

RECORD_VERSION = 3  # 2: runtimes by name; 3: constants named by their whole digest


@dataclass(frozen=True)
class ModelRecord:
    """What a compiled model is made of, in the cache."""

    name: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    workspace_bytes: int
    intermediate_bytes: int
    objects: list[str]
    constants: list[str]
    #: the runtimes its code calls (`targets.cpu.RUNTIMES`)
    runtimes: list[str]


def _model_bytes(model: Any) -> bytes | None:
    from xdsl.dialects.builtin import ModuleOp

    if isinstance(model, ModuleOp):
        return str(model).encode()
    if isinstance(model, bytes):
        data = model
    elif isinstance(model, str | os.PathLike):
        try:
            data = Path(model).read_bytes()
        except OSError:
            return None
    else:
        serialize = getattr(model, "SerializeToString", None)
        if serialize is None:
            return None
        data = serialize()
    try:  # parsed: 6x faster than searching the bytes for an external data "location"
        import onnx
        from onnx.external_data_helper import uses_external_data

        proto = onnx.load_from_string(data)
    except Exception:
        return None  # not a model the importer reads: it reports the error
    if any(uses_external_data(t) for t in proto.graph.initializer):
        return None
    return data


#: top-level folders of the package that are not compiler code
_NOT_COMPILER = frozenset({"tests", "benchmarks", "docs", "examples", "__pycache__"})


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 of the path, size and modification time of every `.py` file of the mlc
    package (the compiler's code; once per process, a few milliseconds)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not (Path(dirpath) == root and d in _NOT_COMPILER)
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                h.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def model_key(model: Any, options: dict[str, Any]) -> str | None:
    """The cache key of compiling `model` with `options` for the host, or None."""
    import llvmlite

    data = _model_bytes(model)
    if data is None:
        return None
    tm = target_machine()
    host = host_features()
    h = hashlib.sha256()
    meta = [RECORD_VERSION, mlc.__version__, code_fingerprint(), llvmlite.__version__, tm.triple]
    meta += [host.cpu]
    meta += [host.features, sorted(options.items())]
    h.update(json.dumps(meta, default=str).encode())
    h.update(data)
    return h.hexdigest()


def save_model(
    cache: CompileCache,
    key: str,
    record: ModelRecord,
    constants: dict[str, bytes],
) -> None:
    """Store `record` and its constants (its objects are in the cache already)."""
    for name, raw in constants.items():  # their names are their digests: not hashed again
        cache.put(name, raw, "const", evict=False, digest=constant_digest(name))
    cache.put(key, json.dumps(asdict(record), sort_keys=True).encode(), "model")


def load_model(
    cache: CompileCache, key: str
) -> tuple[ModelRecord, list[bytes], dict[str, bytes]] | None:
    """The record, its objects and its constants, or None if anything is missing or bad."""
    raw = cache.get(key, "model")
    if raw is None:
        return None
    try:
        fields = json.loads(raw)
        if not isinstance(fields, dict):
            return None
        record = ModelRecord(**fields)
    except (ValueError, TypeError):
        return None
    objects = []
    for k in record.objects:
        obj = cache.get(k)
        if obj is None:
            return None
        objects.append(obj)
    constants: dict[str, bytes] = {}
    for name in record.constants:
        found = cache.get_with_digest(name, "const")  # bytes checked against their digest
        if found is None or found[1] != constant_digest(name):  # ... which names them
            return None
        data = found[0]
        constants[name] = data
    return record, objects, constants


def buffer_json(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "dtype": spec.dtype.name, "shape": list(spec.shape)}


def buffer_from_json(entry: dict[str, Any]) -> tuple[tuple[int, ...], np.dtype, str]:
    """(shape, dtype, name); dtypes by name, numpy's or ml_dtypes' (`bfloat16`)."""
    name = str(entry["dtype"])
    try:
        dtype = np.dtype(name)
    except TypeError:
        import ml_dtypes

        dtype = np.dtype(getattr(ml_dtypes, name))
    return tuple(int(d) for d in entry["shape"]), dtype, str(entry["name"])
