"""The target a tuning record belongs to: the host's triple, CPU and features.

    target_id()      # "x86_64-unknown-linux-gnu/znver3/5f1c09a2b4d7"
    environment()    # {"mlc": "0.1.0", "cpu": "znver3", "triple": ..., "features": ...}

A measured time means something only on the machine it was measured on, so every record
carries its target and `TuningDatabase.best` only returns records of the target asked
for. The features string is long; the id carries its hash (the full text is in the
record's environment).
"""

from __future__ import annotations

import functools
import hashlib
import platform

from llvmlite import binding as llvm

import mlc
from mlc.host import host_features

__all__ = ["environment", "target_id"]


@functools.cache
def target_id() -> str:
    """`<triple>/<cpu>/<hash of the CPU features>` of the host."""
    features = host_features()
    digest = hashlib.sha256(features.features.encode()).hexdigest()[:12]
    return f"{llvm.get_process_triple()}/{features.cpu}/{digest}"


def environment() -> dict[str, str]:
    """What a record was measured with: mlc and llvmlite versions, CPU, triple, features."""
    import llvmlite

    features = host_features()
    return {
        "mlc": mlc.__version__,
        "llvmlite": llvmlite.__version__,
        "python": platform.python_version(),
        "cpu": features.cpu,
        "triple": llvm.get_process_triple(),
        "features": features.features,
    }
