"""`mlc package`: the wheel's contents and metadata, its runtime (batches, input checks,
the CPU check, digests), and a real install into a fresh virtual environment that has
numpy but neither mlc nor llvmlite."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import BATCH_SIZES, NAME, TINY_CNN, Packaged, images

from mlc.deploy import wheel_runtime
from mlc.deploy.features import required_cpu_flags
from mlc.deploy.wheel import WheelError, build_wheel, platform_tag
from mlc.deploy.wheel_runtime import (
    InvalidInputError,
    Model,
    ModelLoadError,
    UnsupportedCpuError,
    check_cpu,
    cpu_flags,
    plan_chunks,
)
from mlc.tools import mlc as cli


def test_the_wheel_is_tagged_for_this_platform_and_holds_the_model(packaged: Packaged) -> None:
    assert packaged.wheel.name == f"{NAME}-1.0.0-py3-none-{platform_tag()}.whl"
    assert platform_tag() != "any"
    with zipfile.ZipFile(packaged.wheel) as z:
        names = set(z.namelist())
        wheel_file = z.read(f"{NAME}-1.0.0.dist-info/WHEEL").decode()
        requires = z.read(f"{NAME}-1.0.0.dist-info/METADATA").decode()
    assert f"Tag: py3-none-{platform_tag()}" in wheel_file
    assert "Requires-Dist: numpy" in requires
    for size in BATCH_SIZES:
        for suffix in (".so", ".h", ".so.mlc.json"):
            assert f"{NAME}/lib/{NAME}_b{size}{suffix}" in names
    assert {f"{NAME}/__init__.py", f"{NAME}/_mlc_runtime.py", f"{NAME}/mlc_model.json"} <= names


def test_metadata_records_model_compiler_target_and_specs(packaged: Packaged) -> None:
    import mlc
    from mlc.host import host_features

    m = packaged.metadata
    assert m["model_sha256"] == hashlib.sha256(TINY_CNN.read_bytes()).hexdigest()
    assert m["mlc_version"] == mlc.__version__
    assert m["triple"].startswith(m["machine"]) and m["cpu"] == host_features().cpu
    assert m["required_cpu_flags"] == required_cpu_flags(host_features().features)
    assert "avx2" in m["required_cpu_flags"] and "fma" in m["required_cpu_flags"]
    assert m["batched"] is True
    assert m["inputs"] == [{"name": "image", "dtype": "float32", "shape": [None, 3, 32, 32]}]
    assert m["outputs"][0]["shape"] == [None, 10]
    for rec in m["libraries"]:
        data = (packaged.package / rec["file"]).read_bytes()
        assert rec["sha256"] == hashlib.sha256(data).hexdigest()


def test_any_batch_runs_as_chunks_of_the_compiled_sizes(packaged: Packaged) -> None:
    model = Model(packaged.package, num_threads=1)
    x = images(7)
    (y,) = model.run(x)
    assert model.batch_sizes == [4]
    rows = np.concatenate([model.run(x[i : i + 1])[0] for i in range(7)])
    np.testing.assert_allclose(y, rows, rtol=1e-5, atol=1e-6)
    assert y.shape == (7, 10) and np.allclose(y.sum(1), 1, atol=1e-5)
    assert plan_chunks(7, [1, 4]) == [(0, 4, 4), (4, 1, 1), (5, 1, 1), (6, 1, 1)]
    assert plan_chunks(3, [4, 8]) == [(0, 3, 4)]  # padded up to the smallest
    assert plan_chunks(9, [8]) == [(0, 8, 8), (8, 1, 8)]
    # with measured costs per run: whatever is cheapest, padding included
    assert plan_chunks(5, [1, 8], {1: 1.0, 8: 2.0}) == [(0, 5, 8)]
    assert plan_chunks(8, [1, 8], {1: 1.0, 8: 10.0}) == [(i, 1, 1) for i in range(8)]


def test_the_runtime_checks_inputs(packaged: Packaged) -> None:
    model = Model(packaged.package, num_threads=1)
    with pytest.raises(InvalidInputError, match="dtype float32, got float64"):
        model.run(images(1).astype(np.float64))
    with pytest.raises(InvalidInputError, match=r"shape \[N, 3, 32, 32\], got \[2, 3, 31, 32\]"):
        model.run(np.zeros((2, 3, 31, 32), np.float32))
    with pytest.raises(InvalidInputError, match="takes 2 inputs"):
        model.run(images(1), images(1))
    with pytest.raises(InvalidInputError, match="shape"):
        model.run(np.zeros((0, 3, 32, 32), np.float32))


def test_a_cpu_without_a_compiled_feature_is_refused(packaged: Packaged, tmp_path: Path) -> None:
    m = packaged.metadata
    have = cpu_flags()
    assert have is not None and set(m["required_cpu_flags"]) <= have
    check_cpu(m, have)  # this machine: fine
    with pytest.raises(UnsupportedCpuError, match="this CPU lacks avx2, fma"):
        check_cpu(m, have - {"avx2", "fma"})
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse sse2\n")
    assert cpu_flags(str(fake)) == {"fpu", "sse", "sse2"}
    with pytest.raises(UnsupportedCpuError, match="illegal instruction"):
        check_cpu(m, cpu_flags(str(fake)))
    with pytest.raises(UnsupportedCpuError, match="compiled for riscv64"):
        check_cpu({**m, "machine": "riscv64", "triple": "riscv64-unknown-linux-gnu"}, have)


def test_a_modified_library_is_refused(packaged: Packaged, tmp_path: Path) -> None:
    copy = tmp_path / NAME
    shutil.copytree(packaged.package, copy)
    lib = copy / "lib" / f"{NAME}_b4.so"
    data = bytearray(lib.read_bytes())
    data[-100] ^= 0xFF
    lib.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="does not match the sha256"):
        Model(copy)


def test_package_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WheelError, match="not a Python identifier"):
        build_wheel(TINY_CNN, "my-model", tmp_path)
    with pytest.raises(WheelError, match="shadow"):
        build_wheel(TINY_CNN, "json", tmp_path)
    assert (
        cli.main(["package", str(tmp_path / "none.onnx"), "--name", "m", "-o", str(tmp_path)]) == 1
    )
    assert cli.main(["package", str(TINY_CNN), "--name", "m", "--batch-sizes", "0"]) == 1
    assert cli.main(["package", str(TINY_CNN), "--name", "m", "--cpu", "znver9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("mlc: error: ") for line in err), err
    assert "no such file" in err[0] and "--batch-sizes" in err[1] and "x86-64-v3" in err[2]


def _numpy_only_venv(root: Path) -> Path:
    """A virtual environment without pip or system site-packages whose only package is this
    environment's numpy, linked in through a .pth file (offline and fast: nothing is
    downloaded or copied; pip sees numpy's metadata, so the wheel's requirement is met)."""
    import numpy

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    overlay = root / "numpy-only"
    overlay.mkdir()
    site = Path(numpy.__file__).parent.parent
    for entry in site.iterdir():
        if entry.name in ("numpy", "numpy.libs") or (
            entry.name.startswith("numpy-") and entry.name.endswith(".dist-info")
        ):
            (overlay / entry.name).symlink_to(entry)
    lib = next((root / "lib").glob("python3*")) / "site-packages"
    (lib / "numpy-only.pth").write_text(f"{overlay}\n")
    return root / "bin" / "python"


_CHECK = """
import importlib.util, sys
import numpy as np
assert importlib.util.find_spec("mlc") is None and importlib.util.find_spec("llvmlite") is None
import {name}
x = np.load(sys.argv[1])
(y,) = {name}.run(x)
np.save(sys.argv[2], y)
print({name}.input_specs[0], {name}.metadata["triple"])
"""


def test_the_wheel_installs_and_runs_with_numpy_alone(packaged: Packaged, tmp_path: Path) -> None:
    python = _numpy_only_venv(tmp_path / "venv")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "-q"]
    done = subprocess.run([*pip, str(packaged.wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    x = images(6, seed=3)
    np.save(tmp_path / "x.npy", x)
    script = _CHECK.format(name=NAME)
    run = [str(python), "-c", script, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    done = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "image: float32[N, 3, 32, 32]" in done.stdout
    expected = Model(packaged.package, num_threads=1).run(x)[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6)

    # the same installed wheel on a CPU without AVX2: import fails with a clear message
    fake = tmp_path / "cpuinfo"
    fake.write_text("flags\t\t: " + " ".join(sorted(cpu_flags() - {"avx2"})) + "\n")
    env = {"MLC_CPUINFO": str(fake), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(python), "-c", f"import {NAME}"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{NAME}._mlc_runtime.UnsupportedCpuError: {NAME}: this CPU lacks avx2")


def test_the_runtime_needs_nothing_from_mlc() -> None:
    """The file copied into every wheel imports only the standard library and numpy."""
    import ast

    tree = ast.parse(Path(wheel_runtime.__file__).read_text())
    imported = {
        (a.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for a in (node.names if isinstance(node, ast.Import) else [node])
    }
    assert imported - set(sys.stdlib_module_names) <= {"numpy", "ml_dtypes", "__future__"}
