"""The inference service scaled out on Ray Serve: the same app, protocol and batching.

    app = application("dist/cnn-1.0.0-py3-none-linux_x86_64.whl", num_replicas=2)
    app = application("model.so", autoscaling={"min_replicas": 1, "max_replicas": 4,
                                               "target_ongoing_requests": 16})
    run(app, port=8000)                     # ray.init() first, or connect to a cluster
    # or: serve run mlc.deploy.ray_serve:app_builder model=dist/cnn.whl num_replicas=2

Each replica (a Ray actor) loads the model (`deploy.backends.load_backend`: a wheel, an mlc
`.so` or an ONNX model, which each replica then compiles) and serves `deploy.server`'s
FastAPI app through `serve.ingress`, with its own dynamic batcher; Ray's proxy spreads
requests over the replicas and the autoscaler adds or removes replicas by ongoing requests.
`/metrics` answers for the replica that got the request (Ray exports its own metrics per
deployment). On a multi-node cluster every node must see the model path (a shared file
system, or install the wheel into the replicas' environment: `runtime_env={"pip": [wheel]}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ray import serve

from mlc.deploy.backends import load_backend
from mlc.deploy.server import InferenceService, ServerConfig, create_app

__all__ = ["app_builder", "application", "run"]

#: this replica's service (one replica per Ray actor process)
_SERVICE: InferenceService | None = None


def _service() -> InferenceService:
    if _SERVICE is None:
        raise RuntimeError("the replica has not loaded its model")
    return _SERVICE


class MlcReplica:
    """One replica: loads the model and becomes the service `_APP` serves."""

    def __init__(
        self,
        model: str,
        name: str | None,
        engine: str,
        batch_sizes: list[int],
        threads: int,
        config: dict[str, Any],
    ) -> None:
        global _SERVICE
        backend = load_backend(
            model, name=name, engine=engine, batch_sizes=batch_sizes, threads=threads
        )
        _SERVICE = InferenceService([backend], ServerConfig(**config))


#: the app of every replica (Ray ships it to them; its routes ask `_service()`)
_APP = create_app(_service, request_id_header=False)  # (Ray's proxy sets the header)


def application(
    model: str | Path,
    *,
    name: str | None = None,
    engine: str = "mlc",
    batch_sizes: Sequence[int] = (1,),
    threads: int = 1,
    config: ServerConfig | None = None,
    num_replicas: int = 1,
    autoscaling: dict[str, Any] | None = None,
    num_cpus: float = 1.0,
) -> serve.Application:
    """A Ray Serve application serving `model`: `num_replicas` replicas, or as many as
    `autoscaling` (Ray's `autoscaling_config`: min_replicas, max_replicas,
    target_ongoing_requests, ...) says; each replica reserves `num_cpus` CPUs."""
    config = replace(config or ServerConfig(), cancel_on_disconnect=False)  # Ray's proxy's job
    options: dict[str, Any] = {
        "name": f"mlc-{name or Path(model).name.split('.')[0].split('-')[0]}",
        "ray_actor_options": {"num_cpus": num_cpus},
        # enough requests per replica to fill its batches and queue
        "max_ongoing_requests": config.max_queue_size + config.max_batch_size,
        "graceful_shutdown_timeout_s": config.shutdown_timeout_s,
    }
    if autoscaling is not None:
        options["autoscaling_config"] = dict(autoscaling)
    else:
        options["num_replicas"] = num_replicas
    deployment = serve.deployment(**options)(serve.ingress(_APP)(MlcReplica))
    return deployment.bind(
        str(Path(model).resolve()), name, engine, list(batch_sizes), threads, asdict(config)
    )


def app_builder(args: dict[str, str]) -> serve.Application:
    """For `serve run mlc.deploy.ray_serve:app_builder model=PATH [name=N] [engine=E]
    [batch_sizes=1,8] [threads=1] [num_replicas=2] [min_replicas=1 max_replicas=4]
    [max_batch_size=8] [max_queue_delay_ms=1]`."""
    known = {"model", "name", "engine", "batch_sizes", "threads", "num_replicas"}
    known |= {"min_replicas", "max_replicas", "target_ongoing_requests"}
    known |= {"max_batch_size", "max_queue_delay_ms", "max_queue_size"}
    unknown = set(args) - known
    if unknown or "model" not in args:
        raise ValueError(f"app_builder takes model=PATH and {sorted(known - {'model'})}")
    autoscaling = None
    if "max_replicas" in args:
        autoscaling = {
            "min_replicas": int(args.get("min_replicas", 1)),
            "max_replicas": int(args["max_replicas"]),
            "target_ongoing_requests": float(args.get("target_ongoing_requests", 16)),
        }
    config = ServerConfig(
        max_batch_size=int(args.get("max_batch_size", 8)),
        max_queue_delay_ms=float(args.get("max_queue_delay_ms", 0.0)),
        max_queue_size=int(args.get("max_queue_size", 256)),
    )
    return application(
        args["model"],
        name=args.get("name"),
        engine=args.get("engine", "mlc"),
        batch_sizes=[int(b) for b in args.get("batch_sizes", "1").split(",")],
        threads=int(args.get("threads", 1)),
        config=config,
        num_replicas=int(args.get("num_replicas", 1)),
        autoscaling=autoscaling,
    )


def run(app: serve.Application, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Start Serve's HTTP proxy on `host:port` (in the Ray instance `ray.init` joined) and
    deploy `app` at `/`; returns once its replicas are up."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name="mlc", route_prefix="/")
