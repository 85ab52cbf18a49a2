"""The Open Inference Protocol codec: JSON and binary tensors in, every malformed request a
`ProtocolError` with a status and a message."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mlc.deploy.protocol import (
    ProtocolError,
    encode_infer_response,
    parse_header,
    parse_infer_request,
)
from mlc.deploy.wheel_runtime import TensorSpec

INPUTS = [
    TensorSpec("a", np.dtype(np.float32), (None, 2, 3)),
    TensorSpec("b", np.dtype(np.int64), (None, 2)),
]
OUTPUTS = [
    TensorSpec("y", np.dtype(np.float32), (None,)),
    TensorSpec("z", np.dtype(np.int32), (None, 2)),
]


def _tensor(name: str, datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _good(rows: int = 2) -> dict[str, Any]:
    return {
        "id": "req-1",
        "inputs": [
            _tensor("b", "INT64", [rows, 2], list(range(2 * rows))),
            _tensor("a", "FP32", [rows, 2, 3], np.arange(6 * rows).reshape(rows, 2, 3).tolist()),
        ],
    }


def _parse(body: bytes, header: str | None = None, max_rows: int = 4) -> Any:
    request, binary = parse_header(body, header)
    return parse_infer_request(request, binary, INPUTS, OUTPUTS, max_rows)


def test_json_tensors_flat_or_nested_in_any_order() -> None:
    parsed = _parse(json.dumps(_good(3)).encode())
    assert parsed.id == "req-1" and parsed.rows == 3
    a, b = parsed.inputs
    assert a.dtype == np.float32 and a.shape == (3, 2, 3) and a[2, 1, 2] == 17
    assert b.dtype == np.int64 and b.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert parsed.outputs == [0, 1] and parsed.binary == set()


def test_binary_tensor_data() -> None:
    a = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    b = np.array([[7, 8], [9, 10]], np.int64)
    header = {
        "inputs": [
            {
                "name": "a",
                "datatype": "FP32",
                "shape": [2, 2, 3],
                "parameters": {"binary_data_size": 48},
            },
            {
                "name": "b",
                "datatype": "INT64",
                "shape": [2, 2],
                "parameters": {"binary_data_size": 32},
            },
        ],
        "outputs": [{"name": "z", "parameters": {"binary_data": True}}],
    }
    text = json.dumps(header).encode()
    parsed = _parse(text + a.tobytes() + b.tobytes(), str(len(text)))
    np.testing.assert_array_equal(parsed.inputs[0], a)
    np.testing.assert_array_equal(parsed.inputs[1], b)
    assert parsed.id is None and parsed.outputs == [1] and parsed.binary == {1}


def test_responses_json_and_binary() -> None:
    y = np.array([0.5, 1.5], np.float32)
    z = np.array([[1, 2], [3, 4]], np.int32)
    body, headers = encode_infer_response("m", "1", "r9", [(OUTPUTS[0], y), (OUTPUTS[1], z)], set())
    assert headers == {"content-type": "application/json"}
    out = json.loads(body)
    assert out["id"] == "r9" and out["model_name"] == "m"
    assert out["outputs"][1] == {
        "name": "z",
        "datatype": "INT32",
        "shape": [2, 2],
        "data": [1, 2, 3, 4],
    }
    body, headers = encode_infer_response("m", "1", "r9", [(OUTPUTS[0], y), (OUTPUTS[1], z)], {1})
    n = int(headers["inference-header-content-length"])
    head = json.loads(body[:n])
    assert head["outputs"][1]["parameters"] == {"binary_data_size": 16}
    assert np.frombuffer(body[n:], np.int32).tolist() == [1, 2, 3, 4]


def _with(**changes: Any) -> bytes:
    request = _good()
    for key, value in changes.items():
        if key.startswith("a_"):
            request["inputs"][1][key[2:]] = value
        else:
            request[key] = value
    return json.dumps(request).encode()


BAD: list[tuple[str, bytes, int, str]] = [
    ("not json", b"{", 400, "not valid JSON"),
    ("not utf-8", b'{"inputs": "\xff"}', 400, "not valid JSON"),
    ("deep nesting", b"[" * 100_000, 400, "not valid JSON"),
    ("a list", b"[1, 2]", 400, "must be a JSON object"),
    ("no inputs", b"{}", 400, "'inputs'"),
    ("inputs not a list", _with(inputs={"a": 1}), 400, "'inputs'"),
    ("input not an object", _with(inputs=[1]), 400, "each input must be a JSON object"),
    ("unknown input", _with(inputs=[_tensor("c", "FP32", [1], [1])]), 400, "unknown input 'c'"),
    ("missing input", _with(inputs=[_good()["inputs"][0]]), 400, "missing input(s) a"),
    ("twice", _with(inputs=[_good()["inputs"][0]] * 2), 400, "given twice"),
    ("datatype", _with(a_datatype="FP64"), 400, "datatype FP64, the model takes FP32"),
    ("bytes datatype", _with(a_datatype="BYTES"), 400, "the model takes FP32"),
    ("shape rank", _with(a_shape=[2, 6]), 400, "the model takes [N, 2, 3]"),
    ("shape negative", _with(a_shape=[-2, 2, 3]), 400, "non-negative integers"),
    ("shape floats", _with(a_shape=[2.0, 2, 3]), 400, "non-negative integers"),
    ("zero rows", _with(a_shape=[0, 2, 3]), 400, "1 to 4"),
    ("too many rows", _with(a_shape=[10**12, 2, 3]), 413, "1 to 4"),
    ("rows differ", _with(a_shape=[1, 2, 3], a_data=[0] * 6), 400, "has 2 rows, another input 1"),
    ("data count", _with(a_data=[1, 2, 3]), 400, "needs 12"),
    (
        "ragged data",
        _with(a_data=[[[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5, 6]]]),
        400,
        "not float32",
    ),
    ("data strings", _with(a_data=["x"] * 12), 400, "not float32 numbers"),
    ("data objects", _with(a_data=[{}] * 12), 400, "not float32 numbers"),
    ("data missing", _with(a_data=None), 400, "needs data"),
    ("id not a string", _with(id=5), 400, "id must be"),
    ("id with newline", _with(id="a\nb"), 400, "id must be"),
    ("unknown output", _with(outputs=[{"name": "q"}]), 400, "unknown output 'q'"),
    ("bad binary flag", _with(parameters={"binary_data_output": "yes"}), 400, "true or false"),
]


@pytest.mark.parametrize("body,status,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests_are_protocol_errors(body: bytes, status: int, message: str) -> None:
    with pytest.raises(ProtocolError) as e:
        _parse(body)
    assert e.value.status == status and message in e.value.message, e.value.message


def test_bad_binary_requests() -> None:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "a",
                    "datatype": "FP32",
                    "shape": [1, 2, 3],
                    "parameters": {"binary_data_size": 24},
                },
                _tensor("b", "INT64", [1, 2], [1, 2]),
            ]
        }
    ).encode()
    for length, tail, message in [
        ("x", b"", "byte count"),
        (str(len(head) + 1000), b"", "byte count"),
        (str(len(head)), b"\0" * 10, "ends inside its binary data"),
        (str(len(head)), b"\0" * 30, "6 bytes of binary data after"),
    ]:
        with pytest.raises(ProtocolError, match=message):
            _parse(head + tail, length)
    wrong = head.replace(b'"binary_data_size": 24', b'"binary_data_size": 99')
    with pytest.raises(ProtocolError, match="binary_data_size must be 24"):
        _parse(wrong + b"\0" * 99, str(len(wrong)))
