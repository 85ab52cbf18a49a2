"""The serving benchmark's fault suite, reduced: its hostile payloads all get a 4xx, clients
that disconnect mid-request leave the server well, and a burst of concurrent connections
gets every answer right (onnxruntime behind the server: nothing to compile)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from mlc.benchmarks.serving import (
    EXAMPLES,
    ModelCase,
    Payloads,
    _burst,
    _disconnects,
    _raw_requests,
    _raw_status,
    hostile_payloads,
)
from mlc.deploy.backends import load_backend
from mlc.deploy.server import InferenceService, ServerConfig, ServerThread

CASE = ModelCase("tiny CNN", EXAMPLES / "tiny_resnet.onnx", "image", (3, 32, 32), 1e-4)


def test_reduced_fault_suite() -> None:
    payloads = Payloads.make(CASE, count=4)
    backend = load_backend(Path(CASE.path), name="model", engine="onnxruntime")
    service = InferenceService([backend], ServerConfig(max_queue_size=512))
    with ServerThread(service) as server:

        async def hostile() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
                for label, body, headers in hostile_payloads(payloads):
                    r = await c.post("/v2/models/model/infer", content=body, headers=headers)
                    assert 400 <= r.status_code < 500 and "error" in r.json(), (label, r.text)
            for label, raw in _raw_requests(server.url, "model"):
                assert 400 <= await _raw_status(server.url, raw) < 500, label

        asyncio.run(hostile())
        asyncio.run(_disconnects(server.url, "model", payloads, 60))
        burst = asyncio.run(_burst(server.url, "model", payloads, 200, "t"))
        assert (burst.ok, burst.errors, burst.mixed) == (200, 0, 0)
        assert service.metrics.in_flight._value.get() == 0
