"""The inference service: the Open Inference Protocol (KServe v2) on FastAPI + uvicorn.

    service = InferenceService([load_backend("model.onnx", batch_sizes=[1, 2, 4, 8])])
    app = create_app(service)                        # an ASGI app (FastAPI)
    serve(service, host="0.0.0.0", port=8000)        # uvicorn; `mlc serve` runs this

Endpoints: `GET /v2/health/live`, `/v2/health/ready`, `/v2`, `/v2/models/{name}` (metadata:
platform, inputs and outputs with `-1` for the batch dimension), `/v2/models/{name}/ready`,
`POST /v2/models/{name}/infer` (JSON tensors or binary tensor data, `deploy.protocol`; also
under `/versions/{version}`), `GET /metrics` (Prometheus, `deploy.metrics`).

Every response carries its request's id: the `x-request-id` header (the client's, if it sent
a printable one, else a fresh uuid), and in infer and error responses the body's `id` (the
request's JSON `id` if it had one, else the header's). A request the server cannot serve gets a
4xx and `{"error": message, "id": ...}`: malformed JSON or tensors (400), an unknown model
(404), a body over `max_request_bytes` (413, before it is read), a body that does not arrive
within `body_timeout_s` (408), the model rejecting the input values (422); a full queue or a
server shutting down answers 503 (with `Retry-After`). Anything else is a 500 with the
reason; the server goes on.

Shutdown (SIGINT / SIGTERM): readiness turns 503, new infer requests get 503, requests
already received finish (uvicorn waits up to `shutdown_timeout_s`), then every batcher
drains its queue and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import mlc
from mlc.deploy.backends import Backend
from mlc.deploy.batching import DynamicBatcher, QueueFullError, ShuttingDownError
from mlc.deploy.metrics import Metrics
from mlc.deploy.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    datatype_of,
    encode_infer_response,
    parse_header,
    parse_infer_request,
    request_id,
)
from mlc.deploy.wheel_runtime import TensorSpec

__all__ = ["InferenceService", "ServerConfig", "ServerThread", "create_app", "serve"]

MODEL_VERSION = "1"


@dataclass(frozen=True)
class ServerConfig:
    """How the service batches, queues and limits requests."""

    #: rows per batch run (and per request), for models with a batch dimension
    max_batch_size: int = 8
    #: how long a batch's first request waits for more (0: run what is queued at once)
    max_queue_delay_ms: float = 0.0
    #: requests waiting per model; more are answered 503
    max_queue_size: int = 256
    #: request bodies over this are answered 413
    max_request_bytes: int = 32 << 20
    #: seconds a client has to send its body
    body_timeout_s: float = 30.0
    #: dynamic batching on; off: every request runs alone
    batching: bool = True
    #: cancel a queued request whose client disconnected
    cancel_on_disconnect: bool = True
    #: seconds shutdown waits for in-flight requests
    shutdown_timeout_s: float = 30.0


@dataclass
class _Model:
    backend: Backend
    batcher: DynamicBatcher
    max_rows: int


class InferenceService:
    """The models, their batchers and metrics, and the protocol's handlers."""

    def __init__(
        self,
        backends: Sequence[Backend],
        config: ServerConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.metrics = metrics or Metrics()
        self.models: dict[str, _Model] = {}
        c = self.config
        for backend in backends:
            if backend.name in self.models:
                raise ValueError(f"two models are named '{backend.name}'")
            batched = backend.batched and c.batching
            batcher = DynamicBatcher(
                backend.run,
                max_batch_size=c.max_batch_size,
                max_delay_s=c.max_queue_delay_ms / 1e3,
                max_queue=c.max_queue_size,
                batched=batched,
                name=backend.name,
                metrics=self.metrics,
            )
            rows = c.max_batch_size if backend.batched else 1
            self.models[backend.name] = _Model(backend, batcher, rows)
        #: set on shutdown: not ready, no new requests
        self.draining = False

    # -- health and metadata ---------------------------------------------------------------

    def _model(self, name: str) -> _Model:
        model = self.models.get(name)
        if model is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise ProtocolError(404, f"unknown model '{name[:64]}'; this server has {known}")
        return model

    def model_metadata(self, name: str) -> dict[str, Any]:
        backend = self._model(name).backend
        return {
            "name": backend.name,
            "versions": [MODEL_VERSION],
            "platform": backend.platform,
            "inputs": [_tensor_metadata(s) for s in backend.inputs],
            "outputs": [_tensor_metadata(s) for s in backend.outputs],
        }

    # -- inference -------------------------------------------------------------------------

    async def infer(self, name: str, request: Request) -> Response:
        start = time.perf_counter()
        rid: str = request.state.request_id
        code = 500
        self.metrics.in_flight.inc()
        try:
            model = self._model(name)
            if self.draining:
                raise ShuttingDownError("the server is shutting down")
            body = await self._read_body(request)
            header, binary = parse_header(body, request.headers.get(HEADER_LENGTH))
            rid = request_id(header) or rid
            backend = model.backend
            parsed = parse_infer_request(
                header, binary, backend.inputs, backend.outputs, model.max_rows
            )
            outputs = await self._submit(model, parsed.inputs, parsed.rows, request)
            selected = [(backend.outputs[i], outputs[i]) for i in parsed.outputs]
            binary_at = {k for k, i in enumerate(parsed.outputs) if i in parsed.binary}
            data, headers = encode_infer_response(
                backend.name, MODEL_VERSION, rid, selected, binary_at
            )
            code = 200
            return Response(data, 200, headers=headers)
        except ProtocolError as e:
            code = e.status
            return _error(e.status, e.message, rid)
        except (QueueFullError, ShuttingDownError) as e:
            code = 503
            return _error(503, str(e), rid, {"retry-after": "1"})
        except ValueError as e:  # a run-time check of the model failed on these values
            code = 422
            return _error(422, f"the model rejected the input: {e}", rid)
        except Exception as e:  # the model failed: the request hears why, the server goes on
            return _error(500, f"inference failed: {type(e).__name__}: {e}", rid)
        finally:
            self.metrics.in_flight.dec()
            label = name if name in self.models else "_unknown"  # (bounded label values)
            self.metrics.requests.labels(label, "infer", str(code)).inc()
            if code == 200:
                self.metrics.request_latency.labels(name).observe(time.perf_counter() - start)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.config.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise ProtocolError(413, f"the request body is over the limit of {limit} bytes")
        chunks: list[bytes] = []

        async def read() -> None:
            total = 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise ProtocolError(413, f"the request body is over the limit of {limit} bytes")
                chunks.append(chunk)

        try:
            await asyncio.wait_for(read(), self.config.body_timeout_s)
        except TimeoutError:
            raise ProtocolError(408, "the request body did not arrive in time") from None
        return b"".join(chunks)

    async def _submit(self, model: _Model, inputs: Any, rows: int, request: Request) -> Any:
        """The batcher's answer; cancelled (and dropped from the queue) if the client leaves."""
        if not self.config.cancel_on_disconnect:
            return await model.batcher.submit(inputs, rows)
        work = asyncio.ensure_future(model.batcher.submit(inputs, rows))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait([work, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not work.done():
            work.cancel()
            raise ProtocolError(499, "the client disconnected")
        return work.result()

    async def close(self) -> None:
        """Drain every batcher (after the server stopped taking requests)."""
        self.draining = True
        await asyncio.gather(
            *(m.batcher.close(self.config.shutdown_timeout_s) for m in self.models.values())
        )


async def _disconnected(request: Request) -> None:
    """Returns once the client has disconnected (the body was read before)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "datatype": datatype_of(spec.dtype),
        "shape": [-1 if d is None else d for d in spec.shape],
    }


def _error(status: int, message: str, rid: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message, "id": rid}, status, headers=headers)


class RequestIdMiddleware:
    """Gives every request an id (the client's `x-request-id` if printable, else a uuid) in
    `request.state.request_id`, and (with `header`) every response an `x-request-id` header."""

    def __init__(self, app: Any, header: bool = True) -> None:
        self.app = app
        self.header = header

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                text = value.decode("latin-1")
                rid = text if 0 < len(text) <= 256 and text.isprintable() else ""
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        if not self.header:
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(
    service: InferenceService | Callable[[], InferenceService],
    *,
    lifespan: bool = True,
    request_id_header: bool = True,
) -> FastAPI:
    """The ASGI app serving `service` (or the service a callable returns when a request
    comes: Ray Serve replicas build theirs after the app); with `lifespan`, shutting the
    app down drains the service's batchers; `request_id_header=False` leaves the
    `x-request-id` response header to a proxy in front (Ray Serve's sets it)."""
    get = service if callable(service) and not isinstance(service, InferenceService) else None
    fixed = service if isinstance(service, InferenceService) else None

    def svc() -> InferenceService:
        return fixed if fixed is not None else get()  # type: ignore[misc]

    @contextlib.asynccontextmanager
    async def lifespan_context(_: FastAPI) -> AsyncIterator[None]:
        yield
        if lifespan:
            await svc().close()

    app = FastAPI(title="mlc inference service", version=mlc.__version__, lifespan=lifespan_context)
    app.add_middleware(RequestIdMiddleware, header=request_id_header)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail), request.state.request_id)

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready(request: Request) -> Response:
        ok = not svc().draining
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "mlc", "version": mlc.__version__, "extensions": ["binary_tensor_data"]}

    async def metadata(request: Request, name: str) -> Response:
        try:
            return JSONResponse(svc().model_metadata(name))
        except ProtocolError as e:
            return _error(e.status, e.message, request.state.request_id)

    async def model_ready(request: Request, name: str) -> Response:
        s = svc()
        if name not in s.models:
            return _error(404, f"unknown model '{name[:64]}'", request.state.request_id)
        ok = not s.draining
        return JSONResponse({"name": name, "ready": ok}, 200 if ok else 503)

    async def infer(request: Request, name: str) -> Response:
        return await svc().infer(name, request)

    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.add_api_route(prefix, metadata, methods=["GET"])
        app.add_api_route(prefix + "/ready", model_ready, methods=["GET"])
        app.add_api_route(prefix + "/infer", infer, methods=["POST"])

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = svc().metrics.render()
        return Response(body, media_type=content_type)

    return app


def _uvicorn_server(service: InferenceService, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            service.draining = True  # not ready; new requests 503; in-flight ones finish
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        create_app(service),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=int(service.config.shutdown_timeout_s),
        backlog=4096,
    )
    return Server(config)


def serve(
    service: InferenceService, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Serve until SIGINT / SIGTERM, then shut down gracefully."""
    # what is loaded by now lives as long as the server: out of the collector's way (a full
    # collection over a compiled model's IR objects would stall requests for milliseconds)
    gc.collect()
    gc.freeze()
    _uvicorn_server(service, host, port, log_level).run()


class ServerThread:
    """The service on uvicorn in a background thread (tests, benchmarks): `port` is the
    port it got (0 asks for a free one); `stop()` shuts it down gracefully."""

    def __init__(self, service: InferenceService, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.server = _uvicorn_server(service, host, port, "warning")
        self._thread = threading.Thread(target=self.server.run, name="mlc-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        self.host = host
        self.port: int = self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        self.service.draining = True
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
