"""Model validation: mlc's own checks before the import, `onnx.checker` after it.

Models onnxruntime refuses are refused here too, with a one-line `OnnxImportError` that
names the node (or tensor, input, output) and the reason: unknown data types, invalid
opset or IR versions, unknown or repeated attributes, extra node inputs, negative or
huge dimensions, declared types that contradict the inferred ones. mlc stays lenient
where its meaning is plain: graph outputs declared without a type or shape, a node output
that reuses an earlier name (it shadows it from there on), element types outside an
operator's type constraints at the model's opset (where mlc's op defines them).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto
from onnx.checker import ValidationError
from onnx.shape_inference import InferenceError
from xdsl.dialects.builtin import TensorType

from mlc.dialects.graph.types import UnsupportedTypeError, element_type_from_onnx, numpy_dtype
from mlc.parser.onnx.errors import OnnxImportError
from mlc.parser.onnx.external import model_tensors

#: the most elements a tensor may have (a dimension or shape beyond it is refused)
MAX_ELEMENTS = 1 << 48

ONNX_DOMAINS = ("", "ai.onnx")

_VALID_DATA_TYPES = frozenset(TensorProto.DataType.values()) - {TensorProto.UNDEFINED}

CheckerInput = onnx.ModelProto | bytes | str


def dims_problem(dims: Sequence[int]) -> str | None:
    """Why a static shape cannot be a tensor's (negative or too large), or None."""
    for d in dims:
        if d < 0:
            return f"dimension {d} is negative"
        if d > MAX_ELEMENTS:
            return f"dimension {d} is too large"
    count = math.prod(dims)
    if count > MAX_ELEMENTS:
        return f"shape {list(dims)} has too many elements ({count})"
    return None


def check_structure(model: onnx.ModelProto) -> None:
    """mlc's own checks of what `onnx.checker` lets through or reports unclearly."""
    _check_opsets(model)
    graph = model.graph
    _check_names(graph)
    for where, tensor in model_tensors(model):
        _check_tensor(tensor, where)
    for kind, infos in (
        ("graph input", graph.input),
        ("graph output", graph.output),
        ("value_info", graph.value_info),
    ):
        _check_value_infos(kind, infos)


def _check_names(graph: onnx.GraphProto) -> None:
    """Every node, value and initializer name is text (protobuf hands a name that is not
    valid UTF-8 over as bytes)."""
    named = [("node", n.name) for n in graph.node]
    named += [("value", v) for n in graph.node for v in (*n.input, *n.output)]
    named += [("graph input", v.name) for v in graph.input]
    named += [("graph output", v.name) for v in graph.output]
    named += [("initializer", t.name) for t in graph.initializer]
    for kind, name in named:
        if not isinstance(name, str):
            raise OnnxImportError(f"invalid model: a {kind} name is not valid UTF-8: {name!r}")


def _check_opsets(model: onnx.ModelProto) -> None:
    latest = onnx.defs.onnx_opset_version()
    for imp in model.opset_import:
        if imp.domain in ONNX_DOMAINS and not 1 <= imp.version <= latest:
            raise OnnxImportError(
                f"invalid model: opset_import: ONNX opset version {imp.version} does not "
                f"exist (known versions: 1 to {latest})"
            )


def _check_tensor(tensor: TensorProto, what: str) -> None:
    if tensor.data_type not in _VALID_DATA_TYPES:
        name = "UNDEFINED (0)" if tensor.data_type == 0 else str(tensor.data_type)
        raise OnnxImportError(f"invalid model: {what}: data type {name} is not a valid ONNX type")
    if (problem := dims_problem(list(tensor.dims))) is not None:
        raise OnnxImportError(f"invalid model: {what}: {problem}")


def _check_value_infos(kind: str, infos: Iterable[onnx.ValueInfoProto]) -> None:
    for info in infos:
        if not info.type.HasField("tensor_type"):
            continue
        elem = info.type.tensor_type.elem_type
        if elem != TensorProto.UNDEFINED and elem not in _VALID_DATA_TYPES:
            raise OnnxImportError(
                f"invalid model: {kind} '{info.name}': element type {elem} is not a valid ONNX type"
            )


def _declared_dims(info: onnx.ValueInfoProto) -> list[int | None] | None:
    """Declared dims (None where symbolic or unknown); None without a declared shape."""
    tt = info.type.tensor_type
    if not info.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    return [int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim]


def _contradicts(declared: list[int | None] | None, dims: Sequence[int]) -> bool:
    if declared is None:
        return False
    if len(declared) != len(dims):
        return True
    return any(d is not None and d != int(g) for d, g in zip(declared, dims))


def reshapes_inputs(
    inputs: Sequence[onnx.ValueInfoProto],
    input_shapes: Mapping[str, Sequence[int]],
    input_values: Mapping[str, np.ndarray],
) -> bool:
    """Whether `input_shapes` / `input_values` give an input a shape it does not declare."""
    for info in inputs:
        given = input_shapes.get(info.name)
        if given is None and info.name in input_values:
            given = np.shape(input_values[info.name])
        if given is not None and _contradicts(_declared_dims(info), given):
            return True
    return False


def _type_text(dtype: str, dims: Sequence[int | str | None] | None) -> str:
    if dims is None:
        return dtype
    return f"{dtype}[{','.join('?' if d is None else str(d) for d in dims)}]"


def _onnx_dtype_name(elem: int) -> str:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem).name
    except (KeyError, ValueError, TypeError):
        return onnx.TensorProto.DataType.Name(elem).lower()


def output_mismatch(
    info: onnx.ValueInfoProto, actual: TensorType, compare_rank: bool = True
) -> str | None:
    """Why graph output `info` is not declared as the computed `actual`, or None.

    Element type and rank are compared; dimensions are left to the checker's shape
    inference, as in onnxruntime (a Range's length computed in floating point, say,
    may differ by one from the inferred one)."""
    declared = _declared_dims(info)
    elem = info.type.tensor_type.elem_type if info.type.HasField("tensor_type") else 0
    same_elem = not elem or _element_matches(elem, actual)
    same_rank = not compare_rank or declared is None or len(declared) == actual.get_num_dims()
    if same_elem and same_rank:
        return None
    shown = (
        None
        if declared is None
        else [
            d.dim_param or None if v is None else v
            for d, v in zip(info.type.tensor_type.shape.dim, declared)
        ]
    )
    wanted = _type_text(_onnx_dtype_name(elem) if elem else "?", shown)
    got = _type_text(numpy_dtype(actual.element_type).name, list(actual.get_shape()))
    return f"graph output '{info.name}' is declared {wanted} but the model computes {got}"


def _element_matches(elem: int, actual: TensorType) -> bool:
    try:
        return element_type_from_onnx(elem) == actual.element_type
    except (UnsupportedTypeError, ValueError):
        return False


#: strict shape inference's complaint about an element type an operator's opset does not
#: list (uint8 Add at opset 13, say): tolerated, mlc's ops define them
_TYPE_CONSTRAINT = "has unsupported type"


def run_onnx_checker(source: CheckerInput, proto: onnx.ModelProto) -> None:
    """`onnx.checker.check_model` with strict shape inference; errors name the node.

    `proto` is `source` parsed. Element types outside an operator's type constraints
    are accepted (shape inference then goes on without type checks). A ModelProto too
    large to serialize is not checked (a path always is)."""
    checked: CheckerInput = source
    if isinstance(source, onnx.ModelProto):
        # serialized once here (the checker would serialize it anyway; `ByteSize` alone
        # costs three serializations): a ResNet-50 is 0.1 s instead of 0.45 s
        checked = source.SerializeToString()
        if len(checked) > onnx.checker.MAXIMUM_PROTOBUF:
            return
    try:
        onnx.checker.check_model(checked, full_check=True)
    except InferenceError as e:
        if _TYPE_CONSTRAINT not in str(e):
            raise OnnxImportError(f"invalid model: {describe_onnx_error(e)}") from None
        _infer_without_type_checks(source if isinstance(source, onnx.ModelProto) else proto)
    except (ValidationError, ValueError) as e:
        raise OnnxImportError(f"invalid model: {describe_onnx_error(e)}") from None


def _too_large(model: CheckerInput) -> bool:
    limit = onnx.checker.MAXIMUM_PROTOBUF
    return isinstance(model, onnx.ModelProto) and model.ByteSize() > limit


def _infer_without_type_checks(model: onnx.ModelProto) -> None:
    """Strict shape inference, element types not checked against type constraints (the
    checker's own checks passed before its shape inference ran)."""
    if _too_large(model):
        return
    try:
        onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=True)
    except (InferenceError, ValueError) as e:
        raise OnnxImportError(f"invalid model: {describe_onnx_error(e)}") from None


_INFERENCE_NODE = re.compile(r"\(op_type:([^,)]*)(?:, node name: ([^)]*))?\): (.*)")
_CHECKER_NODE = re.compile(r"Name: (.*?) OpType: (\S+)")
_ELEM_TYPES = re.compile(r"(elem type: )\((\d+)\) vs \((\d+)\)")


def describe_onnx_error(error: Exception) -> str:
    """One line from an onnx checker / shape inference error, naming the node."""
    text = str(error).strip()
    first = (text.splitlines() or [type(error).__name__])[0]
    if match := _INFERENCE_NODE.search(text):
        op_type, name, reason = match.groups()
        return f"{_node(name or '', op_type)}: {_ELEM_TYPES.sub(_type_names, reason.strip())}"
    if match := _CHECKER_NODE.search(text):
        name, op_type = match.groups()
        return f"{_node(name, op_type)}: {first}"
    return first


def _node(name: str, op_type: str) -> str:
    return f"node '{name}' ({op_type})" if name else f"an unnamed {op_type} node"


def _type_names(match: re.Match[str]) -> str:
    """`elem type: (1) vs (3)` -> `elem type: (FLOAT) vs (INT8)`."""
    names = [_type_name(int(v)) for v in match.groups()[1:]]
    return f"{match.group(1)}({names[0]}) vs ({names[1]})"


def _type_name(data_type: int) -> str:
    try:
        return TensorProto.DataType.Name(data_type)
    except ValueError:
        return str(data_type)


def checker_input(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    proto: onnx.ModelProto,
    data_loaded: bool,
    base_dir: str | os.PathLike[str] | None,
) -> CheckerInput:
    """What to give `onnx.checker`: the original bytes or path where they are equivalent
    to `proto` (no serialization; a path also checks files of external data against
    its own directory), else `proto`, or a copy of it with what mlc accepts and the
    checker does not made acceptable (`_checker_copy`)."""
    if any(_untyped(info) for info in proto.graph.output) or _redefines(proto.graph):
        return _checker_copy(proto)
    if isinstance(model, bytes) and not data_loaded:
        return model
    if isinstance(model, str | os.PathLike) and base_dir is None:
        path = os.fspath(model)
        extension = os.path.splitext(path)[1]
        if onnx.serialization.registry.get_format_from_file_extension(extension) in (
            None,
            "protobuf",
        ):
            return path
    return proto


def _untyped(info: onnx.ValueInfoProto) -> bool:
    if not info.HasField("type"):
        return True
    return info.type.HasField("tensor_type") and not info.type.tensor_type.HasField("shape")


def _redefines(graph: onnx.GraphProto) -> bool:
    """Whether a node output reuses the name of a graph input or an earlier value."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        for out in node.output:
            if out and out in defined:
                return True
            defined.add(out)
    return False


def _checker_copy(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `proto` without what mlc accepts but `onnx.checker` refuses: graph
    outputs declared without a type or shape (mlc gives them the computed type), and
    node outputs that reuse a name (mlc reads the graph in order: the new value shadows
    the old one from there on; the copy renames it)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    graph = copy.graph
    kept = [info for info in graph.output if not _untyped(info)]
    del graph.output[:]
    graph.output.extend(kept)
    _rename_redefinitions(graph)
    return copy


def _rename_redefinitions(graph: onnx.GraphProto) -> None:
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    taken = defined | {o for n in graph.node for o in n.output}
    renamed: dict[str, str] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            node.input[k] = renamed.get(name, name)
        for k, out in enumerate(node.output):
            if out and out in defined:
                fresh = _fresh_name(out, taken)
                renamed[out] = node.output[k] = fresh
            defined.add(out)
    for info in graph.output:
        info.name = renamed.get(info.name, info.name)


def _fresh_name(name: str, taken: set[str]) -> str:
    index = 1
    while f"{name}__{index}" in taken:
        index += 1
    taken.add(f"{name}__{index}")
    return f"{name}__{index}"
