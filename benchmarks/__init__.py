"""Benchmarks of mlc against onnxruntime and numpy; see `mlc.benchmarks.run`."""
