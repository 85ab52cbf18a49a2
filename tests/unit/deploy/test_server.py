"""The inference service: the protocol's endpoints over the ASGI app (httpx's transport),
bad requests, overload and model failures, concurrent clients' results kept apart, and on a
real socket: clients that disconnect, graceful shutdown, and `mlc serve` itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from deploy_helpers import NAME, TINY_CNN, Packaged, SlowDoubler, images

from mlc.deploy.backends import load_backend
from mlc.deploy.server import InferenceService, ServerConfig, ServerThread, create_app
from mlc.deploy.wheel_runtime import Model
from mlc.tools import mlc as cli


def _infer_json(x: np.ndarray, rid: str | None = None, name: str = "image") -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [
            {"name": name, "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
        ]
    }
    if rid is not None:
        body["id"] = rid
    return body


def _client(service: InferenceService) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(service))
    return httpx.AsyncClient(transport=transport, base_url="http://mlc")


def test_endpoints_json_and_binary_inference(packaged: Packaged) -> None:
    backend = load_backend(packaged.wheel)
    service = InferenceService([backend], ServerConfig(max_batch_size=4))
    x = images(3, seed=1)
    expected = Model(packaged.package, num_threads=1).run(x)[0]

    async def main() -> None:
        async with _client(service) as c:
            assert (await c.get("/v2/health/live")).json() == {"live": True}
            assert (await c.get("/v2/health/ready")).json() == {"ready": True}
            assert "binary_tensor_data" in (await c.get("/v2")).json()["extensions"]
            meta = (await c.get(f"/v2/models/{NAME}")).json()
            assert meta["platform"] == "mlc" and meta["versions"] == ["1"]
            assert meta["inputs"] == [
                {"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32]}
            ]
            assert (await c.get(f"/v2/models/{NAME}/versions/1/ready")).json()["ready"]

            r = await c.post(f"/v2/models/{NAME}/infer", json=_infer_json(x, "first"))
            assert r.status_code == 200 and r.json()["id"] == "first"
            out = r.json()["outputs"][0]
            assert out["name"] == "softmax_24" and out["shape"] == [3, 10]
            np.testing.assert_allclose(
                np.array(out["data"], np.float32).reshape(3, 10), expected, rtol=1e-6
            )
            assert r.headers["x-request-id"]  # (no header given: a fresh one)

            head = json.dumps(
                {
                    "id": "second",
                    "inputs": [
                        {
                            "name": "image",
                            "datatype": "FP32",
                            "shape": [3, 3, 32, 32],
                            "parameters": {"binary_data_size": x.nbytes},
                        }
                    ],
                    "parameters": {"binary_data_output": True},
                }
            ).encode()
            r = await c.post(
                f"/v2/models/{NAME}/infer",
                content=head + x.tobytes(),
                headers={"inference-header-content-length": str(len(head)), "x-request-id": "h-2"},
            )
            assert r.status_code == 200 and r.headers["x-request-id"] == "h-2"
            n = int(r.headers["inference-header-content-length"])
            assert json.loads(r.content[:n])["id"] == "second"
            np.testing.assert_allclose(
                np.frombuffer(r.content[n:], np.float32).reshape(3, 10), expected, rtol=1e-6
            )
            text = (await c.get("/metrics")).text
            assert f'mlc_requests_total{{code="200",endpoint="infer",model="{NAME}"}} 2.0' in text
            assert "mlc_queue_depth" in text and "mlc_batch_size_bucket" in text

    asyncio.run(main())


def test_bad_requests_get_4xx_with_a_message_and_their_id(doubler: SlowDoubler) -> None:
    service = InferenceService([doubler], ServerConfig(max_batch_size=2, max_request_bytes=4000))
    good = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    cases: list[tuple[str, bytes, int, str]] = [
        ("/v2/models/doubler/infer", b"{not json", 400, "not valid JSON"),
        (
            "/v2/models/doubler/infer",
            json.dumps({**good, "id": "x1", "inputs": []}).encode(),
            400,
            "inputs",
        ),
        (
            "/v2/models/doubler/infer",
            json.dumps({"inputs": [{**good["inputs"][0], "shape": [1, 5]}]}).encode(),
            400,
            "shape",
        ),
        (
            "/v2/models/doubler/infer",
            json.dumps({"inputs": [{**good["inputs"][0], "datatype": "INT8"}]}).encode(),
            400,
            "datatype",
        ),
        (
            "/v2/models/doubler/infer",
            json.dumps({"inputs": [{**good["inputs"][0], "name": "w"}]}).encode(),
            400,
            "unknown input",
        ),
        (
            "/v2/models/doubler/infer",
            json.dumps({"inputs": [{**good["inputs"][0], "shape": [3, 4]}]}).encode(),
            413,
            "1 to 2",
        ),
        ("/v2/models/doubler/infer", b"[" * 5000, 413, "over the limit"),
        ("/v2/models/nothing/infer", json.dumps(good).encode(), 404, "unknown model 'nothing'"),
        ("/v2/models/nothing", b"", 404, "unknown model"),
    ]

    async def main() -> None:
        async with _client(service) as c:
            for i, (url, body, status, message) in enumerate(cases):
                method = c.post if url.endswith("/infer") else c.get
                kwargs: dict[str, Any] = {"content": body} if url.endswith("/infer") else {}
                r = await method(url, headers={"x-request-id": f"bad-{i}"}, **kwargs)
                assert r.status_code == status, (url, body[:80], r.text)
                assert message in r.json()["error"], r.text
                # the body's id: the request's JSON id once it was read, else the header's
                assert r.headers["x-request-id"] == f"bad-{i}"
                assert r.json()["id"] == ("x1" if b'"x1"' in body else f"bad-{i}")
            r = await c.get("/nowhere")
            assert r.status_code == 404 and r.json()["id"] == r.headers["x-request-id"]
            r = await c.post("/v2/models/doubler/infer", json={**good, "id": "fine"})
            assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 4, 6, 8]

    asyncio.run(main())


def test_concurrent_clients_get_their_own_results_in_shared_batches(packaged: Packaged) -> None:
    backend = load_backend(packaged.wheel)
    service = InferenceService([backend], ServerConfig(max_batch_size=4, max_queue_delay_ms=2))
    rng = np.random.default_rng(5)
    requests = [images(int(rng.integers(1, 3)), seed=100 + i) for i in range(40)]
    model = Model(packaged.package, num_threads=1)

    async def main() -> list[httpx.Response]:
        async with _client(service) as c:
            return await asyncio.gather(
                *(
                    c.post(f"/v2/models/{NAME}/infer", json=_infer_json(x, f"c{i}"))
                    for i, x in enumerate(requests)
                )
            )

    responses = asyncio.run(main())
    for i, (x, r) in enumerate(zip(requests, responses)):
        assert r.status_code == 200 and r.json()["id"] == f"c{i}"
        got = np.array(r.json()["outputs"][0]["data"], np.float32).reshape(len(x), 10)
        np.testing.assert_allclose(got, model.run(x)[0], rtol=1e-5, atol=1e-6)
    batcher = service.models[NAME].batcher
    assert batcher.rows == sum(len(x) for x in requests) and batcher.batches < len(requests)


def test_overload_is_503_and_model_failures_are_5xx_or_422(doubler: SlowDoubler) -> None:
    slow = SlowDoubler("slow", delay=0.05)

    class Failing(SlowDoubler):
        def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
            if inputs[0][0, 0] < 0:
                raise ValueError("a gather index is out of range")
            raise RuntimeError("the model broke")

    config = ServerConfig(max_batch_size=1, max_queue_size=2)
    service = InferenceService([slow, Failing("failing")], config)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}

    async def main() -> None:
        async with _client(service) as c:
            rs = await asyncio.gather(
                *(c.post("/v2/models/slow/infer", json=body) for _ in range(12))
            )
            codes = sorted(r.status_code for r in rs)
            assert codes.count(503) >= 6 and codes.count(200) >= 2 and set(codes) == {200, 503}
            full = next(r for r in rs if r.status_code == 503)
            assert "queue is full" in full.json()["error"] and full.headers["retry-after"] == "1"
            assert (await c.post("/v2/models/slow/infer", json=body)).status_code == 200
            r = await c.post("/v2/models/failing/infer", json=body)
            assert r.status_code == 500 and "RuntimeError: the model broke" in r.json()["error"]
            neg = {"inputs": [{**body["inputs"][0], "data": [-1, 2, 3, 4]}]}
            r = await c.post("/v2/models/failing/infer", json=neg)
            assert r.status_code == 422 and "out of range" in r.json()["error"]

    asyncio.run(main())


def test_onnxruntime_and_a_shared_library_behind_the_same_server(packaged: Packaged) -> None:
    ort = load_backend(TINY_CNN, name="ort", engine="onnxruntime")
    lib = load_backend(packaged.package / "lib" / f"{NAME}_b4.so", name="lib")
    assert ort.batched and lib.batched and ort.inputs == lib.inputs
    service = InferenceService([ort, lib], ServerConfig(max_batch_size=4))
    x = images(4, seed=9)

    async def main() -> list[np.ndarray]:
        async with _client(service) as c:
            outs = []
            for name in ("ort", "lib"):
                r = await c.post(f"/v2/models/{name}/infer", json=_infer_json(x))
                assert r.status_code == 200, r.text
                outs.append(np.array(r.json()["outputs"][0]["data"], np.float32).reshape(4, 10))
            return outs

    a, b = asyncio.run(main())
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _raw(port: int, data: bytes, wait: float = 0.0) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        time.sleep(wait)


def test_disconnecting_clients_and_graceful_shutdown_on_a_real_socket() -> None:
    slow = SlowDoubler("slow", delay=0.3)
    service = InferenceService([slow], ServerConfig(max_batch_size=1, body_timeout_s=1.0))
    server = ServerThread(service)
    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    )
    head = "POST /v2/models/slow/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    # a client that stops sending its body, one that leaves before its answer, and garbage
    _raw(server.port, (head + "content-length: 1000\r\n\r\n" + body[:10]).encode())
    _raw(server.port, (head + f"content-length: {len(body)}\r\n\r\n" + body).encode(), wait=0.05)
    _raw(server.port, b"\x16\x03\x01\x00\xff" + os.urandom(200))
    results: dict[int, httpx.Response] = {}

    def call(i: int) -> None:
        results[i] = httpx.post(f"{server.url}/v2/models/slow/infer", content=body, timeout=10)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while service.metrics.in_flight._value.get() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop()  # while three requests are in flight: they finish, then it stops
    for t in threads:
        t.join(10)
    assert [results[i].status_code for i in range(3)] == [200, 200, 200]
    assert all(results[i].json()["outputs"][0]["data"] == [2, 4, 6, 8] for i in range(3))
    assert slow.runs.count(1) == len(slow.runs) and len(slow.runs) <= 4
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v2/health/live", timeout=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mlc_serve_serves_a_wheel_and_stops_on_sigterm(packaged: Packaged, tmp_path: Path) -> None:
    assert cli.main(["serve", str(tmp_path / "missing.onnx")]) == 1
    assert cli.main(["serve", str(TINY_CNN), "--max-batch-size", "0"]) == 1
    port = _free_port()
    cmd = [sys.executable, "-m", "mlc.tools.mlc", "serve", str(packaged.wheel), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        r = httpx.post(f"{url}/v2/models/{NAME}/infer", json=_infer_json(images(2), "cli"))
        assert r.status_code == 200 and r.json()["id"] == "cli"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    # a graceful shutdown, then uvicorn re-raises the signal (the process ends by SIGTERM)
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert f"serving {NAME} on {url}" in out
