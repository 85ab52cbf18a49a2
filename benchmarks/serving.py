"""Serving benchmark: mlc's inference service vs onnxruntime behind the same server, under
load and under faults.

    python -m mlc.benchmarks.serving                     # tiny CNN + ResNet-style, ~10 min
    python -m mlc.benchmarks.serving --quick             # the tiny CNN, short cells
    python -m mlc.benchmarks.serving --json serving.json --faults-only

Each configuration is its own `mlc serve` process (engine mlc or onnxruntime, dynamic
batching on or off; one thread per model run, max batch 8, no queue delay), all started
at once; the load generator (asyncio + aiohttp, closed loop: N clients each sending its
next request when the last is answered, binary tensor data) measures every (model, clients,
configuration) cell for `--duration` seconds, cycling through the configurations within
each round, for `--rounds` rounds, so that load from elsewhere on the machine hits them
alike. Every response is checked: status, its request's id, and its output against
onnxruntime's for that request's input. Throughput is answered requests per second;
latency percentiles pool all rounds.

The fault suite, against mlc's server: hostile and malformed payloads (each must get a
4xx), clients that disconnect mid-request (partial headers, partial body, gone before the
answer), 1000 concurrent connections each with its own request, and a queue overflow
(a server with an 8-request queue under 300 concurrent requests: 503s, then recovery). It
reports requests tried, errors returned, crashes (server processes that died or logged an
unhandled exception) and responses lost or mixed up (a wrong id or a wrong result).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlc.benchmarks.zoo import resnet50

__all__ = ["Cell", "Config", "ModelCase", "Payloads", "fault_suite", "load_benchmark", "main"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MAX_BATCH = 8


@dataclass(frozen=True)
class ModelCase:
    """A model served in the benchmark, its input name and shape (one row)."""

    label: str
    path: Path
    input_name: str
    row_shape: tuple[int, ...]
    tolerance: float


def model_cases(names: list[str], workdir: Path) -> list[ModelCase]:
    """The bundled tiny CNN and a ResNet-50-topology model at 64x64 with 1/4 the channels."""
    cases = []
    if "tiny" in names:
        cases.append(
            ModelCase("tiny CNN", EXAMPLES / "tiny_resnet.onnx", "image", (3, 32, 32), 1e-4)
        )
    if "resnet" in names:
        import onnx

        path = workdir / "resnet50_64x64_w025.onnx"
        onnx.save(resnet50(64, 0.25).model, str(path))
        cases.append(ModelCase("ResNet-50 64x64 x1/4", path, "x", (3, 64, 64), 1e-3))
    return cases


@dataclass(frozen=True)
class Config:
    """One server configuration."""

    engine: str
    batching: bool

    @property
    def label(self) -> str:
        return f"{self.engine}{'' if self.batching else ' (no batching)'}"


CONFIGS = [
    Config("mlc", True),
    Config("onnxruntime", True),
    Config("mlc", False),
    Config("onnxruntime", False),
]


# -- servers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """An `mlc serve` process."""

    url: str
    process: subprocess.Popen[str]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def unhandled(self) -> int:
        """Unhandled exceptions the server logged (uvicorn's 'Exception in ASGI
        application')."""
        return self.log.read_text(errors="replace").count("Exception in ASGI application")


def start_server(model: Path, name: str, config: Config, workdir: Path, *extra: str) -> Server:
    port = _free_port()
    log = workdir / f"server-{port}.log"
    cmd = [
        sys.executable, "-m", "mlc.tools.mlc", "serve", str(model), "--name", name,
        "--port", str(port), "--engine", config.engine, "--max-batch-size", str(MAX_BATCH),
        "--threads", "1", "--log-level", "warning", *extra,
    ]  # fmt: skip
    if not config.batching:
        cmd += ["--no-batching", "--batch-sizes", "1"]
    env = {**os.environ, "MLC_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = log.open("w")
    process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_ready(servers: list[Server], timeout: float = 900) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    for server in servers:
        while True:
            if not server.alive():
                raise RuntimeError(f"the server died:\n{server.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("a server did not become ready")
            time.sleep(0.2)


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    try:
        yield servers
    finally:
        for server in servers:
            if server.alive():
                server.process.terminate()
        for server in servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(30)


# -- requests and their checks -------------------------------------------------------------------


@dataclass
class Payloads:
    """Distinct single-row inputs and onnxruntime's outputs for them."""

    case: ModelCase
    inputs: list[np.ndarray]
    expected: list[np.ndarray]

    @staticmethod
    def make(case: ModelCase, count: int = 16) -> Payloads:
        import onnxruntime as ort

        rng = np.random.default_rng(0)
        inputs = [
            rng.standard_normal((1, *case.row_shape)).astype(np.float32) for _ in range(count)
        ]
        session = ort.InferenceSession(str(case.path), providers=["CPUExecutionProvider"])
        expected = [session.run(None, {case.input_name: x})[0] for x in inputs]
        return Payloads(case, inputs, expected)

    def body(self, i: int, rid: str) -> tuple[bytes, dict[str, str]]:
        """The binary request for input `i` with id `rid`, and its headers."""
        x = self.inputs[i % len(self.inputs)]
        head = json.dumps(
            {
                "id": rid,
                "inputs": [
                    {
                        "name": self.case.input_name,
                        "datatype": "FP32",
                        "shape": list(x.shape),
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ],
                "parameters": {"binary_data_output": True},
            }
        ).encode()
        headers = {
            "inference-header-content-length": str(len(head)),
            "content-type": "application/octet-stream",
        }
        return head + x.tobytes(), headers

    def check(self, i: int, rid: str, status: int, headers: Any, content: bytes) -> str:
        """'' for the right answer to request (`i`, `rid`), else what is wrong."""
        if status != 200:
            return f"status {status}"
        n = int(headers.get("inference-header-content-length", "0"))
        head = json.loads(content[:n])
        if head.get("id") != rid:
            return f"id {head.get('id')!r} for {rid!r}"
        expected = self.expected[i % len(self.expected)]
        got = np.frombuffer(content[n:], np.float32)
        if got.size != expected.size or not np.allclose(
            got, expected.ravel(), rtol=self.case.tolerance, atol=self.case.tolerance
        ):
            return "wrong result"
        return ""


@dataclass
class Cell:
    """One measurement: requests answered, refused, mixed up; throughput; latencies."""

    ok: int = 0
    errors: int = 0
    mixed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, other: Cell) -> None:
        self.ok += other.ok
        self.errors += other.errors
        self.mixed += other.mixed
        self.seconds += other.seconds
        self.latencies += other.latencies

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latencies or [float("nan")]) * 1e3
        return {
            "throughput": self.ok / self.seconds if self.seconds else 0.0,
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "requests": self.ok,
            "errors": self.errors,
            "mixed": self.mixed,
        }


async def closed_loop(
    url: str, name: str, payloads: Payloads, clients: int, duration: float, warmup: float = 0.5
) -> Cell:
    """`clients` clients sending requests back to back for `warmup` + `duration` seconds;
    only the last `duration` seconds count. (aiohttp: httpx's connection pool serializes
    concurrent requests, 160 requests/s at 8 clients on a trivial endpoint where aiohttp
    makes 1,400: the load generator would measure itself.)"""
    import aiohttp

    cell = Cell()
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + duration
    endpoint = f"{url}/v2/models/{name}/infer"

    async def client(c: int, http: aiohttp.ClientSession) -> None:
        k = 0
        while (now := time.perf_counter()) < stop:
            i, rid = c * 131 + k, f"c{c}-{k}"
            k += 1
            body, headers = payloads.body(i, rid)
            try:
                async with http.post(endpoint, data=body, headers=headers) as r:
                    content = await r.read()
                    wrong = payloads.check(i, rid, r.status, r.headers, content)
            except (TimeoutError, aiohttp.ClientError) as e:
                wrong = f"status {type(e).__name__}"
            done = time.perf_counter()
            if now < measure_from:
                continue
            if not wrong:
                cell.ok += 1
                cell.latencies.append(done - now)
            elif wrong.startswith("status"):
                cell.errors += 1
            else:
                cell.mixed += 1

    connector = aiohttp.TCPConnector(limit=clients + 4)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    cell.seconds = duration
    return cell


# -- the load benchmark -------------------------------------------------------------------------


def load_benchmark(
    cases: list[ModelCase], clients: list[int], duration: float, rounds: int, workdir: Path
) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        payloads = Payloads.make(case)
        name = "model"
        servers = [start_server(case.path, name, c, workdir) for c in CONFIGS]
        with running(servers):
            print(f"{case.label}: starting {len(servers)} servers (compiling)...", flush=True)
            wait_ready(servers)
            cells = {(c, n): Cell() for c in range(len(CONFIGS)) for n in clients}
            for r in range(rounds):
                order = list(range(len(CONFIGS)))
                order = order[r % len(order) :] + order[: r % len(order)]
                for n in clients:
                    for c in order:
                        cell = asyncio.run(closed_loop(servers[c].url, name, payloads, n, duration))
                        cells[(c, n)].add(cell)
            for (c, n), cell in cells.items():
                row = {"model": case.label, "server": CONFIGS[c].label, "clients": n}
                row.update(cell.summary())
                row["crashed"] = (not servers[c].alive()) + servers[c].unhandled()
                rows.append(row)
                print(_row_text(row), flush=True)
    return rows


def _row_text(row: dict[str, Any]) -> str:
    return (
        f"| {row['model']} | {row['server']} | {row['clients']} | {row['throughput']:.0f} | "
        f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['p99_ms'] / row['p50_ms']:.1f} | "
        f"{row['requests']} | {row['errors']} | {row['mixed']} |"
    )


# -- the fault suite ------------------------------------------------------------------------------


def hostile_payloads(payloads: Payloads) -> list[tuple[str, bytes, dict[str, str]]]:
    """Malformed and hostile requests, each of which must get a 4xx."""
    x = payloads.inputs[0]
    good = {
        "inputs": [
            {
                "name": payloads.case.input_name,
                "datatype": "FP32",
                "shape": list(x.shape),
                "data": x.ravel().tolist(),
            }
        ]
    }

    def tensor(**changes: Any) -> bytes:
        return json.dumps({"inputs": [{**good["inputs"][0], **changes}]}).encode()

    head = json.dumps(
        {
            "inputs": [
                {**good["inputs"][0], "data": None, "parameters": {"binary_data_size": x.nbytes}}
            ]
        }
    ).encode()
    return [
        ("truncated JSON", json.dumps(good).encode()[:-7], {}),
        ("not JSON", b"\x00\xff" * 500, {}),
        ("JSON bomb (deep nesting)", b"[" * 200_000, {}),
        ("a JSON string", b'"inputs"', {}),
        ("no inputs", b'{"outputs": []}', {}),
        ("null inputs", b'{"inputs": null}', {}),
        ("empty inputs", b'{"inputs": []}', {}),
        ("unknown input", tensor(name="evil"), {}),
        ("wrong datatype", tensor(datatype="FP64"), {}),
        ("BYTES datatype", tensor(datatype="BYTES"), {}),
        ("wrong shape", tensor(shape=[1, 3, 2, 2]), {}),
        ("huge shape", tensor(shape=[10**9, *x.shape[1:]]), {}),
        ("negative shape", tensor(shape=[-1, *x.shape[1:]]), {}),
        ("too few values", tensor(data=[0.0] * 10), {}),
        ("strings as data", tensor(data=["1e309"] * 3 + ["x"] * (x.size - 3)), {}),
        ("nested objects as data", tensor(data=[{"a": 1}] * x.size), {}),
        (
            "binary size lies",
            head + x.tobytes()[:-4],
            {"inference-header-content-length": str(len(head))},
        ),
        ("header length past the body", head, {"inference-header-content-length": "99999999"}),
        ("header length not a number", head, {"inference-header-content-length": "-5"}),
        ("bad id", json.dumps({**good, "id": {"$gt": ""}}).encode(), {}),
        ("unknown output", json.dumps({**good, "outputs": [{"name": "nope"}]}).encode(), {}),
        ("oversized body (40 MB)", b" " * (40 << 20), {}),
    ]


async def _send_hostile(
    url: str, name: str, cases: list[tuple[str, bytes, dict[str, str]]], repeat: int
) -> tuple[int, int, list[str]]:
    import httpx

    tried = four = 0
    wrong = []
    async with httpx.AsyncClient(timeout=60) as http:
        for label, body, headers in cases:
            for _ in range(repeat):
                tried += 1
                try:
                    r = await http.post(
                        f"{url}/v2/models/{name}/infer", content=body, headers=headers
                    )
                    if 400 <= r.status_code < 500 and "error" in r.json():
                        four += 1
                    else:
                        wrong.append(f"{label}: {r.status_code}")
                except (httpx.HTTPError, ValueError) as e:
                    # the server may close a connection whose request it refused early
                    if "content-length" in label:
                        four += 1
                    else:
                        wrong.append(f"{label}: {type(e).__name__}")
        r = await http.get(f"{url}/v2/models/nowhere")
        tried += 1
        four += r.status_code == 404
    for label, raw in _raw_requests(url, name):  # what httpx would not send
        for _ in range(repeat):
            tried += 1
            status = await _raw_status(url, raw)
            if 400 <= status < 500:
                four += 1
            else:
                wrong.append(f"{label}: {status}")
    return tried, four, wrong


def _raw_requests(url: str, name: str) -> list[tuple[str, bytes]]:
    host = url.removeprefix("http://")
    start = f"POST /v2/models/{name}/infer HTTP/1.1\r\nhost: {host}\r\n"
    return [
        ("lying content-length", (start + "content-length: 999999999999\r\n\r\n{}").encode()),
        ("bad content-length", (start + "content-length: -3\r\n\r\n{}").encode()),
        (
            "garbage request line",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 20 + b"\r\n\r\n",
        ),
        ("header flood", (start + "x: " + "a" * 100_000 + "\r\n\r\n").encode()),
    ]


async def _raw_status(url: str, raw: bytes) -> int:
    """The status the server answers `raw` bytes with (0: it closed the connection)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
    except (TimeoutError, OSError):
        line = b""
    finally:
        writer.transport.abort()
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def _disconnects(url: str, name: str, payloads: Payloads, count: int) -> int:
    """Clients that go away: mid-headers, mid-body, and right after a whole request."""
    host, port = url.removeprefix("http://").split(":")
    body, headers = payloads.body(0, "gone")
    head = (
        f"POST /v2/models/{name}/infer HTTP/1.1\r\nhost: {host}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    kinds = [head[: len(head) // 2], head + body[: len(body) // 2], head + body]

    async def one(k: int) -> None:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(kinds[k % 3])
            await writer.drain()
            await asyncio.sleep(random.random() * 0.01)
            writer.transport.abort()  # (a reset, not a polite close)

    for start in range(0, count, 100):
        await asyncio.gather(*(one(k) for k in range(start, min(count, start + 100))))
    return count


async def _burst(url: str, name: str, payloads: Payloads, count: int, tag: str) -> Cell:
    """`count` requests at once, each on its own connection, each checked."""
    import httpx

    cell = Cell()
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:

        async def one(i: int) -> None:
            rid = f"{tag}-{i}"
            body, headers = payloads.body(i, rid)
            try:
                r = await http.post(f"{url}/v2/models/{name}/infer", content=body, headers=headers)
                wrong = payloads.check(i, rid, r.status_code, r.headers, r.content)
            except httpx.HTTPError as e:
                wrong = f"status {type(e).__name__}"
            if not wrong:
                cell.ok += 1
            elif wrong.startswith("status"):
                cell.errors += 1
            else:
                cell.mixed += 1

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        cell.seconds = time.perf_counter() - start
    return cell


def fault_suite(case: ModelCase, workdir: Path, connections: int = 1000) -> list[dict[str, Any]]:
    payloads = Payloads.make(case)
    mlc = Config("mlc", True)
    big = start_server(case.path, "model", mlc, workdir, "--max-queue-size", str(2 * connections))
    small = start_server(
        case.path,
        "model",
        mlc,
        workdir,
        "--max-queue-size",
        "8",
        "--max-batch-size",
        "1",
        "--batch-sizes",
        "1",
    )
    rows = []
    with running([big, small]):
        wait_ready([big, small])
        tried, four, wrong = asyncio.run(
            _send_hostile(big.url, "model", hostile_payloads(payloads), 4)
        )
        rows.append(
            {
                "scenario": "malformed and hostile payloads",
                "tried": tried,
                "errors": four,
                "unexpected": len(wrong),
                "mixed": 0,
                "note": "; ".join(wrong[:3]),
            }
        )
        n = asyncio.run(_disconnects(big.url, "model", payloads, 300))
        after = asyncio.run(_burst(big.url, "model", payloads, 50, "after-disconnects"))
        rows.append(
            {
                "scenario": "clients disconnecting mid-request (+50 checked requests after)",
                "tried": n + 50,
                "errors": after.errors,
                "unexpected": after.errors,
                "mixed": after.mixed,
                "note": "",
            }
        )
        burst = asyncio.run(_burst(big.url, "model", payloads, connections, "conn"))
        rows.append(
            {
                "scenario": f"{connections} concurrent connections",
                "tried": connections,
                "errors": burst.errors,
                "unexpected": burst.errors,
                "mixed": burst.mixed,
                "note": f"all answered in {burst.seconds:.1f} s",
            }
        )
        over = asyncio.run(_burst(small.url, "model", payloads, 300, "over"))
        again = asyncio.run(_burst(small.url, "model", payloads, 1, "again"))
        rows.append(
            {
                "scenario": "queue overflow (8-request queue, 300 at once)",
                "tried": 301,
                "errors": over.errors + again.errors,
                "unexpected": again.errors,
                "mixed": over.mixed + again.mixed,
                "note": f"{over.ok} answered, {over.errors} refused with 503; then {again.ok}/1 answered",
            }
        )
        crashed = sum((not s.alive()) + s.unhandled() for s in (big, small))
        for row in rows:
            row["crashes"] = crashed
    return rows


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlc.benchmarks.serving", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--models", default="tiny,resnet", help="tiny, resnet (default: both)")
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=1000, help="the fault suite's burst")
    parser.add_argument("--quick", action="store_true", help="tiny CNN, 1 round of 1.5 s cells")
    parser.add_argument("--faults-only", action="store_true")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.duration, args.rounds = "tiny", 1.5, 1
    clients = [int(c) for c in args.clients.split(",")]
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs", "load": [], "faults": []}
    with tempfile.TemporaryDirectory(prefix="mlc-serving-bench-") as tmp:
        cases = model_cases(args.models.split(","), Path(tmp))
        if not args.faults_only:
            print(
                "| model | server | clients | req/s | p50 ms | p99 ms | p99/p50 | answered | errors | mixed up |"
            )
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            results["load"] = load_benchmark(cases, clients, args.duration, args.rounds, Path(tmp))
        if not args.no_faults:
            rows = fault_suite(cases[0], Path(tmp), args.connections)
            results["faults"] = rows
            print(
                "\n| scenario | tried | errors returned | unexpected | crashes | mixed up | note |"
            )
            print("|---|---:|---:|---:|---:|---:|---|")
            for r in rows:
                print(
                    f"| {r['scenario']} | {r['tried']} | {r['errors']} | {r['unexpected']} | {r['crashes']} | {r['mixed']} | {r['note']} |"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    bad = [r for r in results["faults"] if r["crashes"] or r["mixed"]]
    bad += [r for r in results["load"] if r["mixed"] or r["crashed"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
