"""ONNX operators defined by a function, expanded into their body's nodes.

Many ONNX operator schemas carry a function body written in other ONNX operators:
`Attention`, `RotaryEmbedding`, the losses, `CenterCropPad`, `Mish`, ... Some bodies are
context dependent: generated for the node's attributes and input types. Where mlc has
no converter of its own for such an operator, the importer converts its body instead,
as onnxruntime and onnx's reference evaluator do:

    Attention(Q, K, V) -> Y   ==>   Shape(Q), ..., MatMul(Q, Kt), ..., Softmax, MatMul -> Y

`expand(node, opset, input_types, prefix)` gives the body as an `Expansion`: its nodes
with the function's formal inputs and outputs renamed to the node's, every other value
and node name prefixed (unique per expanded node), attribute references resolved
against the node's attributes; and the opset the body is written against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import onnx
from onnx import defs

__all__ = [
    "Expansion",
    "FunctionBodyError",
    "defined_values",
    "expand",
    "has_function_body",
    "rename_free",
    "renamed_copy",
    "type_proto",
]


class FunctionBodyError(ValueError):
    """A function body the importer cannot expand (e.g. one with subgraphs)."""


@dataclass(frozen=True)
class Expansion:
    """A node's function body, renamed into the calling graph."""

    nodes: list[onnx.NodeProto]
    #: the default-domain opset the body's nodes are written against
    opset: int


def type_proto(onnx_elem_type: int, shape: Sequence[int]) -> onnx.TypeProto:
    """A tensor `TypeProto` (what a context-dependent body is generated for)."""
    return onnx.helper.make_tensor_type_proto(onnx_elem_type, list(shape))


def _schema(node: onnx.NodeProto, opset: int) -> defs.OpSchema | None:
    try:
        return defs.get_schema(node.op_type, opset, node.domain)
    except (defs.SchemaError, TypeError, OverflowError):  # unknown; or an opset out of range
        return None


def has_function_body(node: onnx.NodeProto, opset: int) -> bool:
    """Whether `node`'s operator has a function body at `opset`."""
    schema = _schema(node, opset)
    if schema is None:
        return False
    if schema.has_function:
        return bool(schema.get_function_with_opset_version(opset))
    return bool(schema.has_context_dependent_function)


def _body(
    node: onnx.NodeProto,
    schema: defs.OpSchema,
    opset: int,
    input_types: Sequence[onnx.TypeProto | None],
) -> onnx.FunctionProto | None:
    """`schema`'s function body for `node` at `opset`, or None where it has none."""
    raw = b""
    if schema.has_function:
        raw = schema.get_function_with_opset_version(opset)
    elif schema.has_context_dependent_function:
        types = [(t or onnx.TypeProto()).SerializeToString() for t in input_types]
        try:
            raw = schema.get_context_dependent_function_with_opset_version(
                opset, node.SerializeToString(), types
            )
        except Exception as e:  # onnx's builder rejects the node (raises its own types)
            raise FunctionBodyError(f"its function body cannot be built: {e}") from None
    if not raw:
        return None
    body = onnx.FunctionProto()
    body.ParseFromString(raw)
    return body


def expand(
    node: onnx.NodeProto,
    opset: int,
    input_types: Sequence[onnx.TypeProto | None],
    prefix: str,
) -> Expansion | None:
    """`node`'s function body renamed into the calling graph (values and node names not
    the function's inputs or outputs start with `prefix`); None where the operator has
    no function body at `opset`. `input_types[i]` is the type of `node.input[i]` (None
    for an omitted optional input)."""
    schema = _schema(node, opset)
    body = None if schema is None else _body(node, schema, opset, input_types)
    if schema is None or body is None:
        return None
    return Expansion(_inlined(body, node, schema, prefix), _body_opset(body, opset))


def renamed_copy(
    node: onnx.NodeProto, index: int, prefix: str, renamed: Callable[[str], str]
) -> onnx.NodeProto:
    """A copy of `node` (the `index`-th of its graph) named `<prefix><name>` (or
    `<prefix><op>_<index>`), its inputs and outputs `renamed`."""
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = prefix + (node.name or f"{node.op_type}_{index}")
    copy.input[:] = [renamed(v) for v in node.input]
    copy.output[:] = [renamed(v) for v in node.output]
    return copy


def defined_values(graph: onnx.GraphProto) -> set[str]:
    """The values `graph` defines itself: its inputs, initializers and node outputs."""
    own = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    return own | {o for node in graph.node for o in node.output}


def rename_free(graph: onnx.GraphProto, renamed: Callable[[str], str], bound: set[str]) -> None:
    """Rename (in place) the values `graph` and its nested graphs read from outside them
    (not `defined_values`, nor any of `bound`)."""
    own = bound | defined_values(graph)
    for node in graph.node:
        node.input[:] = [v if not v or v in own else renamed(v) for v in node.input]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                rename_free(attr.g, renamed, own)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    rename_free(g, renamed, own)
    for out in graph.output:
        if out.name not in own:
            out.name = renamed(out.name)


def _body_opset(body: onnx.FunctionProto, opset: int) -> int:
    return next((int(i.version) for i in body.opset_import if i.domain == ""), opset)


def _inlined(
    body: onnx.FunctionProto, node: onnx.NodeProto, schema: defs.OpSchema, prefix: str
) -> list[onnx.NodeProto]:
    """`body`'s nodes renamed into `node`'s graph. An attribute reference takes the node's
    attribute, else the function's default, else the schema's; with none of them the
    attribute is left out (the inner operator's own default applies)."""
    names: dict[str, str] = {}
    for i, formal in enumerate(body.input):
        names[formal] = node.input[i] if i < len(node.input) else ""
    for i, formal in enumerate(body.output):
        given = node.output[i] if i < len(node.output) else ""
        names[formal] = given or prefix + formal

    def renamed(value: str) -> str:
        return "" if not value else names.get(value, prefix + value)

    actual = {a.name: a for a in node.attribute}
    defaults = {a.name: a for a in body.attribute_proto}
    for name, attr in schema.attributes.items():
        default = attr.default_value
        if name not in defaults and default.type != onnx.AttributeProto.UNDEFINED:
            defaults[name] = default
    nodes = []
    for k, inner in enumerate(body.node):
        new = renamed_copy(inner, k, prefix, renamed)
        del new.attribute[:]
        for attr in inner.attribute:
            if attr.type == onnx.AttributeProto.GRAPHS:
                raise FunctionBodyError(
                    f"its function body has a list of subgraphs (node {inner.op_type})"
                )
            if attr.type == onnx.AttributeProto.GRAPH:  # a Scan's body: rename what it
                copy = new.attribute.add()  # reads from the function around it
                copy.CopyFrom(attr)
                rename_free(copy.g, renamed, set())
                continue
            if attr.ref_attr_name:
                source = actual.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
                if source is None:
                    continue  # not given: the inner node's own default applies
                resolved = new.attribute.add()
                resolved.CopyFrom(source)
                resolved.name = attr.name
            else:
                new.attribute.add().CopyFrom(attr)
        nodes.append(new)
    return nodes
