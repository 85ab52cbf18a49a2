"""The service on Ray Serve, on a local Ray instance: two replicas (autoscaling between 2
and 3) of the packaged tiny CNN answer the same protocol, each client its own result."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from deploy_helpers import NAME, Packaged, images

from mlc.deploy.server import ServerConfig
from mlc.deploy.wheel_runtime import Model

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        serve.shutdown()
        ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_replicas_on_ray_serve_speak_the_same_protocol(local_ray: None, packaged: Packaged) -> None:
    from mlc.deploy.ray_serve import app_builder, application, run

    autoscaling = {"min_replicas": 2, "max_replicas": 3, "target_ongoing_requests": 4}
    app = application(
        packaged.wheel,
        config=ServerConfig(max_batch_size=4),
        autoscaling=autoscaling,
        num_cpus=0.25,
    )
    port = _free_port()
    run(app, port=port)
    status = serve.status().applications["mlc"].deployments[f"mlc-{NAME}"]
    assert status.replica_states.get("RUNNING") == 2

    url = f"http://127.0.0.1:{port}"
    meta = httpx.get(f"{url}/v2/models/{NAME}", timeout=30).json()
    assert meta["inputs"][0]["shape"] == [-1, 3, 32, 32]
    model = Model(packaged.package, num_threads=1)
    xs = [images(1 + i % 3, seed=50 + i) for i in range(12)]

    def infer(i: int) -> dict[str, Any]:
        body = {
            "id": f"ray-{i}",
            "inputs": [
                {
                    "name": "image",
                    "datatype": "FP32",
                    "shape": list(xs[i].shape),
                    "data": xs[i].ravel().tolist(),
                }
            ],
        }
        r = httpx.post(f"{url}/v2/models/{NAME}/infer", json=body, timeout=60)
        assert r.status_code == 200, r.text
        return dict(r.json())

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(infer, range(len(xs))))
    for i, answer in enumerate(answers):
        assert answer["id"] == f"ray-{i}"
        got = np.array(answer["outputs"][0]["data"], np.float32).reshape(len(xs[i]), 10)
        np.testing.assert_allclose(got, model.run(xs[i])[0], rtol=1e-5, atol=1e-6)
    bad = httpx.post(f"{url}/v2/models/{NAME}/infer", content=b"{", timeout=30)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    assert bad.json()["id"] == bad.headers["x-request-id"]  # Ray's proxy's id, in both
    with pytest.raises(ValueError, match="takes model=PATH"):
        app_builder({"modle": "x"})
