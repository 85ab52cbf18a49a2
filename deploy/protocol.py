"""The Open Inference Protocol (KServe v2) inference request and response, as JSON tensors
or with the binary tensor data extension.

    request, binary = parse_header(body, headers.get("inference-header-content-length"))
    infer = parse_infer_request(request, binary, model_inputs, model_outputs, max_rows)
    body, headers = encode_infer_response(name, version, request_id, outputs, infer.binary)

A JSON request: `{"id": "r1", "inputs": [{"name": "image", "datatype": "FP32", "shape": [1,
3, 32, 32], "data": [...]}], "outputs": [{"name": "y", "parameters": {"binary_data":
true}}], "parameters": {"binary_data_output": true}}`; `data` flat or nested, row-major.
With the binary extension the body is that JSON (its byte count in the
`Inference-Header-Content-Length` header) followed by the raw little-endian tensors, in
input order, each input saying `"parameters": {"binary_data_size": n}` instead of `data`.
Outputs asked for as binary come back the same way. Everything a client sends is checked
before any array is allocated from it; a bad request is a `ProtocolError` (a status and a
message), never a crash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlc.deploy.wheel_runtime import TensorSpec

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "InferRequest",
    "ProtocolError",
    "datatype_of",
    "encode_infer_response",
    "parse_infer_request",
]

#: the header carrying the JSON part's byte count in binary requests and responses
HEADER_LENGTH = "inference-header-content-length"

#: Open Inference Protocol datatype -> numpy dtype (BYTES, strings, is not supported)
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}
_MAX_ID = 256


class ProtocolError(Exception):
    """A request the server cannot serve: an HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def datatype_of(dtype: np.dtype) -> str:
    """The protocol's name for `dtype` ("FP32"); "BF16" for bfloat16."""
    if dtype.name == "bfloat16":
        return "BF16"
    return _NAMES[np.dtype(dtype)]


@dataclass
class InferRequest:
    """A checked request: its id (None if the client gave none), one array per model input
    (in the model's order; the same number of rows first when batched), the outputs asked
    for (indices into the model's outputs) and which of them go back as binary data."""

    id: str | None
    inputs: list[np.ndarray]
    rows: int
    outputs: list[int]
    binary: set[int]


def _bad(message: str) -> ProtocolError:
    return ProtocolError(400, message)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{what} must be a JSON object")
    return value


def _flag(parameters: Any, key: str, what: str) -> bool:
    if parameters is None:
        return False
    value = _object(parameters, f"{what} parameters").get(key, False)
    if not isinstance(value, bool):
        raise _bad(f"{what} parameter {key} must be true or false")
    return value


def parse_header(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON part of a request and the binary data after it."""
    if header_length is None:
        json_part, rest = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise _bad(
                f"Inference-Header-Content-Length must be a byte count within the body "
                f"({len(body)} bytes), got '{header_length[:32]}'"
            )
        n = int(header_length)
        json_part, rest = body[:n], body[n:]
    try:
        request = json.loads(json_part)
    except (ValueError, RecursionError) as e:  # (UnicodeDecodeError is a ValueError)
        raise _bad(f"the request is not valid JSON: {str(e)[:200]}") from None
    return _object(request, "the request"), rest


def request_id(request: dict[str, Any]) -> str | None:
    """The request's `id`: a printable string of at most 256 characters, or None."""
    rid = request.get("id")
    if rid is None:
        return None
    if not isinstance(rid, str) or len(rid) > _MAX_ID or not rid.isprintable():
        raise _bad(f"id must be a printable string of at most {_MAX_ID} characters")
    return rid


def parse_infer_request(
    request: dict[str, Any],
    binary: bytes,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    max_rows: int,
) -> InferRequest:
    """Check `request` (the JSON part) and `binary` (the bytes after it) against the model's
    `inputs` and `outputs` (a `None` first dimension: batched, 1 to `max_rows` rows)."""
    rid = request_id(request)
    given = request.get("inputs")
    if not isinstance(given, list) or not given:
        raise _bad("the request must have 'inputs': a non-empty list of tensors")
    by_name = {spec.name: i for i, spec in enumerate(inputs)}
    seen: dict[int, dict[str, Any]] = {}
    for tensor in given:
        tensor = _object(tensor, "each input")
        name = tensor.get("name")
        if not isinstance(name, str) or name not in by_name:
            known = ", ".join(s.name for s in inputs)
            raise _bad(f"unknown input {str(name)[:64]!r}; the model takes {known}")
        if by_name[name] in seen:
            raise _bad(f"input '{name}' is given twice")
        seen[by_name[name]] = tensor
    missing = [s.name for i, s in enumerate(inputs) if i not in seen]
    if missing:
        raise _bad(f"missing input(s) {', '.join(missing)}")
    arrays, rows, offset = [], None, 0
    for i, spec in enumerate(inputs):
        tensor = seen[i]
        shape = _shape(tensor, spec, max_rows)
        if spec.shape[:1] == (None,):
            if rows not in (None, shape[0]):
                raise _bad(f"input '{spec.name}' has {shape[0]} rows, another input {rows}")
            rows = shape[0]
        array, offset = _data(tensor, spec, shape, binary, offset)
        arrays.append(array)
    if offset != len(binary):
        raise _bad(f"{len(binary) - offset} bytes of binary data after the last input")
    wanted, as_binary = _outputs(request, outputs)
    return InferRequest(rid, arrays, rows or 1, wanted, as_binary)


def _shape(tensor: dict[str, Any], spec: TensorSpec, max_rows: int) -> tuple[int, ...]:
    datatype = tensor.get("datatype")
    expected = datatype_of(spec.dtype)
    if datatype != expected:
        raise _bad(
            f"input '{spec.name}' has datatype {str(datatype)[:16]}, the model takes {expected}"
        )
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _bad(f"input '{spec.name}': shape must be a list of non-negative integers")
    dims = ", ".join("N" if d is None else str(d) for d in spec.shape)
    fits = len(shape) == len(spec.shape) and all(
        d is None or d == n for d, n in zip(spec.shape, shape)
    )
    if not fits:
        raise _bad(f"input '{spec.name}' has shape {shape[:8]}, the model takes [{dims}]")
    if spec.shape[:1] == (None,) and not 1 <= shape[0] <= max_rows:
        raise ProtocolError(
            413 if shape[0] > max_rows else 400,
            f"input '{spec.name}' has {shape[0]} rows; a request takes 1 to {max_rows}",
        )
    return tuple(shape)


def _data(
    tensor: dict[str, Any], spec: TensorSpec, shape: tuple[int, ...], binary: bytes, offset: int
) -> tuple[np.ndarray, int]:
    count = math.prod(shape)
    parameters = tensor.get("parameters")
    size = _object(parameters, "input parameters").get("binary_data_size") if parameters else None
    if size is not None:
        if "data" in tensor:
            raise _bad(f"input '{spec.name}' has both data and binary_data_size")
        nbytes = count * spec.dtype.itemsize
        if not isinstance(size, int) or isinstance(size, bool) or size != nbytes:
            raise _bad(
                f"input '{spec.name}': binary_data_size must be {nbytes} "
                f"({list(shape)} x {spec.dtype.itemsize} bytes)"
            )
        if offset + nbytes > len(binary):
            raise _bad(f"input '{spec.name}': the body ends inside its binary data")
        array = np.frombuffer(binary, spec.dtype, count, offset).reshape(shape)
        return array, offset + nbytes
    data = tensor.get("data")
    if not isinstance(data, list):
        raise _bad(f"input '{spec.name}' needs data (a list) or parameters.binary_data_size")
    if len(data) not in (count, shape[0] if shape else 1):  # before converting a huge list
        raise _bad(
            f"input '{spec.name}': {len(data)} values in data, shape {list(shape)} needs {count}"
        )
    try:
        array = np.array(data, dtype=spec.dtype)
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        raise _bad(
            f"input '{spec.name}': data is not {spec.dtype} numbers ({str(e)[:100]})"
        ) from None
    if array.size != count or (array.ndim > 1 and array.shape != shape):
        raise _bad(
            f"input '{spec.name}': {array.size} values in data ({list(array.shape)[:8]}), "
            f"shape {list(shape)} needs {count}"
        )
    return array.reshape(shape), offset


def _outputs(request: dict[str, Any], outputs: Sequence[TensorSpec]) -> tuple[list[int], set[int]]:
    everything_binary = _flag(request.get("parameters"), "binary_data_output", "request")
    asked = request.get("outputs")
    if asked is None:
        wanted = list(range(len(outputs)))
        return wanted, set(wanted) if everything_binary else set()
    if not isinstance(asked, list):
        raise _bad("'outputs' must be a list")
    index = {s.name: i for i, s in enumerate(outputs)}
    wanted, binary = [], set()
    for out in asked:
        out = _object(out, "each requested output")
        name = out.get("name")
        if not isinstance(name, str) or name not in index:
            known = ", ".join(s.name for s in outputs)
            raise _bad(f"unknown output {str(name)[:64]!r}; the model has {known}")
        if index[name] not in wanted:
            wanted.append(index[name])
        if everything_binary or _flag(out.get("parameters"), "binary_data", f"output '{name}'"):
            binary.add(index[name])
    return wanted, binary


def encode_infer_response(
    model_name: str,
    model_version: str,
    rid: str,
    outputs: Sequence[tuple[TensorSpec, np.ndarray]],
    binary: set[int],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (`Inference-Header-Content-Length` when some
    output is binary); `binary` holds positions in `outputs`."""
    tensors, blobs = [], []
    for i, (spec, array) in enumerate(outputs):
        tensor: dict[str, Any] = {
            "name": spec.name,
            "datatype": datatype_of(array.dtype),
            "shape": list(array.shape),
        }
        if i in binary:
            data = np.ascontiguousarray(array).tobytes()
            tensor["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            tensor["data"] = array.ravel().tolist()
        tensors.append(tensor)
    body = {"model_name": model_name, "model_version": model_version, "id": rid, "outputs": tensors}
    text = json.dumps(body, separators=(",", ":")).encode()
    if not blobs:
        return text, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(text))}
    return b"".join([text, *blobs]), headers
