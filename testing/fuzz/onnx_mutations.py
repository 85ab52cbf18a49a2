"""Mutations of an ONNX `ModelProto`, in place.

Each mutation takes a random generator and the model and returns a short description of
what it changed, or None where it does not apply. `mutate` applies one to a few.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import onnx
from onnx import AttributeProto, TensorProto, helper

Mutation = Callable[[random.Random, onnx.ModelProto], str | None]

ELEMENT_TYPES: tuple[int, ...] = (0, 999, -1, *range(1, 17), 17, 19, 21, 23)
"""Element types to write: undefined, unknown, negative, every valid one, float8 / int4."""
DIMS: tuple[int, ...] = (0, -1, 1, 2**31, 2**62, 2**63 - 1)
WEIRD_NAMES: tuple[str, ...] = (
    "",
    "_0",
    "%0",
    "0",
    "a b",
    "x" * 500,
    "\u00e9\u4e2d",
    "@main",
    "x;y",
)
OPSETS: tuple[int, ...] = (0, 1, 6, 7, 12, 13, 18, 21, 99, 10**6)
IR_VERSIONS: tuple[int, ...] = (0, 1, 3, 4, 7, 11, 99, -1)
EXTERNAL_LOCATIONS: tuple[str, ...] = (
    "../x",
    "../../../../etc/passwd",
    "/etc/passwd",
    "missing.bin",
    "data.bin",
    "",
    ".",
    "sub/../data.bin",
)
"""`data.bin` exists next to the model when a case runs (64 bytes: 0, 1, ..., 63)."""


def _value_infos(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    g = model.graph
    return [*g.input, *g.output, *g.value_info]


def _tensor_types(model: onnx.ModelProto) -> list[onnx.TypeProto.Tensor]:
    return [v.type.tensor_type for v in _value_infos(model) if v.type.HasField("tensor_type")]


def elem_type(rng: random.Random, model: onnx.ModelProto) -> str | None:
    types = _tensor_types(model)
    if not types:
        return None
    t = rng.choice(types)
    t.elem_type = rng.choice(ELEMENT_TYPES)
    return f"elem_type {t.elem_type}"


def dim(rng: random.Random, model: onnx.ModelProto) -> str | None:
    shapes = [t.shape for t in _tensor_types(model) if t.HasField("shape")]
    if not shapes:
        return None
    shape = rng.choice(shapes)
    what = rng.random()
    if what < 0.15:
        shape.dim.add().dim_value = rng.choice([1, 2, 3])
        return "dim added"
    if what < 0.25 and len(shape.dim):
        del shape.dim[rng.randrange(len(shape.dim))]
        return "dim removed"
    if not len(shape.dim):
        return None
    d = shape.dim[rng.randrange(len(shape.dim))]
    if what < 0.35:
        d.dim_param = rng.choice(["N", "", "batch size"])
        return f"dim_param {d.dim_param!r}"
    d.dim_value = rng.choice(DIMS)
    return f"dim {d.dim_value}"


def _node_with_attributes(rng: random.Random, model: onnx.ModelProto) -> onnx.NodeProto | None:
    nodes = [n for n in model.graph.node if len(n.attribute)]
    return rng.choice(nodes) if nodes else None


def attr_remove(rng: random.Random, model: onnx.ModelProto) -> str | None:
    node = _node_with_attributes(rng, model)
    if node is None:
        return None
    i = rng.randrange(len(node.attribute))
    name = node.attribute[i].name
    del node.attribute[i]
    return f"{node.op_type}.{name} removed"


def attr_duplicate(rng: random.Random, model: onnx.ModelProto) -> str | None:
    node = _node_with_attributes(rng, model)
    if node is None:
        return None
    a = rng.choice(node.attribute)
    node.attribute.append(a)
    return f"{node.op_type}.{a.name} duplicated"


def attr_wrong_type(rng: random.Random, model: onnx.ModelProto) -> str | None:
    node = _node_with_attributes(rng, model)
    if node is None:
        return None
    a = rng.choice(node.attribute)
    new = rng.choice(
        [
            helper.make_attribute(a.name, 1.5),
            helper.make_attribute(a.name, "text"),
            helper.make_attribute(a.name, [1.0, 2.0]),
            helper.make_attribute(a.name, 3),
            helper.make_attribute(a.name, [], attr_type=AttributeProto.INTS),
        ]
    )
    if rng.random() < 0.3:  # the declared type disagrees with the field that is set
        new.type = rng.choice(
            [AttributeProto.INT, AttributeProto.INTS, AttributeProto.TENSOR, AttributeProto.GRAPH]
        )
    a.CopyFrom(new)
    return f"{node.op_type}.{a.name} type {a.type}"


def attr_value(rng: random.Random, model: onnx.ModelProto) -> str | None:
    node = _node_with_attributes(rng, model)
    if node is None:
        return None
    a = rng.choice(node.attribute)
    extreme = rng.choice([0, -1, -2, 2**31, 2**62, -(2**63)])
    if a.type == AttributeProto.INT:
        a.i = extreme
    elif a.type == AttributeProto.INTS and len(a.ints):
        a.ints[rng.randrange(len(a.ints))] = extreme
    elif a.type == AttributeProto.FLOAT:
        a.f = rng.choice([float("nan"), float("inf"), -1e39, 0.0])
    else:
        return None
    return f"{node.op_type}.{a.name} extreme value"


def attr_unknown(rng: random.Random, model: onnx.ModelProto) -> str | None:
    if not len(model.graph.node):
        return None
    node = rng.choice(model.graph.node)
    node.attribute.append(helper.make_attribute(rng.choice(["bogus", "axis", "to", ""]), 7))
    return f"{node.op_type} extra attribute {node.attribute[-1].name!r}"


def drop_node(rng: random.Random, model: onnx.ModelProto) -> str | None:
    nodes = model.graph.node
    if not len(nodes):
        return None
    i = rng.randrange(len(nodes))
    op = nodes[i].op_type
    del nodes[i]
    return f"node {op} dropped"


def duplicate_node(rng: random.Random, model: onnx.ModelProto) -> str | None:
    """Two nodes define the same outputs."""
    nodes = model.graph.node
    if not len(nodes):
        return None
    n = rng.choice(nodes)
    nodes.append(n)
    return f"node {n.op_type} duplicated"


def dangling_input(rng: random.Random, model: onnx.ModelProto) -> str | None:
    nodes = [n for n in model.graph.node if len(n.input)]
    if not nodes:
        return None
    n = rng.choice(nodes)
    n.input[rng.randrange(len(n.input))] = rng.choice(["nowhere", "", "_0", "%0"])
    return f"{n.op_type} reads an undefined value"


def extra_node_input(rng: random.Random, model: onnx.ModelProto) -> str | None:
    if not len(model.graph.node):
        return None
    n = rng.choice(model.graph.node)
    if len(n.input) and rng.random() < 0.5:
        del n.input[-1]
        return f"{n.op_type} input removed"
    n.input.append(rng.choice([n.input[0] if len(n.input) else "", ""]))
    return f"{n.op_type} extra input"


def cycle(rng: random.Random, model: onnx.ModelProto) -> str | None:
    """A node reads its own output or a later node's."""
    nodes = model.graph.node
    candidates = [i for i, n in enumerate(nodes) if len(n.input)]
    if not candidates:
        return None
    i = rng.choice(candidates)
    j = rng.randrange(i, len(nodes))
    if not len(nodes[j].output):
        return None
    nodes[i].input[0] = nodes[j].output[0]
    return f"cycle {nodes[i].op_type} <- {nodes[j].op_type}"


def reverse_nodes(rng: random.Random, model: onnx.ModelProto) -> str | None:
    nodes = list(model.graph.node)
    if len(nodes) < 2:
        return None
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    return "nodes reversed"


def extra_graph_input(rng: random.Random, model: onnx.ModelProto) -> str | None:
    name = rng.choice(["unused", *WEIRD_NAMES, *(i.name for i in model.graph.input)])
    shape = rng.choice([[2], [], None, [0], [2**31]])
    model.graph.input.append(helper.make_tensor_value_info(name, rng.choice(ELEMENT_TYPES), shape))
    return f"graph input {name[:20]!r} added"


def duplicate_output(rng: random.Random, model: onnx.ModelProto) -> str | None:
    outs = model.graph.output
    if not len(outs):
        return None
    if rng.random() < 0.3:
        del outs[:]
        return "no graph outputs"
    outs.append(rng.choice(outs))
    return "graph output duplicated"


def rename_value(rng: random.Random, model: onnx.ModelProto) -> str | None:
    """A graph input, output or edge renamed everywhere to an unusual name."""
    names = [v.name for v in (*model.graph.input, *model.graph.output)]
    names += [o for n in model.graph.node for o in n.output]
    if not names:
        return None
    old, new = rng.choice(names), rng.choice(WEIRD_NAMES)
    for v in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        if v.name == old:
            v.name = new
    for t in model.graph.initializer:
        if t.name == old:
            t.name = new
    for n in model.graph.node:
        n.input[:] = [new if x == old else x for x in n.input]
        n.output[:] = [new if x == old else x for x in n.output]
    return f"{old!r} renamed {new[:20]!r}"


def op_type(rng: random.Random, model: onnx.ModelProto) -> str | None:
    if not len(model.graph.node):
        return None
    n = rng.choice(model.graph.node)
    what = rng.random()
    if what < 0.4:
        n.op_type = rng.choice(["Bogus", n.op_type.lower(), "", "If", "Loop", "Gather", "Conv"])
        return f"op_type {n.op_type!r}"
    n.domain = rng.choice(["com.microsoft", "ai.onnx.ml", "bogus", "ai.onnx"])
    return f"domain {n.domain!r}"


def opset(rng: random.Random, model: onnx.ModelProto) -> str | None:
    what = rng.random()
    if what < 0.15:
        del model.opset_import[:]
        return "no opset_import"
    if what < 0.3:
        model.opset_import.append(helper.make_opsetid(rng.choice(["", "ai.onnx.ml", "x"]), 1))
        return "second opset_import"
    if not len(model.opset_import):
        model.opset_import.append(helper.make_opsetid("", 17))
    model.opset_import[0].version = rng.choice(OPSETS)
    return f"opset {model.opset_import[0].version}"


def ir_version(rng: random.Random, model: onnx.ModelProto) -> str | None:
    model.ir_version = rng.choice(IR_VERSIONS)
    return f"ir_version {model.ir_version}"


def _initializer(rng: random.Random, model: onnx.ModelProto) -> TensorProto | None:
    inits = model.graph.initializer
    return rng.choice(inits) if len(inits) else None


def init_data_type(rng: random.Random, model: onnx.ModelProto) -> str | None:
    t = _initializer(rng, model)
    if t is None:
        return None
    t.data_type = rng.choice(ELEMENT_TYPES)
    return f"initializer data_type {t.data_type}"


def init_raw_data(rng: random.Random, model: onnx.ModelProto) -> str | None:
    t = _initializer(rng, model)
    if t is None:
        return None
    if not t.HasField("raw_data"):
        return None
    what = rng.random()
    if what < 0.4:
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data) + 1)]
        return f"raw_data truncated to {len(t.raw_data)}"
    if what < 0.7:
        t.raw_data = t.raw_data + bytes(rng.choice([1, 3, 4, 1024]))
        return f"raw_data extended to {len(t.raw_data)}"
    t.float_data.extend([1.0, 2.0])  # raw_data and a typed field both set
    return "raw_data and float_data"


def init_dims(rng: random.Random, model: onnx.ModelProto) -> str | None:
    t = _initializer(rng, model)
    if t is None:
        return None
    if len(t.dims) and rng.random() < 0.7:
        t.dims[rng.randrange(len(t.dims))] = rng.choice(DIMS)
    else:
        t.dims.append(rng.choice(DIMS))
    return f"initializer dims {list(t.dims)}"


def external_data(rng: random.Random, model: onnx.ModelProto) -> str | None:
    t = _initializer(rng, model)
    if t is None:
        return None
    size = len(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    location = rng.choice(EXTERNAL_LOCATIONS)
    entries = {"location": location}
    if rng.random() < 0.5:
        entries["offset"] = str(rng.choice([0, 8, -1, 2**40, 63]))
    if rng.random() < 0.6:
        entries["length"] = str(rng.choice([size, 0, -1, 2**40, 64]))
    del t.external_data[:]
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return f"external data {entries}"


def duplicate_initializer(rng: random.Random, model: onnx.ModelProto) -> str | None:
    t = _initializer(rng, model)
    if t is None:
        return None
    if rng.random() < 0.5:
        model.graph.initializer.append(t)
        return "initializer duplicated"
    model.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return "initializer also a graph input"


MUTATIONS: dict[str, Mutation] = {
    "elem-type": elem_type,
    "dim": dim,
    "attr-remove": attr_remove,
    "attr-duplicate": attr_duplicate,
    "attr-wrong-type": attr_wrong_type,
    "attr-value": attr_value,
    "attr-unknown": attr_unknown,
    "drop-node": drop_node,
    "duplicate-node": duplicate_node,
    "dangling-input": dangling_input,
    "extra-node-input": extra_node_input,
    "cycle": cycle,
    "reverse-nodes": reverse_nodes,
    "extra-graph-input": extra_graph_input,
    "duplicate-output": duplicate_output,
    "rename-value": rename_value,
    "op-type": op_type,
    "opset": opset,
    "ir-version": ir_version,
    "init-data-type": init_data_type,
    "init-raw-data": init_raw_data,
    "init-dims": init_dims,
    "external-data": external_data,
    "duplicate-initializer": duplicate_initializer,
}


def mutate(rng: random.Random, model: onnx.ModelProto, max_mutations: int = 3) -> list[str]:
    """Apply 1 to `max_mutations` random mutations to `model`; returns their descriptions."""
    names = list(MUTATIONS)
    applied: list[str] = []
    count = 1 + sum(rng.random() < 0.35 for _ in range(max_mutations - 1))
    for _ in range(count * 4):
        if len(applied) == count:
            break
        name = rng.choice(names)
        try:
            what = MUTATIONS[name](rng, model)
        except (ValueError, TypeError):  # protobuf refused the value: try another one
            continue
        if what is not None:
            applied.append(f"{name}: {what}")
    return applied
