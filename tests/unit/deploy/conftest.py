"""The bundled tiny CNN packaged once per test session (for all xdist workers together:
the first worker builds the wheel under a file lock in a directory they share, the others
wait for it)."""

from __future__ import annotations

import fcntl
import json
import os
import zipfile
from collections.abc import Iterator

import pytest
from deploy_helpers import BATCH_SIZES, NAME, TINY_CNN, Packaged, SlowDoubler


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    from mlc.deploy.wheel import build_wheel

    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's base is in one directory per run: share that
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "mlc-wheel"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wheels = sorted(shared.glob("*.whl"))
        if not wheels:
            wheels = [build_wheel(TINY_CNN, NAME, shared, batch_sizes=BATCH_SIZES).path]
        unpacked = shared / "unpacked"
        if not unpacked.exists():
            with zipfile.ZipFile(wheels[0]) as z:
                z.extractall(shared / "unpacking")
            (shared / "unpacking").rename(unpacked)
    package = unpacked / NAME
    metadata = json.loads((package / "mlc_model.json").read_text())
    return Packaged(wheels[0], package, metadata)


@pytest.fixture
def doubler() -> Iterator[SlowDoubler]:
    yield SlowDoubler()
