import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

# the compile cache of the tests is their own (one fresh directory per test process), never
# the user's
os.environ["MLC_CACHE_DIR"] = tempfile.mkdtemp(prefix="mlc-test-cache-")
# every compiled model's llvm-dialect module is verified (off by default: LLVM verifies its IR)
os.environ.setdefault("MLC_VERIFY", "1")

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=25, deadline=None)
# dev-sized and reproducible: for tests that run another test in a subprocess
settings.register_profile("smoke", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    """`MLC_COVERAGE_RECORD=cov.json`: record which `@covers` tests apply what they name
    (the dynamic coverage contract, docs/testing.md); off by default."""
    path = os.environ.get("MLC_COVERAGE_RECORD")
    if path:
        from mlc.testing.coverage import RecordingPlugin

        plugin = RecordingPlugin(path, worker=hasattr(config, "workerinput"))
        config.pluginmanager.register(plugin, "mlc-coverage-record")
