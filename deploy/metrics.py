"""Prometheus metrics of the inference service (`GET /metrics`).

    metrics = Metrics()                     # its own registry: two servers in one process
    metrics.requests.labels("cnn", "infer", "200").inc()
    body, content_type = metrics.render()

- `mlc_requests_total{model, endpoint, code}`: requests answered, by HTTP status;
- `mlc_request_duration_seconds{model}`: infer request latency, body read to response;
- `mlc_queue_wait_seconds{model}`: time a request waited for its batch to start;
- `mlc_inference_duration_seconds{model}`: time per batch run (the model itself);
- `mlc_batch_size{model}`: rows per batch run;
- `mlc_queue_depth{model}`: requests waiting now;
- `mlc_requests_in_flight`: requests being handled now.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["Metrics"]

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The service's metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mlc_requests", "Requests answered", ["model", "endpoint", "code"], registry=r
        )
        self.request_latency = Histogram(
            "mlc_request_duration_seconds",
            "Inference request latency",
            ["model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.queue_wait = Histogram(
            "mlc_queue_wait_seconds",
            "Time from enqueue to the start of the request's batch",
            ["model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.inference_latency = Histogram(
            "mlc_inference_duration_seconds",
            "Model run time per batch",
            ["model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.batch_size = Histogram(
            "mlc_batch_size", "Rows per batch run", ["model"], buckets=_ROWS, registry=r
        )
        self.queue_depth = Gauge("mlc_queue_depth", "Requests waiting", ["model"], registry=r)
        self.in_flight = Gauge("mlc_requests_in_flight", "Requests being handled", registry=r)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
