"""Deploying compiled models: a wheel per model, and an inference service.

- `wheel` / `wheel_runtime`: `mlc package` -- a pip-installable wheel (shared libraries, C
  headers, a ctypes + numpy module, metadata) that runs without mlc or llvmlite;
- `backends`: a model behind the server (mlc: an ONNX model compiled per batch size, a
  shared library, a wheel; onnxruntime, for comparison);
- `protocol`: the Open Inference Protocol (KServe v2) over JSON and binary tensors;
- `batching`: dynamic batching with a bounded queue;
- `metrics`: Prometheus metrics;
- `server`: the ASGI service (FastAPI + uvicorn; `mlc serve`);
- `ray_serve`: the same service as a Ray Serve deployment.

See docs/deploy.md.
"""
