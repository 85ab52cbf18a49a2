"""External data: tensors whose bytes live in files beside the model (`data_location=EXTERNAL`).

Locations are resolved against one base directory: the model file's own directory for a
model given as a path, the explicit `base_dir=` for one given as bytes or a ModelProto.
onnx's `load_external_data_for_tensor` refuses locations outside the base directory
(`../`, absolute paths, symbolic links, devices); its errors become `OnnxImportError`s
naming the tensor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import onnx
from onnx.checker import ValidationError
from onnx.external_data_helper import (
    ExternalDataInfo,
    load_external_data_for_tensor,
    uses_external_data,
)

from mlc.parser.onnx.errors import OnnxImportError

#: (where the tensor is, the tensor)
Located = tuple[str, onnx.TensorProto]


def model_tensors(model: onnx.ModelProto) -> list[Located]:
    """Every tensor of `model` (initializers, attributes; subgraphs and functions included)."""
    found = list(_graph_tensors(model.graph))
    for function in model.functions:
        for node in function.node:
            found.extend(_node_tensors(node))
    return found


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[Located]:
    for tensor in graph.initializer:
        yield f"initializer '{tensor.name}'", tensor
    for sparse in graph.sparse_initializer:
        yield f"sparse initializer '{sparse.values.name}'", sparse.values
        yield f"sparse initializer '{sparse.values.name}' (indices)", sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[Located]:
    for attr in node.attribute:
        where = f"node '{node.name}' ({node.op_type}), attribute '{attr.name}'"
        tensors = [attr.t] if attr.HasField("t") else []
        tensors += list(attr.tensors)
        for sparse in [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []:
            tensors += [sparse.values, sparse.indices]
        for sparse in attr.sparse_tensors:
            tensors += [sparse.values, sparse.indices]
        for tensor in tensors:
            yield where, tensor
        for graph in [attr.g] if attr.HasField("g") else []:
            yield from _graph_tensors(graph)
        for graph in attr.graphs:
            yield from _graph_tensors(graph)


def _location(tensor: onnx.TensorProto) -> str:
    try:
        return str(ExternalDataInfo(tensor).location)
    except (ValueError, AttributeError):
        return "?"


def load_external_data(
    model: onnx.ModelProto, base_dir: str | os.PathLike[str] | None, given_as: str
) -> onnx.ModelProto:
    """`model` with every external tensor's data read from under `base_dir`.

    Returns `model` itself when it has no external tensors, else a copy (the caller's
    proto is never changed). `given_as` says how the model was given, for the error
    when `base_dir` is needed but missing.
    """
    if not any(uses_external_data(t) for _, t in model_tensors(model)):
        return model
    loaded = onnx.ModelProto()
    loaded.CopyFrom(model)
    tensors = [(w, t) for w, t in model_tensors(loaded) if uses_external_data(t)]
    if base_dir is None:
        where, tensor = tensors[0]
        raise OnnxImportError(
            f"{where} keeps its data in the external file '{_location(tensor)}': a model "
            f"given as {given_as} with external data needs base_dir= (the directory of "
            "its data files)"
        )
    for where, tensor in tensors:
        _load_tensor(where, tensor, os.fspath(base_dir))
    return loaded


def _load_tensor(where: str, tensor: onnx.TensorProto, base_dir: str) -> None:
    location = _location(tensor)
    try:
        load_external_data_for_tensor(tensor, base_dir)
    except (ValidationError, ValueError, OSError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise OnnxImportError(
            f"{where}: cannot read its external data '{location}': {reason}"
        ) from None
