"""`mlc package`: a compiled model as a pip-installable wheel that needs numpy only.

    info = build_wheel("model.onnx", "resnet", "dist/", batch_sizes=[1, 8])
    info.path       # dist/resnet-1.0.0-py3-none-linux_x86_64.whl

    $ pip install dist/resnet-1.0.0-py3-none-linux_x86_64.whl
    >>> import resnet; (y,) = resnet.run(x)           # numpy in and out, any batch size

The wheel holds the package `<name>`: `__init__.py` (generated: `run`, `Model`,
`input_specs`, `output_specs`, `metadata`), `_mlc_runtime.py` (a copy of
`deploy/wheel_runtime.py`: ctypes + numpy), `mlc_model.json` (model sha256, mlc version,
target triple, CPU and its LLVM features, the cpuinfo flags required, input / output specs,
each library's sha256 and signature) and `lib/`: per batch size a shared library, its C
header and its mlc manifest (so `mlc.load` accepts it too). It is built by setuptools through
pypa/build's `ProjectBuilder` from a generated `pyproject.toml`; the tag is
`py3-none-<platform>` (`linux_x86_64` here): the Python code is version independent, the
libraries are not portable across machines.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlc
from mlc.deploy import wheel_runtime
from mlc.deploy.features import level_features, lowering_flags, required_cpu_flags
from mlc.host import host_features
from mlc.targets.aot import export_library
from mlc.targets.compiled import lower_model

__all__ = ["WheelError", "WheelInfo", "build_wheel", "platform_tag"]


class WheelError(Exception):
    """Packaging failed (one line, for users)."""


@dataclass(frozen=True)
class WheelInfo:
    """What `build_wheel` wrote."""

    path: Path
    name: str
    version: str
    metadata: dict[str, Any]


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_VERSION = re.compile(r"\d+(\.\d+)*([ab]|rc)?\d*(\.post\d+)?(\.dev\d+)?\Z")


def check_name(name: str) -> None:
    """`name` must be importable and must not shadow a standard library module."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise WheelError(f"--name '{name}' is not a Python identifier (it is the import name)")
    if name in sys.stdlib_module_names or name in ("mlc", "numpy"):
        raise WheelError(f"--name '{name}' would shadow the module of that name; pick another")


def platform_tag() -> str:
    """This machine's wheel platform tag (`linux_x86_64`)."""
    return re.sub(r"[-.]", "_", sysconfig.get_platform())


def _model_inputs(path: Path) -> list[tuple[str, list[int | str]]]:
    """The ONNX model's graph inputs (initializers excluded): name and dims (a name for a
    symbolic dimension)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # (protobuf's DecodeError, OSError, ...)
        raise WheelError(f"{path}: not a readable ONNX model ({str(e)[:200]})") from None
    inits = {t.name for t in model.graph.initializer}
    found = []
    for info in model.graph.input:
        if info.name in inits:
            continue
        dims = info.type.tensor_type.shape.dim
        found.append((info.name, [d.dim_value if d.HasField("dim_value") else "?" for d in dims]))
    return found


def _batch_shapes(
    inputs: list[tuple[str, list[int | str]]], batch: int, given: dict[str, list[int]]
) -> dict[str, list[int]]:
    shapes = {}
    for name, dims in inputs:
        dims = list(given.get(name, dims))
        if not dims:
            raise WheelError(f"input '{name}' is a scalar: the model has no batch dimension")
        dims[0] = batch
        if any(not isinstance(d, int) for d in dims):
            raise WheelError(
                f"input '{name}' has a dynamic dimension besides the batch: give its shape "
                "with --input-shape NAME=1x3x224x224"
            )
        shapes[name] = [int(d) for d in dims]
    return shapes


def _lower(path: Path, shapes: dict[str, list[int]] | None, progress: bool) -> Any:
    return lower_model(str(path), input_shapes=shapes, progress=progress)


def _specs(signature: dict[str, Any], key: str, batched: bool) -> list[dict[str, Any]]:
    return [
        {"name": b["name"], "dtype": b["dtype"], "shape": [None, *b["shape"][1:]]}
        if batched
        else {"name": b["name"], "dtype": b["dtype"], "shape": list(b["shape"])}
        for b in signature[key]
    ]


def _is_batched(signatures: dict[int, dict[str, Any]]) -> bool:
    """Whether dimension 0 of every input and output is the batch size it was compiled for."""
    return all(
        all(b["shape"][:1] == [size] for b in (*sig["inputs"], *sig["outputs"]))
        for size, sig in signatures.items()
    )


def build_wheel(
    model: str | Path,
    name: str,
    out_dir: str | Path,
    *,
    batch_sizes: Sequence[int] | None = None,
    cpu: str | None = None,
    version: str = "1.0.0",
    input_shapes: dict[str, list[int]] | None = None,
    progress: bool = False,
) -> WheelInfo:
    """Compile the ONNX `model` once per batch size (default: the batch size it declares,
    or 1) for the host CPU, or for the x86-64 level `cpu`, and build the wheel
    `<name>-<version>-py3-none-<platform>.whl` in `out_dir`."""
    check_name(name)
    if not _VERSION.match(version):
        raise WheelError(f"--version '{version}' is not a PEP 440 version such as 1.0.0")
    path, out = Path(model), Path(out_dir)
    if not path.is_file():
        raise WheelError(f"{path}: no such file")
    if path.suffix != ".onnx":
        raise WheelError(f"{path}: mlc package takes an ONNX model (.onnx)")
    inputs = _model_inputs(path)
    if batch_sizes is None:  # the model's own, where every input declares the same
        declared = {d[0] if d and isinstance(d[0], int) and d[0] > 0 else 1 for _, d in inputs}
        batch_sizes = [declared.pop() if len(declared) == 1 else 1]
    sizes = sorted(set(batch_sizes))
    if not sizes or sizes[0] < 1:
        raise WheelError(f"batch sizes must be at least 1, got {list(batch_sizes)}")
    host = host_features()
    if cpu is None:
        features, flags_from = host.features, host.features
    else:
        try:
            flags_from = level_features(cpu)
        except ValueError as e:
            raise WheelError(str(e)) from None
        features = None
        flags_from = [*flags_from, *lowering_flags(host)]
    given = dict(input_shapes or {})
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlc-package-") as tmp:
        package = Path(tmp) / name
        (package / "lib").mkdir(parents=True)
        records, signatures = [], {}
        for size in sizes:
            try:
                shapes = _batch_shapes(inputs, size, given)
            except WheelError:
                if len(sizes) > 1:
                    raise
                shapes = given or None  # (no batch dimension: compiled as declared)
            lowered = _lower(path, shapes, progress)
            lib = export_library(
                lowered, package / "lib" / f"{name}_b{size}.so", prefix=f"{name}_b{size}", cpu=cpu
            )
            signatures[size] = lib.signature
            data = lib.path.read_bytes()
            records.append(
                {
                    "batch_size": size,
                    "file": f"lib/{lib.path.name}",
                    "header": f"lib/{lib.path.stem}.h",
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "signature": lib.signature,
                }
            )
        batched = _is_batched(signatures)
        if len(sizes) > 1 and not batched:
            raise WheelError(
                "the model has no batch dimension (dimension 0 of some input or output is not "
                "the batch size); package it with one batch size"
            )
        first = signatures[sizes[0]]
        metadata = {
            "format": wheel_runtime.METADATA_FORMAT,
            "version": wheel_runtime.METADATA_VERSION,
            "name": name,
            "package_version": version,
            "mlc_version": mlc.__version__,
            "model_file": path.name,
            "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "triple": first["triple"],
            "machine": first["triple"].split("-")[0],
            "cpu": cpu or first["cpu"],
            "llvm_features": features if features is not None else ",".join(flags_from),
            "required_cpu_flags": required_cpu_flags(flags_from),
            "platform_tag": platform_tag(),
            "batched": batched,
            "inputs": _specs(first, "inputs", batched),
            "outputs": _specs(first, "outputs", batched),
            "libraries": records,
        }
        _write_package(package, metadata)
        _write_project(Path(tmp), metadata)
        wheel = _run_build(Path(tmp), out)
    return WheelInfo(wheel, name, version, metadata)


def _write_package(package: Path, metadata: dict[str, Any]) -> None:
    runtime = Path(wheel_runtime.__file__).read_text()
    (package / "_mlc_runtime.py").write_text(runtime)
    (package / wheel_runtime.METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
    (package / "__init__.py").write_text(_init_source(metadata))
    (package / "py.typed").write_text("")


def _spec_text(spec: dict[str, Any]) -> str:
    dims = ", ".join("N" if d is None else str(d) for d in spec["shape"])
    return f"{spec['name']}: {spec['dtype']}[{dims}]"


def _init_source(m: dict[str, Any]) -> str:
    ins = "\n".join(f"    {_spec_text(s)}" for s in m["inputs"])
    outs = "\n".join(f"    {_spec_text(s)}" for s in m["outputs"])
    args = ", ".join(re.sub(r"\W", "_", s["name"]) or "x" for s in m["inputs"])
    return f'''"""{m["name"]}: {m["model_file"]} compiled by mlc {m["mlc_version"]} for {m["triple"]} \
(CPU {m["cpu"] or "generic"}).

    import {m["name"]}
    outputs = {m["name"]}.run({args})        # numpy arrays in, a list of numpy arrays out
    model = {m["name"]}.Model(num_threads=1)  # another instance, its own thread setting

Inputs:
{ins}
Outputs:
{outs}
N: the batch dimension, any size (compiled for {[r["batch_size"] for r in m["libraries"]]}).
Generated by mlc package; the model's sha256 is {m["model_sha256"]}.
"""

from pathlib import Path as _Path
from typing import Any, Dict, List, Optional

import numpy as np

from ._mlc_runtime import (
    InvalidInputError,
    ModelLoadError,
    TensorSpec,
    UnsupportedCpuError,
)
from ._mlc_runtime import Model as _Model

__all__ = [
    "InvalidInputError",
    "Model",
    "ModelLoadError",
    "TensorSpec",
    "UnsupportedCpuError",
    "input_specs",
    "metadata",
    "output_specs",
    "run",
]
__version__ = {m["package_version"]!r}


class Model(_Model):
    """The packaged model; `num_threads`: threads for parallel loops (0: the OpenMP default;
    default: MLC_NUM_THREADS, else 0)."""

    def __init__(self, *, num_threads: Optional[int] = None) -> None:
        super().__init__(_Path(__file__).parent, num_threads=num_threads)


# loading checks this CPU and every library's digest: an unsupported CPU fails the import
_model = Model()
input_specs: List[TensorSpec] = _model.input_specs
output_specs: List[TensorSpec] = _model.output_specs
metadata: Dict[str, Any] = _model.metadata


def run(*inputs: np.ndarray) -> List[np.ndarray]:
    """The outputs for `inputs` (in `input_specs` order), one numpy array each."""
    return _model.run(*inputs)
'''


def _write_project(root: Path, m: dict[str, Any]) -> None:
    deps = ['"numpy>=1.21"']
    if any(s["dtype"] == "bfloat16" for s in (*m["inputs"], *m["outputs"])):
        deps.append('"ml_dtypes>=0.4"')
    specs = "\n".join(f"- `{_spec_text(s)}`" for s in (*m["inputs"], *m["outputs"]))
    (root / "README.md").write_text(
        f"# {m['name']}\n\n`{m['model_file']}` compiled by mlc {m['mlc_version']} for "
        f"{m['triple']} (CPU {m['cpu'] or 'generic'}; needs {', '.join(m['required_cpu_flags'])}"
        f").\n\n```python\nimport {m['name']}\noutputs = {m['name']}.run(*inputs)\n```\n\n"
        f"{specs}\n"
    )
    (root / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "{m["name"]}"
version = "{m["package_version"]}"
description = "{m["model_file"]} compiled by mlc {m["mlc_version"]} for {m["triple"]}"
readme = "README.md"
requires-python = ">=3.9"
dependencies = [{", ".join(deps)}]

[tool.setuptools]
packages = ["{m["name"]}"]
include-package-data = false

[tool.setuptools.package-data]
{m["name"]} = ["{wheel_runtime.METADATA_FILE}", "py.typed", "lib/*"]
"""
    )
    # a pure-Python package with a platform: py3-none-<platform> (ctypes loads the libraries)
    (root / "setup.cfg").write_text(
        f"[bdist_wheel]\npython_tag = py3\nplat_name = {m['platform_tag']}\n"
    )


def _run_build(source: Path, out: Path) -> Path:
    """Build the wheel of the project `source` into `out` with setuptools, through pypa/build
    (no isolated environment: this one's setuptools)."""
    try:
        from build import BuildBackendException, ProjectBuilder
        from pyproject_hooks import quiet_subprocess_runner
    except ImportError:
        raise WheelError("mlc package needs pypa/build: pip install 'mlc[serve]'") from None
    builder = ProjectBuilder(
        source, python_executable=sys.executable, runner=quiet_subprocess_runner
    )
    try:
        missing = {" -> ".join(chain) for chain in builder.check_dependencies("wheel")}
    except BuildBackendException:  # no setuptools to ask
        missing = set(builder.build_system_requires)
    if missing:
        raise WheelError(
            f"mlc package needs {', '.join(sorted(missing))} to build wheels: "
            "pip install 'mlc[serve]'"
        )
    with tempfile.TemporaryDirectory(prefix="mlc-wheel-") as tmp:
        try:
            built = Path(builder.build("wheel", tmp))
        except BuildBackendException as e:
            raise WheelError(f"building the wheel failed: {e}") from None
        target = out / built.name
        shutil.move(str(built), target)
    return target
