"""`mlc`: the model-level command line.

    mlc import model.onnx -o model.mlir [--input-shape x=1x3x224x224]
    mlc run model.onnx --input x=x.npy [--output-dir out/] [--interpret]
    mlc compile model.onnx -o model.so   # + model.h; -o model.o [--triple T --cpu C]: object
    mlc demo                      # the bundled example: import, run, compare with onnxruntime
    mlc bench [--only gemm,mlp]   # benchmarks against onnxruntime and numpy
    mlc package model.onnx --name resnet -o dist/ [--batch-sizes 1,8] [--cpu x86-64-v3]
    mlc serve model.onnx|model.so|model.whl [--port 8000] [--max-batch-size 8] [--ray ...]
    mlc tune model.onnx --trials 64 --db tuning.db [--kernels 'conv*' ...] [--time-budget 10m]
             [--plot tuning.png] [--jobs J] [--backend auto|ray|process] [--ray-address A]
             [--cost-model]

Every error is one line on stderr and a non-zero exit; no tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlc.tuning.plot import CurveRecorder
    from mlc.tuning.search import TuneReport

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class CliError(Exception):
    """A user error: printed as one line."""


def _parse_shapes(specs: Sequence[str]) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for spec in specs:
        name, sep, dims = spec.rpartition("=")
        if not sep or not name:
            raise CliError(f"--input-shape expects NAME=DxDxD, got '{spec}'")
        try:
            shapes[name] = [int(d) for d in dims.split("x")] if dims else []
        except ValueError:
            raise CliError(f"--input-shape expects NAME=DxDxD, got '{spec}'") from None
    return shapes


def _load_module(path: str, input_shapes: dict[str, list[int]]):  # type: ignore[no-untyped-def]
    from mlc.parser.mlir import parse_module
    from mlc.parser.onnx import import_onnx
    from mlc.registry import make_context

    if path.endswith(".mlir"):
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        return parse_module(make_context(), Path(path).read_text(), path)
    return import_onnx(path, input_shapes=input_shapes)


def cmd_import(args: argparse.Namespace) -> int:
    from mlc.parser.onnx import import_onnx

    module = import_onnx(args.model, input_shapes=_parse_shapes(args.input_shape))
    text = str(module) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _read_inputs(specs: Sequence[str], function) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """`name=file.npy` pairs in the function's argument order (names from `mlc.name`)."""
    given: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            raise CliError(f"--input expects NAME=FILE.npy, got '{spec}'")
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        given[name] = np.load(path, allow_pickle=False)
    names = _arg_names(function)
    unknown = set(given) - set(names)
    if unknown:
        raise CliError(f"unknown input(s) {sorted(unknown)}; the model takes {names}")
    missing = [n for n in names if n not in given]
    if missing:
        raise CliError(f"missing input(s) {missing}; pass --input NAME=FILE.npy")
    return [given[n] for n in names]


def _arg_names(function) -> list[str]:  # type: ignore[no-untyped-def]
    names: list[str] = []
    attrs = function.arg_attrs.data if function.arg_attrs is not None else []
    for i, arg in enumerate(function.body.blocks[0].args):
        entry = attrs[i].data.get("mlc.name") if i < len(attrs) else None
        names.append(entry.data if entry is not None else (arg.name_hint or f"arg{i}"))
    return names


def _native_errors() -> tuple[type[Exception], ...]:
    from mlc.lowering.arith_to_llvm import LlvmLoweringError
    from mlc.lowering.graph_to_tl import GraphToTlError
    from mlc.targets.llvm_emit import EmitError

    return (GraphToTlError, LlvmLoweringError, EmitError)


def _lower(module, what):  # type: ignore[no-untyped-def]
    """`what(module)` (compile_model / lower_model), a lowering failure as one line."""
    try:
        return what(module)
    except _native_errors() as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CliError(f"cannot compile natively: {first}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from mlc.interpreters import check_inputs, entry_function, interpret
    from mlc.targets.compiled import compile_model

    shapes = _parse_shapes(args.input_shape)
    if args.model.endswith(".onnx"):
        shapes = _dynamic_shapes_from_inputs(args.model, args.input) | shapes
    module = _load_module(args.model, shapes)
    function = entry_function(module)
    inputs = [np.ascontiguousarray(x) for x in _read_inputs(args.input, function)]
    check_inputs(function, inputs)  # before compiling: a bad input fails fast
    if args.interpret:
        start = time.perf_counter()
        outputs = interpret(module, *inputs)
        timing = f"reference interpreter: {(time.perf_counter() - start) * 1e3:.1f} ms"
    else:
        start = time.perf_counter()
        progress = not args.quiet and sys.stderr.isatty()
        # an ONNX file is compiled from the file (its bytes key the compile cache: no
        # printing of the imported module, and a warm compile skips the import)
        source = module if args.model.endswith(".mlir") else args.model
        compiled = _lower(
            source,
            lambda m: compile_model(
                m,
                function=function.sym_name.data,
                input_shapes=shapes if m is not module else None,
                progress=progress,
            ),
        )
        compile_time = time.perf_counter() - start
        start = time.perf_counter()
        outputs = compiled(*inputs)
        run_time = time.perf_counter() - start
        timing = f"native: compile {compile_time:.2f} s, run {run_time * 1e3:.3f} ms"
    for i, out in enumerate(outputs):
        if isinstance(out, list):  # a ZipMap: one {label: probability} dict per row
            print(f"output #{i}: {len(out)} dicts  {out[:2]}{' ...' if len(out) > 2 else ''}")
            if args.output_dir:
                os.makedirs(args.output_dir, exist_ok=True)
                with open(os.path.join(args.output_dir, f"output{i}.json"), "w") as f:
                    json.dump([{str(k): v for k, v in row.items()} for row in out], f)
            continue
        print(f"output #{i}: {out.dtype}{list(out.shape)}  {_preview(out)}")
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            saved = out.astype(str) if out.dtype == object else out  # string labels: no pickle
            np.save(os.path.join(args.output_dir, f"output{i}.npy"), saved, allow_pickle=False)
    print(timing)
    return 0


def _dynamic_shapes_from_inputs(path: str, specs: Sequence[str]) -> dict[str, list[int]]:
    """The shapes of the `--input NAME=FILE.npy` arrays for the model's graph inputs that
    have dynamic dimensions (a converter's symbolic batch): `mlc run forest.onnx --input
    X=x.npy` needs no `--input-shape`. Inputs with static dimensions are not touched."""
    import onnx

    try:
        graph = onnx.load(path, load_external_data=False).graph
    except Exception:  # noqa: BLE001  (the import reports an unreadable model)
        return {}
    dynamic = {
        i.name
        for i in graph.input
        if i.type.HasField("tensor_type")
        and any(not d.HasField("dim_value") for d in i.type.tensor_type.shape.dim)
    }
    shapes: dict[str, list[int]] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if sep and name in dynamic and os.path.exists(file):
            try:
                shapes[name] = list(np.load(file, mmap_mode="r", allow_pickle=False).shape)
            except (ValueError, OSError):
                continue  # `_read_inputs` reports it
    return shapes


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile ahead of time: a shared library and C header for this machine, or an object
    file (and header) for any target LLVM knows."""
    from mlc.targets.aot import export_library, export_object
    from mlc.targets.compiled import lower_model
    from mlc.targets.cpu import is_host_triple
    from mlc.targets.timings import Timings

    if args.print_pipeline:
        from mlc.targets.compiled import cpu_pipeline

        print(cpu_pipeline().pipeline_text())
        return 0
    if not args.output:
        raise CliError("the following argument is required: -o/--output")
    out = Path(args.output)
    as_object = out.suffix == ".o"
    if not is_host_triple(args.triple) and not as_object:
        raise CliError(
            f"--triple {args.triple} is not this machine: mlc can write an object file for "
            "it but not link or run it; use -o NAME.o"
        )
    if not out.parent.is_dir():
        raise CliError(f"{out.parent}: no such directory")
    module = _load_module(args.model, _parse_shapes(args.input_shape))
    timings = Timings()
    progress = not args.quiet and sys.stderr.isatty()
    lowered = _lower(module, lambda m: lower_model(m, timings=timings, progress=progress))
    options = {"prefix": args.prefix, "cpu": args.cpu, "features": args.features, "opt": args.opt}
    with timings.stage("LLVM O3 + codegen + link"):
        if as_object:
            lib = export_object(lowered, out, triple=args.triple, **options)
        else:
            lib = export_library(lowered, out, **options)
    size = f"{lib.path.stat().st_size / 1024:.0f} KiB"
    manifest = f", {lib.manifest}" if lib.manifest else ""  # to ship with the library
    print(f"wrote {lib.path} ({size}){manifest} and {lib.header}")
    ins = ", ".join(f"{b['dtype']}{b['shape']}" for b in lib.signature["inputs"])
    outs = ", ".join(f"{b['dtype']}{b['shape']}" for b in lib.signature["outputs"])
    target = lib.signature["triple"] + (
        f" ({lib.signature['cpu']})" if lib.signature["cpu"] else ""
    )
    print(f"entry: {lib.entry}({ins}) -> ({outs}), for {target}")
    if args.timings:
        print(timings.table(), file=sys.stderr)
    return 0


def _random_inputs(function) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Seeded random inputs for `function`'s arguments (floats normal, integers small)."""
    from mlc.targets.compiled import BufferSpec

    rng = np.random.default_rng(0)
    inputs = []
    for arg in function.body.blocks[0].args:
        spec = BufferSpec.of(arg.type)
        if spec.dtype.kind == "f":
            inputs.append(rng.standard_normal(spec.shape).astype(spec.dtype))
        elif spec.dtype.kind == "b":
            inputs.append(rng.integers(0, 2, spec.shape).astype(spec.dtype))
        else:
            inputs.append(rng.integers(0, 4, spec.shape).astype(spec.dtype))
    return inputs


def cmd_profile(args: argparse.Namespace) -> int:
    """Compile with timestamps around every kernel, run, print time per kernel."""
    from mlc.interpreters import check_inputs, entry_function
    from mlc.targets.compiled import compile_model

    module = _load_module(args.model, _parse_shapes(args.input_shape))
    function = entry_function(module)
    if args.input:
        inputs = [np.ascontiguousarray(x) for x in _read_inputs(args.input, function)]
        check_inputs(function, inputs)
    else:
        inputs = _random_inputs(function)
    progress = not args.quiet and sys.stderr.isatty()
    compiled = _lower(
        module,
        lambda m: compile_model(
            m, function=function.sym_name.data, profile=True, progress=progress
        ),
    )
    if args.threads is not None:
        compiled.num_threads = args.threads
    prof = compiled.profile(*inputs, repeat=args.repeat)
    print(prof.table(top=args.top))
    if args.trace:
        prof.save_chrome_trace(args.trace)
        print(f"wrote {args.trace} (Chrome trace: open in https://ui.perfetto.dev)")
    return 0


def _preview(array: np.ndarray, n: int = 6) -> str:
    flat = array.reshape(-1)[:n]
    return (
        "["
        + ", ".join(f"{v:.5g}" if array.dtype.kind == "f" else str(v) for v in flat)
        + (", ...]" if array.size > n else "]")
    )


def _median_time(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    return _median_times([fn], repeat)[0]


def _median_times(fns, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Median seconds per call of each of `fns`, timed in alternating rounds (after one
    warm-up call each) so that load from elsewhere hits them alike."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeat):
        for fn, samples in zip(fns, times):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def cmd_demo(args: argparse.Namespace) -> int:
    """Import the bundled example, compile it natively, run it, compare and time it
    against the reference interpreter and onnxruntime."""
    import onnx

    from mlc.interpreters import interpret
    from mlc.parser.onnx import import_onnx
    from mlc.targets.compiled import compile_model
    from mlc.testing.onnx_models import onnxruntime_session

    path = Path(args.model) if args.model else EXAMPLES / "tiny_resnet.onnx"
    if not path.exists():
        raise CliError(f"{path}: no such file")
    start = time.perf_counter()
    module = import_onnx(str(path))
    import_time = time.perf_counter() - start
    start = time.perf_counter()
    compiled = compile_model(module)
    compile_time = time.perf_counter() - start
    compiled.num_threads = 1  # compared with onnxruntime on one thread
    inputs = _random_inputs(next(iter(module.body.block.ops)))
    model = onnx.load(str(path))
    feed = {i.name: x for i, x in zip(model.graph.input, inputs)}
    session = onnxruntime_session(model, threads=1)
    native = compiled(*inputs)
    reference = interpret(module, *inputs)
    ort = session.run(None, feed)
    n_ops = sum(1 for op in module.walk() if op.name.startswith("graph."))
    print(f"model: {path.name}  ({n_ops} graph ops)")
    print(
        f"import {import_time * 1e3:.0f} ms, compile (graph -> tl -> LLVM O3 -> JIT) {compile_time:.2f} s"
    )
    print(
        f"workspace: {compiled.workspace_bytes} bytes for all intermediates "
        f"(separately {compiled.intermediate_bytes} bytes; liveness-planned reuse)"
    )
    ok = True
    for i, (a, r, o) in enumerate(zip(native, reference, ort)):
        print(f"output #{i}: {a.dtype}{list(a.shape)}  mlc {_preview(a, 4)}")
        print(
            f"{'':>{len(f'output #{i}: ')}}{'':{len(str(a.dtype)) + len(str(list(a.shape)))}}  ort {_preview(np.asarray(o), 4)}"
        )
        d_ort = float(np.max(np.abs(a.astype(np.float64) - o))) if a.size else 0.0
        d_ref = float(np.max(np.abs(a.astype(np.float64) - r))) if a.size else 0.0
        print(
            f"  max |mlc - onnxruntime| = {d_ort:.3g}, max |mlc - reference interpreter| = {d_ref:.3g}"
        )
        ok = ok and bool(np.allclose(a, o, rtol=1e-4, atol=1e-5))
    t_native, t_ort = _median_times(
        [lambda: compiled(*inputs), lambda: session.run(None, feed)], args.repeat
    )
    t_ref = _median_time(lambda: interpret(module, *inputs), max(1, args.repeat // 10))
    print(
        f"median latency: mlc native {t_native * 1e3:.3f} ms, onnxruntime (1 thread) "
        f"{t_ort * 1e3:.3f} ms, ratio mlc/onnxruntime {t_native / t_ort:.2f}; "
        f"reference interpreter {t_ref * 1e3:.1f} ms"
    )
    print("results match onnxruntime" if ok else "RESULTS DIFFER from onnxruntime")
    return 0 if ok else 1


def _batch_sizes(text: str) -> list[int]:
    """`1,2,8` as a list of batch sizes."""
    try:
        sizes = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise CliError(f"--batch-sizes expects sizes such as 1,4,8, got '{text}'") from None
    if not sizes or sizes[0] < 1:
        raise CliError(f"--batch-sizes must be positive, got '{text}'")
    return sizes


def cmd_package(args: argparse.Namespace) -> int:
    """`mlc package`: the model compiled per batch size, as a wheel (`mlc.deploy.wheel`)."""
    import importlib.util

    if importlib.util.find_spec("build") is None:
        raise CliError("mlc package needs pypa/build and setuptools: pip install 'mlc[serve]'")
    from mlc.deploy.wheel import WheelError, build_wheel

    try:
        info = build_wheel(
            args.model,
            args.name,
            args.output,
            batch_sizes=_batch_sizes(args.batch_sizes) if args.batch_sizes else None,
            cpu=args.cpu,
            version=args.version,
            input_shapes=_parse_shapes(args.input_shape),
            progress=not args.quiet and sys.stderr.isatty(),
        )
    except WheelError as e:
        raise CliError(str(e)) from None
    m = info.metadata
    print(f"wrote {info.path} ({info.path.stat().st_size / 1024:.0f} KiB)")
    print(
        f"{m['name']}: batch sizes {[r['batch_size'] for r in m['libraries']]}, for "
        f"{m['triple']} (CPU {m['cpu'] or 'generic'}; needs {', '.join(m['required_cpu_flags'])})"
    )
    print(f"pip install {info.path}; then: import {m['name']}; {m['name']}.run(...)")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    """`mlc quantize`: post-training quantization (`mlc.quantization`), calibrated on the
    arrays of an .npz file (one per input, samples along axis 0)."""
    from mlc.quantization import quantize
    from mlc.quantization.api import BF16, check_output_path

    check_output_path(args.output)
    data: dict[str, np.ndarray] = {}
    if args.calibrate is None and args.activations != BF16:
        print("mlc: error: --calibrate INPUTS.npz is needed for int8 (u8 / s8)", file=sys.stderr)
        return 2
    if args.calibrate is not None:
        with np.load(args.calibrate, allow_pickle=False) as npz:
            data = {name: npz[name] for name in npz.files}
    quantized = quantize(
        args.model,
        data,
        activations=args.activations,
        per_channel=not args.per_tensor,
        calibrator=args.calibrator,
        exclude=args.exclude,
        fallback=args.fallback,
    )
    quantized.save(args.output)
    print(quantized.report())
    print(f"wrote {args.output}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`mlc serve`: the Open Inference Protocol over HTTP (`mlc.deploy.server`), or on Ray
    Serve with --ray (`mlc.deploy.ray_serve`)."""
    import importlib.util

    needed = ["fastapi", "uvicorn", "prometheus_client", *(["ray"] if args.ray else [])]
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise CliError(f"mlc serve needs {', '.join(missing)}: pip install 'mlc[serve]'")
    from mlc.deploy.backends import BackendError, load_backend
    from mlc.deploy.server import InferenceService, ServerConfig, serve

    if args.max_batch_size < 1 or args.max_queue_size < 1 or args.max_queue_delay_ms < 0:
        raise CliError("--max-batch-size and --max-queue-size must be >= 1, the delay >= 0")
    if args.name and len(args.model) > 1:
        raise CliError("--name names one model; serving several, each is named by its file")
    sizes = (
        _batch_sizes(args.batch_sizes)
        if args.batch_sizes
        else [
            1 << k for k in range(args.max_batch_size.bit_length()) if 1 << k <= args.max_batch_size
        ]
    )
    config = ServerConfig(
        max_batch_size=args.max_batch_size,
        max_queue_delay_ms=args.max_queue_delay_ms,
        max_queue_size=args.max_queue_size,
        max_request_bytes=int(args.max_request_mb * (1 << 20)),
        batching=not args.no_batching,
    )
    if args.ray:
        return _serve_on_ray(args, sizes, config)
    try:
        backends = [
            load_backend(
                m, name=args.name, engine=args.engine, batch_sizes=sizes, threads=args.threads
            )
            for m in args.model
        ]
        service = InferenceService(backends, config)
    except (BackendError, ValueError) as e:
        raise CliError(str(e)) from None
    for b in backends:
        info = getattr(b, "info", {})
        timed = info.get("run_ms") or info.get("batch_sizes")
        print(f"{b.name}: {b.platform}" + (f", batch sizes (ms per run) {timed}" if timed else ""))
    names = ", ".join(service.models)
    print(
        f"serving {names} on http://{args.host}:{args.port} (Open Inference Protocol v2, "
        f"/metrics; max batch {config.max_batch_size}, batching "
        f"{'on' if config.batching else 'off'}); Ctrl-C stops",
        flush=True,
    )
    serve(service, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _serve_on_ray(args: argparse.Namespace, sizes: list[int], config: Any) -> int:
    import signal

    import ray
    from ray import serve

    from mlc.deploy.ray_serve import application, run

    if len(args.model) != 1:
        raise CliError("--ray serves one model")
    autoscaling = None
    if args.autoscale:
        parts = args.autoscale.split(":")
        try:
            lo, hi = int(parts[0]), int(parts[1])
            target = float(parts[2]) if len(parts) > 2 else 16.0
        except (ValueError, IndexError):
            raise CliError(
                f"--autoscale expects MIN:MAX[:TARGET], got '{args.autoscale}'"
            ) from None
        autoscaling = {"min_replicas": lo, "max_replicas": hi, "target_ongoing_requests": target}
    ray.init(address=args.ray_address, log_to_driver=False)
    try:
        app = application(
            args.model[0],
            name=args.name,
            engine=args.engine,
            batch_sizes=sizes,
            threads=args.threads,
            config=config,
            num_replicas=args.replicas,
            autoscaling=autoscaling,
        )
        run(app, host=args.host, port=args.port)
        print(f"serving on Ray Serve at http://{args.host}:{args.port}; Ctrl-C stops", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):  # both: shut Serve and Ray down in order
            signal.signal(sig, _interrupt)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        serve.shutdown()
        ray.shutdown()


def build_parser() -> argparse.ArgumentParser:
    from mlc import __version__

    parser = argparse.ArgumentParser(prog="mlc", description="mlc machine-learning compiler")
    parser.add_argument("--version", action="version", version=f"mlc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="import an ONNX model as graph-dialect IR")
    p.add_argument("model")
    p.add_argument("-o", "--output", help="write the IR here (default: stdout)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD")
    p.set_defaults(fn=cmd_import)

    p = sub.add_parser("run", help="run a model (.onnx or .mlir) on .npy inputs")
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD")
    p.add_argument("--output-dir", help="save outputs as outputN.npy here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--interpret",
        action="store_true",
        help="run the reference interpreter instead of compiling natively",
    )
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser(
        "compile",
        help="compile ahead of time: a shared library + C header, or an object file (-o x.o)",
    )
    p.add_argument("model")
    p.add_argument("-o", "--output", help="NAME.so (library + NAME.h) or NAME.o (object)")
    p.add_argument(
        "--print-pipeline",
        action="store_true",
        help="print the expanded mlc-cpu-pipeline (replay it with mlc-opt -p) and exit",
    )
    p.add_argument(
        "--timings", action="store_true", help="print wall time per stage and pass to stderr"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD")
    p.add_argument("--triple", help="target triple (default: this machine); objects only")
    p.add_argument("--cpu", help="target CPU (default: this machine's, or generic)")
    p.add_argument("--features", help="LLVM target features, e.g. +avx2,+fma")
    p.add_argument("--prefix", help="C symbol prefix (default: from the output file name)")
    p.add_argument("-O", dest="opt", type=int, choices=range(4), default=3, metavar="LEVEL")
    p.set_defaults(fn=cmd_compile)

    p = sub.add_parser(
        "demo", help="compile + run the bundled example, compare and time against onnxruntime"
    )
    p.add_argument("--model", help="another .onnx model instead of the bundled one")
    p.add_argument("--repeat", type=int, default=50)
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser(
        "profile",
        help="time every kernel of a compiled model (a table, and a Chrome trace with --trace)",
    )
    p.add_argument("model")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="inputs (default: seeded random ones)",
    )
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD")
    p.add_argument("--repeat", type=int, default=50, help="timed runs (medians are reported)")
    p.add_argument("--threads", type=int, help="threads (default: MLC_NUM_THREADS, else all)")
    p.add_argument("--top", type=int, help="only the N slowest kernels")
    p.add_argument("--trace", metavar="FILE.json", help="write a Chrome trace of every run")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_profile)

    p = sub.add_parser(
        "tune",
        help="search schedules per kernel, record the best in a tuning database "
        "(then: mlc.compile(model, tuning_db=DB))",
    )
    p.add_argument("model")
    p.add_argument("--db", required=True, help="the tuning database (SQLite; created if missing)")
    p.add_argument("--trials", type=int, default=64, help="measured candidates per kernel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="measurement worker processes")
    p.add_argument(
        "--time-budget", help="stop after this long overall: 90s, 10m, 1h (default: none)"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per candidate")
    p.add_argument(
        "--cost-model",
        action="store_true",
        help="guide the search with a LightGBM model of the measurements (needs the "
        "'ml' extra: pip install 'mlc[ml]')",
    )
    p.add_argument(
        "--search",
        choices=["evolutionary", "random"],
        default="evolutionary",
        help="evolve children of the fastest candidates (default), or sample every "
        "candidate afresh (the baseline)",
    )
    p.add_argument(
        "--kernels",
        nargs="+",
        action="extend",
        metavar="PATTERN",
        help="tune only the kernels whose name matches one of these (exact names or globs "
        "such as 'conv*'; a pattern matching none lists the kernels)",
    )
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="write tuning curves here (best time per kernel vs trials, the model's "
        "estimated speed-up; needs the 'plot' extra: pip install 'mlc[plot]')",
    )
    p.add_argument(
        "--backend",
        choices=["auto", "ray", "process"],
        default="auto",
        help="measure on Ray or a local process pool (auto: Ray when installed)",
    )
    p.add_argument(
        "--ray-address", metavar="ADDRESS", help="a Ray cluster to measure on (ray://host:port)"
    )
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_tune)

    p = sub.add_parser(
        "package", help="a pip-installable wheel of the compiled model (numpy only at run time)"
    )
    p.add_argument("model", help="an ONNX model")
    p.add_argument("--name", required=True, help="the package (import) name")
    p.add_argument("-o", "--output", default="dist", help="directory for the wheel (dist)")
    p.add_argument(
        "--batch-sizes", help="compile for these batch sizes, e.g. 1,8 (default: the model's)"
    )
    p.add_argument("--cpu", help="x86-64, x86-64-v2, -v3 or -v4 (default: this CPU)")
    p.add_argument("--version", default="1.0.0", help="the package version (1.0.0)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_package)

    p = sub.add_parser(
        "quantize", help="post-training int8 quantization, calibrated on sample inputs"
    )
    p.add_argument("model", help="a float ONNX model")
    p.add_argument(
        "--calibrate",
        metavar="INPUTS.npz",
        help="calibration samples: one array per model input, samples along axis 0 (int8 only)",
    )
    p.add_argument("-o", "--output", required=True, help="model.int8.onnx (QDQ) or .mlir")
    p.add_argument(
        "--activations",
        choices=["u8", "s8", "bf16"],
        default="u8",
        help="int8 codes (u8 asymmetric, s8 symmetric), or bf16 weights and layer inputs",
    )
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor")
    p.add_argument(
        "--calibrator", choices=["minmax", "percentile", "entropy", "mse"], default="minmax"
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="NODE|OP",
        help="keep this node (or every node of this op type) in float",
    )
    p.add_argument(
        "--fallback",
        type=int,
        default=0,
        metavar="K",
        help="keep the K most sensitive layers in float (one compile per layer to rank them)",
    )
    p.set_defaults(fn=cmd_quantize)

    p = sub.add_parser(
        "serve",
        help="serve models over HTTP: Open Inference Protocol v2, dynamic batching, metrics",
    )
    p.add_argument("model", nargs="+", help="model.onnx, an mlc model.so or an mlc package wheel")
    p.add_argument("--name", help="the model's name in URLs (default: from the file name)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--engine", choices=["mlc", "onnxruntime"], default="mlc")
    p.add_argument("--max-batch-size", type=int, default=8, help="rows per batch (8)")
    p.add_argument(
        "--batch-sizes",
        help="batch sizes to compile an ONNX model for (default: 1, 2, 4, ... max batch)",
    )
    p.add_argument("--max-queue-delay-ms", type=float, default=0.0, help="batch fill wait (0)")
    p.add_argument("--max-queue-size", type=int, default=256, help="waiting requests (256)")
    p.add_argument("--max-request-mb", type=float, default=32.0, help="body size limit (32)")
    p.add_argument("--no-batching", action="store_true", help="run every request alone")
    p.add_argument("--threads", type=int, default=1, help="threads per model run (1; 0: all)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead")
    p.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (1)")
    p.add_argument("--autoscale", metavar="MIN:MAX[:TARGET]", help="Ray Serve autoscaling")
    p.add_argument("--ray-address", help="a Ray cluster to join (default: start one)")
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("cache", help="the compile cache: info, or clear it")
    p.add_argument("action", choices=["info", "clear"])
    p.set_defaults(fn=cmd_cache)

    p = sub.add_parser(
        "bench",
        help="benchmarks against onnxruntime and numpy (see docs/performance.md)",
        add_help=False,
    )
    p.set_defaults(fn=cmd_bench)
    return parser


def _duration(text: str) -> float:
    """Seconds in `90`, `90s`, `10m` or `1h`."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise CliError(f"--time-budget expects e.g. 90s, 10m or 1h, got '{text}'") from None
    if seconds <= 0:
        raise CliError(f"--time-budget must be positive, got '{text}'")
    return seconds


def cmd_tune(args: argparse.Namespace) -> int:
    """`mlc tune`: `mlc.tuning.tune` on a model; a line per kernel, then the table (and
    tuning curves with --plot, also when interrupted). Options are checked before
    tuning; a --kernels pattern that matches no kernel exits with 2."""
    import importlib.util

    from mlc.tuning.search import tune
    from mlc.tuning.task import KernelPatternError

    if args.trials < 1 or args.jobs < 1:
        raise CliError("--trials and --jobs must be at least 1")
    if not os.path.exists(args.model):
        raise CliError(f"{args.model}: no such file")
    budget = _duration(args.time_budget) if args.time_budget else None
    if args.ray_address and args.backend == "process":
        raise CliError("--ray-address needs --backend ray (or auto)")
    if args.backend == "ray" or args.ray_address:
        if importlib.util.find_spec("ray") is None:
            raise CliError("--backend ray needs ray: pip install 'mlc[distributed]'")
    recorder = _plot_recorder(args.plot) if args.plot else None
    ranker = None
    if args.cost_model:
        if importlib.util.find_spec("lightgbm") is None:
            raise CliError("--cost-model needs lightgbm: pip install 'mlc[ml]'")
        from mlc.tuning.cost_model import LightGBMRanker

        ranker = LightGBMRanker()

    bars = _TuneProgress(args.trials) if not args.quiet and sys.stderr.isatty() else None

    def on_record(result, record) -> None:  # type: ignore[no-untyped-def]
        if bars is not None:
            bars.record(result, record)
        if recorder is not None:
            recorder.record(result, record)

    def done(r) -> None:  # type: ignore[no-untyped-def]
        if bars is not None:
            bars.close()
        speedup = f"{r.speedup:.2f}x" if r.speedup else "-"
        print(
            f"{r.task.name}: default {_seconds(r.default_seconds)}, best "
            f"{_seconds(r.best_seconds)}, speed-up {speedup}, {r.trials} trials "
            f"({r.invalid} invalid) in {r.wall_s:.1f} s",
            flush=True,
        )

    report: TuneReport | None = None
    try:
        report = tune(
            args.model,
            db=args.db,
            trials=args.trials,
            seed=args.seed,
            jobs=args.jobs,
            time_budget=budget,
            timeout=args.timeout,
            backend=args.backend,
            ray_address=args.ray_address,
            ranker=ranker,
            search=args.search,
            input_shapes=_parse_shapes(args.input_shape),
            kernels=args.kernels,
            on_record=on_record if bars is not None or recorder is not None else None,
            on_task=done,
        )
    except KernelPatternError as e:
        print(f"mlc: error: --kernels: {e}", file=sys.stderr)
        return 2
    finally:
        if bars is not None:
            bars.close()
        # whatever was measured: also when interrupted, or stopped by an error
        if recorder is not None and (report is not None or len(recorder)):
            title = f"mlc tune {Path(args.model).name}"
            if report is None or report.interrupted:
                title += " (interrupted)" if report is not None else " (stopped by an error)"
            _write_plot(recorder, args.plot, title)
    assert report is not None  # tune returned (it returns when interrupted, too)
    print(report.table())
    print(f"records in {args.db}; compile with mlc.compile(model, tuning_db={args.db!r})")
    if recorder is not None:
        print(f"tuning curves in {args.plot}")
    return 130 if report.interrupted else 0


def _plot_recorder(path: str) -> CurveRecorder:
    """A `CurveRecorder` for --plot, once the plot is known to be writable at `path`."""
    from mlc.tuning.plot import CurveRecorder, MatplotlibMissingError, check_plot_path

    try:
        check_plot_path(path)
    except MatplotlibMissingError:
        raise CliError("--plot needs matplotlib: pip install 'mlc[plot]'") from None
    except ValueError as e:
        raise CliError(f"--plot: {e}") from None
    return CurveRecorder()


def _write_plot(recorder: CurveRecorder, path: str, title: str) -> None:
    """Draw `recorder`'s curves (`mlc.tuning.plot.plot_curves`) to `path`."""
    from mlc.tuning import plot

    plot.plot_curves(recorder.curves(), path, title=title)


class _TuneProgress:
    """`mlc tune`'s progress on stderr: a tqdm bar per kernel (trials measured of
    `--trials`, the best median so far)."""

    def __init__(self, trials: int) -> None:
        self.trials = trials
        self.task: object = None
        self.bar: Any = None

    def record(self, result: Any, _record: Any) -> None:
        from tqdm import tqdm

        if result.task is not self.task:
            self.close()
            self.task = result.task
            self.bar = tqdm(
                total=self.trials, desc=result.task.name, unit="trial", leave=False, file=sys.stderr
            )
        self.bar.n = min(result.trials, self.trials)
        self.bar.set_postfix_str(f"best {_seconds(result.best_seconds)}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.task = None, None


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


def cmd_cache(args: argparse.Namespace) -> int:
    """`mlc cache info` / `mlc cache clear` (`MLC_CACHE_DIR` overrides the directory)."""
    from mlc.targets.compile_cache import CompileCache

    cache = CompileCache()
    if args.action == "clear":
        print(f"removed {cache.clear()} entries from {cache.root}")
    else:
        print(cache.info())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """`mlc bench [options]`: `python -m mlc.benchmarks.run` (its --help lists them)."""
    from mlc.benchmarks.run import main as bench_main

    return bench_main(args.bench_args)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that report a user's mistake (bad input, bad IR, a failed export):
    imported when an error happened, so that `mlc --help` loads none of the compiler."""
    from xdsl.utils.exceptions import DiagnosticException

    from mlc.interpreters import InterpretError
    from mlc.parser.onnx import OnnxImportError
    from mlc.targets.aot import AotError
    from mlc.targets.compiled import InvalidInputError

    return (OnnxImportError, InterpretError, DiagnosticException, AotError, InvalidInputError)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # options belong to the benchmark harness
        args = argparse.Namespace(fn=cmd_bench, bench_args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if isinstance(e, CliError | OSError | ValueError) or isinstance(e, _user_error_types()):
            print(f"mlc: error: {e}".rstrip(), file=sys.stderr)
            return 1
        if os.environ.get("MLC_DEBUG"):  # a bug in mlc: one line, the traceback on request
            raise
        print(
            f"mlc: internal error: {type(e).__name__}: {e} (MLC_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
