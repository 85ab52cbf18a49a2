"""ONNX -> graph dialect: `import_onnx(model) -> ModuleOp` holding `func.func @main`.

Shapes are static: graph inputs must have static shapes (or be given them through
`input_shapes`); values computed only from constants (Shape, ConstantOfShape, shape
arithmetic) are folded at import time with the graph ops' reference semantics.

Errors are collected over the whole model: one `OnnxImportError` lists every node that
cannot be imported, with its name, op type, opset and the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from mlc.dialects.graph.elementwise import ConstantOp
from mlc.dialects.graph.types import (
    UnsupportedTypeError,
    element_type_from_onnx,
    numpy_dtype,
    tensor,
)
from mlc.interpreters.graph import evaluate, has_reference
from mlc.parser.onnx.control_flow import unroll_if, unroll_scan
from mlc.parser.onnx.errors import DynamicShapeError, OnnxImportError
from mlc.parser.onnx.external import load_external_data
from mlc.parser.onnx.functions import (
    Expansion,
    FunctionBodyError,
    expand,
    has_function_body,
    type_proto,
)
from mlc.parser.onnx.node import (
    CONVERTERS,
    FOLD_LIMIT_ELEMENTS,
    ML_CONVERTERS,
    ML_DOMAIN,
    NodeContext,
    Unsupported,
)
from mlc.parser.onnx.validate import (
    ONNX_DOMAINS,
    check_structure,
    checker_input,
    dims_problem,
    output_mismatch,
    reshapes_inputs,
    run_onnx_checker,
)


@dataclass
class ImportProblem:
    node: str
    op_type: str
    opset: int
    reason: str

    def __str__(self) -> str:
        return f"  node '{self.node}' ({self.op_type}, opset {self.opset}): {self.reason}"


ModelSource = str | os.PathLike[str] | bytes | onnx.ModelProto


def load_model(
    model: ModelSource, base_dir: str | os.PathLike[str] | None = None
) -> onnx.ModelProto:
    """Load a model from a path, serialized bytes or a ModelProto; one-line errors.

    External data is read from under `base_dir`, by default the model file's directory
    (a model given as bytes or a ModelProto with external data needs `base_dir`)."""
    proto = _parse(model)
    return load_external_data(proto, _data_dir(model, base_dir), _given_as(model))


def _data_dir(
    model: ModelSource, base_dir: str | os.PathLike[str] | None
) -> str | os.PathLike[str] | None:
    """Where external data is read from: `base_dir`, else a model file's own directory."""
    if base_dir is not None or not isinstance(model, str | os.PathLike):
        return base_dir
    return os.path.dirname(os.path.abspath(os.fspath(model)))


def _given_as(model: ModelSource) -> str:
    if isinstance(model, bytes):
        return "bytes"
    return "a ModelProto" if isinstance(model, onnx.ModelProto) else "a path"


def _parse(model: ModelSource) -> onnx.ModelProto:
    """The model's proto, external data not loaded."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes):
        try:
            return onnx.load_from_string(model)
        except DecodeError as e:
            raise OnnxImportError(f"not a valid ONNX model: {e}") from None
    path = os.fspath(model)
    if not os.path.exists(path):
        raise OnnxImportError(f"{path}: no such file")
    try:
        proto = onnx.load(path, load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as e:
        raise OnnxImportError(
            f"{path}: not a valid ONNX model ({str(e).splitlines()[0]})"
        ) from None
    if not proto.graph.node and not proto.graph.output:
        raise OnnxImportError(f"{path}: not a valid ONNX model (no graph)")
    return proto


def default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ONNX_DOMAINS:
            return int(imp.version)
    return 1


KEEP_UNFOLDED = frozenset({"DequantizeLinear"})
"""ONNX ops never folded at import even when every input is constant: a dequantized
weight stays `dequantize_linear(q, scale, zero_point)` so `graph-fold-qdq` can give its
8-bit codes to an integer kernel (`fold-constants` folds the ones left over)."""


def _sanitize(name: str) -> str:
    """An xDSL SSA name hint for an ONNX name (the ONNX name itself stays in `mlc.name`).

    xDSL drops a `_<digits>` suffix from every hint it is given: a name made of such
    suffixes only (`_0`, `%0` -> `_0`) would become empty, so it gets a prefix too."""
    cleaned = re.sub(r"[^A-Za-z0-9_$.]", "_", name)
    if not cleaned or cleaned[0].isdigit() or re.fullmatch(r"(_[0-9]+)+", cleaned):
        return f"v{cleaned}"
    return cleaned


class _Importer:
    def __init__(
        self,
        model: onnx.ModelProto,
        input_shapes: Mapping[str, Sequence[int]],
        input_values: Mapping[str, np.ndarray],
    ):
        self.model = model
        self.opset = default_opset(model)
        self.ml_opset = next(
            (int(i.version) for i in model.opset_import if i.domain == ML_DOMAIN), 1
        )
        self.input_shapes = input_shapes
        self.input_values = input_values
        self.values: dict[str, SSAValue] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.poisoned: set[str] = set()
        self.problems: list[ImportProblem] = []
        #: how many of the problems are graph inputs with dynamic dimensions
        self.dynamic_inputs = 0
        self.block = Block()
        #: (node name, op type) of the node computing each value
        self.producers: dict[str, tuple[str, str]] = {}
        #: graph outputs declared with another type than the one computed
        self.mismatches: list[str] = []
        #: outputs holding indices into string labels (ONNX name -> the labels)
        self.string_labels: dict[str, list[str]] = {}
        #: ZipMap outputs (ONNX name -> the keys)
        self.zipmap_keys: dict[str, list[int] | list[str]] = {}
        #: an input was given a static shape other than its declared one: the declared
        #: output shapes need not hold
        self.reshaped = reshapes_inputs(model.graph.input, input_shapes, input_values)

    # ------------------------------------------------------------------ entry
    def run(self) -> ModuleOp:
        graph = self.model.graph
        for init in graph.initializer:
            self._add_initializer(init)
        for name, array in self.input_values.items():
            self._add_constant(name, np.asarray(array))
        arg_names = self._add_inputs(graph.input)
        for index, node in enumerate(graph.node):
            self._convert_node(node, index)
        results = self._outputs(graph.output)
        if self.problems:
            lines = "\n".join(str(p) for p in self.problems)
            error = (
                DynamicShapeError if self.dynamic_inputs == len(self.problems) else OnnxImportError
            )
            raise error(
                f"cannot import model: {len(self.problems)} unsupported node(s) or input(s):\n{lines}"
            )
        if self.mismatches:
            raise OnnxImportError(f"invalid model: {self.mismatches[0]}")
        self.block.add_op(func.ReturnOp(*results))
        _erase_dead_ops(self.block)
        arg_types = [a.type for a in self.block.args]
        function = func.FuncOp(
            "main",
            (arg_types, [r.type for r in results]),
            Region(self.block),
            arg_attrs=ArrayAttr(_name_attrs(arg_names)),
            res_attrs=ArrayAttr(_result_attrs(graph.output, self.string_labels, self.zipmap_keys)),
        )
        return ModuleOp([function])

    # ------------------------------------------------------------------ graph I/O
    def _add_initializer(self, init: onnx.TensorProto) -> None:
        try:
            array = numpy_helper.to_array(init)
            element_type_from_onnx(init.data_type)
        except (UnsupportedTypeError, ValueError, OSError) as e:
            self.problems.append(ImportProblem(init.name, "initializer", self.opset, str(e)))
            self.poisoned.add(init.name)
            return
        self._add_constant(init.name, array)

    def _add_constant(self, name: str, array: np.ndarray) -> None:
        op = ConstantOp.from_array(array)
        self.block.add_op(op)
        op.result.name_hint = _sanitize(name)
        self.values[name] = op.result
        self.constants[name] = array

    def _add_inputs(self, inputs: Sequence[onnx.ValueInfoProto]) -> list[str]:
        names: list[str] = []
        for info in inputs:
            if info.name in self.values or info.name in self.poisoned:
                continue  # an initializer listed as an input (IR version < 4)
            try:
                ty = self._input_type(info)
            except Unsupported as e:
                self.problems.append(ImportProblem(info.name, "graph input", self.opset, str(e)))
                self.poisoned.add(info.name)
                self.dynamic_inputs += isinstance(e, _DynamicDimension)
                continue
            arg = self.block.insert_arg(ty, len(self.block.args))
            arg.name_hint = _sanitize(info.name)
            self.values[info.name] = arg
            names.append(info.name)
        return names

    def _input_type(self, info: onnx.ValueInfoProto) -> TensorType:
        if not info.type.HasField("tensor_type"):
            raise Unsupported("only tensor inputs are supported")
        tt = info.type.tensor_type
        try:
            element = element_type_from_onnx(tt.elem_type)
        except UnsupportedTypeError as e:
            raise Unsupported(str(e)) from None
        if info.name in self.input_shapes:
            dims = [int(d) for d in self.input_shapes[info.name]]
        else:
            dims = _static_dims(tt)
        if (problem := dims_problem(dims)) is not None:
            raise Unsupported(problem)
        return tensor(dims, element)

    def _outputs(self, outputs: Sequence[onnx.ValueInfoProto]) -> list[SSAValue]:
        results: list[SSAValue] = []
        for info in outputs:
            if info.name in self.values:
                results.append(self.values[info.name])
                # string tensors become indices, ZipMap sequences a matrix
                if info.name not in self.string_labels and info.name not in self.zipmap_keys:
                    self._check_declared(info, self.values[info.name])
            elif info.name not in self.poisoned:
                self.problems.append(
                    ImportProblem(info.name, "graph output", self.opset, "output is never produced")
                )
        return results

    def _check_declared(self, info: onnx.ValueInfoProto, value: SSAValue) -> None:
        """A graph output's declared type must be the computed one (unknown dims aside)."""
        assert isinstance(value.type, TensorType)
        reason = output_mismatch(info, value.type, compare_rank=not self.reshaped)
        if reason is not None:
            producer = self.producers.get(info.name)
            where = f"node '{producer[0]}' ({producer[1]}): " if producer else ""
            self.mismatches.append(where + reason)

    # ------------------------------------------------------------------ nodes
    def _convert_node(self, node: onnx.NodeProto, index: int, opset: int | None = None) -> None:
        """Convert `node` (at `opset`: the model's, or a function body's)."""
        name = node.name or f"{node.op_type}_{index}"

        if opset is None:
            opset = self.ml_opset if node.domain == ML_DOMAIN else self.opset

        def fail(reason: str) -> None:
            self.problems.append(ImportProblem(name, node.op_type, opset, reason))
            self.poisoned.update(o for o in node.output if o)

        if node.domain == ML_DOMAIN:
            conv = ML_CONVERTERS.get(node.op_type)
        elif node.domain in ONNX_DOMAINS:
            conv = CONVERTERS.get(node.op_type)
        else:
            return fail(f"operator domain '{node.domain}' is not supported")
        unrolled = node.op_type in ("Scan", "If") and node.domain in ONNX_DOMAINS
        if (
            conv is None
            and not unrolled
            and not (node.domain in ONNX_DOMAINS and has_function_body(node, opset))
        ):
            return fail("unknown operator: mlc has no conversion for it")
        if any(i in self.poisoned for i in node.input if i):
            self.poisoned.update(o for o in node.output if o)
            return  # the producer's problem is already reported
        missing = [i for i in node.input if i and i not in self.values]
        if missing:
            return fail(f"input '{missing[0]}' is not defined before this node")
        if conv is None and unrolled:  # a Scan's body once per iteration; an If's branches
            try:
                if node.op_type == "Scan":
                    shapes = self._input_shapes(node)
                    expansion = unroll_scan(node, opset, shapes, f"{name}::")
                else:
                    condition = self.constants.get(node.input[0]) if node.input else None
                    expansion = unroll_if(node, opset, condition, f"{name}::")
            except FunctionBodyError as e:
                return fail(f"cannot inline: {e}")
            return self._convert_body(expansion, fail, "inlined, and its body's")
        if conv is None:  # converted through the operator's function body
            try:
                expansion = expand(node, opset, self._input_types(node), f"{name}::")
            except FunctionBodyError as e:
                return fail(f"no conversion of its own, and {e}")
            if expansion is None:
                return fail("unknown operator: mlc has no conversion for it")
            return self._convert_body(expansion, fail)
        for attr in node.attribute:
            if attr.ref_attr_name:
                return fail("attribute references are only valid inside functions")
        inputs = list(node.input)
        while inputs and not inputs[-1]:
            inputs.pop()
        ctx = NodeContext(
            node=node,
            opset=opset,
            values=[self.values[i] if i else None for i in inputs],
            constants=[self.constants.get(i) if i else None for i in inputs],
            block=self.block,
            string_labels=self.string_labels,
            zipmap_keys=self.zipmap_keys,
        )
        try:
            results = list(conv(ctx))
            for op in ctx.emitted:
                op.verify()
        except Unsupported as e:
            _erase(ctx.emitted)
            return fail(str(e))
        except (VerifyException, ValueError, TypeError) as e:
            _erase(ctx.emitted)
            return fail(f"invalid node: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        except Exception as e:  # a converter bug must not crash the import
            _erase(ctx.emitted)
            return fail(f"internal error in the {node.op_type} converter: {type(e).__name__}: {e}")
        outputs = [o for o in node.output]
        for i, out in enumerate(outputs):
            if not out:
                continue
            if i >= len(results) or results[i] is None:
                _erase(ctx.emitted)
                return fail(f"output #{i} ('{out}') is not supported")
            if (problem := _result_problem(results[i])) is not None:
                _erase(ctx.emitted)
                return fail(f"output #{i} ('{out}'): {problem}")
        if (
            ctx.num_inputs
            and node.op_type not in KEEP_UNFOLDED
            and all(ctx.is_constant(i) or not ctx.has_input(i) for i in range(ctx.num_inputs))
        ):
            results = self._fold(ctx, results)
        if node.op_type == "Identity" and node.output and node.output[0]:
            # converters name the outputs their labels / ZipMap keys belong to; an
            # Identity passes them on (skl2onnx renames classifier outputs with one)
            for marks in (self.string_labels, self.zipmap_keys):
                if inputs and inputs[0] in marks:
                    marks[node.output[0]] = marks[inputs[0]]  # type: ignore[assignment]
        for out, value in zip(outputs, results):
            if not out or value is None:
                continue
            self.values[out] = value
            self.producers[out] = (name, node.op_type)
            if value.owner is not None and isinstance(value.owner, ConstantOp):
                self.constants[out] = value.owner.to_array()
            if not value.name_hint:
                value.name_hint = _sanitize(out)

    def _input_shapes(self, node: onnx.NodeProto) -> list[list[int] | None]:
        """The static shape of each of `node`'s inputs (None where omitted)."""
        found: list[list[int] | None] = []
        for i in node.input:
            ty = self.values[i].type if i else None
            found.append(list(ty.get_shape()) if isinstance(ty, TensorType) else None)
        return found

    def _input_types(self, node: onnx.NodeProto) -> list[onnx.TypeProto | None]:
        """The ONNX type of each of `node`'s inputs (None where omitted or not a tensor)."""
        types: list[onnx.TypeProto | None] = []
        for i in node.input:
            ty = self.values[i].type if i else None
            if not isinstance(ty, TensorType):
                types.append(None)
                continue
            elem = onnx.helper.np_dtype_to_tensor_dtype(numpy_dtype(ty.element_type))
            types.append(type_proto(elem, ty.get_shape()))
        return types

    def _convert_body(
        self,
        expansion: Expansion,
        fail: Callable[[str], None],
        how: str = "converted through its ONNX function body, whose",
    ) -> None:
        """Convert a node's function body (`expand`) or unrolled Scan in its place. A
        problem inside it is reported as the node's, naming the body's node."""
        before = len(self.problems)
        for k, inner in enumerate(expansion.nodes):
            self._convert_node(inner, k, expansion.opset)
            if len(self.problems) > before:
                problem = self.problems.pop()
                del self.problems[before:]
                return fail(
                    f"{how} node '{problem.node}' ({problem.op_type}) is unsupported: "
                    f"{problem.reason}"
                )
        return None

    def _fold(self, ctx: NodeContext, results: list[SSAValue | None]) -> list[SSAValue | None]:
        """Replace the node's ops by constants when all its inputs are constants."""
        env: dict[SSAValue, np.ndarray] = {}
        for value, const in zip(ctx.values, ctx.constants):
            if value is not None and const is not None:
                env[value] = const
        for op in ctx.emitted:
            if not has_reference(op) or any(o not in env for o in op.operands):
                return results
            if sum(int(np.prod(r.type.get_shape())) for r in op.results) > FOLD_LIMIT_ELEMENTS:  # type: ignore[attr-defined]
                return results
            for res, array in zip(op.results, evaluate(op, [env[o] for o in op.operands])):
                env[res] = array
        if any(r is not None and r not in env for r in results):
            return results
        folded = [None if r is None else env[r] for r in results]
        _erase(ctx.emitted)
        return [None if a is None else ctx.emit_constant(a) for a in folded]


def _static_dims(tt: onnx.TypeProto.Tensor) -> list[int]:
    """A graph input's declared static shape; `Unsupported` if it has none."""
    if not tt.HasField("shape"):
        raise Unsupported("input has no shape; pass input_shapes={name: shape}")
    dims: list[int] = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value"):
            raise _DynamicDimension(
                f"dynamic dimension '{d.dim_param or '?'}'; pass input_shapes={{name: shape}}"
            )
        dims.append(int(d.dim_value))
    return dims


class _DynamicDimension(Unsupported):
    """A graph input's dimension that is not static (and not given a size)."""


def _result_problem(value: SSAValue | None) -> str | None:
    """Why a node's result type cannot be a tensor's (a huge shape), or None."""
    if value is None or not isinstance(value.type, TensorType):
        return None
    shape = list(value.type.get_shape())
    if any(d < 0 for d in shape):
        return None  # a dynamic dimension: no size to check
    return dims_problem(shape)


def _erase(ops: list[Operation]) -> None:
    for op in reversed(ops):
        if (block := op.parent_block()) is not None:
            block.erase_op(op, safe_erase=False)
    ops.clear()


def _erase_dead_ops(block: Block) -> None:
    """Drop ops whose results are unused (folded shape computations, unused weights)."""
    for op in reversed(list(block.ops)):
        if op.results and all(not r.uses for r in op.results) and not isinstance(op, func.ReturnOp):
            block.erase_op(op)


def _name_attrs(names: Sequence[str]) -> list[DictionaryAttr]:
    return [DictionaryAttr({"mlc.name": StringAttr(n)}) for n in names]


def _result_attrs(
    outputs: Sequence[onnx.ValueInfoProto],
    string_labels: Mapping[str, list[str]],
    zipmap_keys: Mapping[str, list[int] | list[str]],
) -> list[DictionaryAttr]:
    """`mlc.name` of each result; `mlc.labels` (the strings an index result stands for)
    where a classifier's string labels became indices; `mlc.zipmap` (the keys) where a
    ZipMap's sequence of maps is its probabilities matrix."""
    attrs: list[DictionaryAttr] = []
    for info in outputs:
        entries: dict[str, Attribute] = {"mlc.name": StringAttr(info.name)}
        if info.name in string_labels:
            entries["mlc.labels"] = ArrayAttr([StringAttr(s) for s in string_labels[info.name]])
        if info.name in zipmap_keys:
            entries["mlc.zipmap"] = ArrayAttr(
                [
                    StringAttr(k) if isinstance(k, str) else IntegerAttr(k, i64)
                    for k in zipmap_keys[info.name]
                ]
            )
        attrs.append(DictionaryAttr(entries))
    return attrs


def import_onnx(
    model: ModelSource,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, np.ndarray] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> ModuleOp:
    """Import an ONNX model as a module with one `func.func @main` of graph ops.

    `input_shapes` gives static shapes to inputs whose shapes are dynamic;
    `input_values` binds graph inputs to constants (they are no longer function
    arguments), for inputs that decide shapes (axes, target shapes, pads).
    `base_dir` is the directory of the model's external data files: by default a model
    file's own directory; required for a model given as bytes or a ModelProto that has
    external data. Files outside it are never read.
    The model is validated (mlc's own checks, then, once it imports, `onnx.checker`
    with strict shape inference). Raises `OnnxImportError`: a list of every unsupported
    node, or one line saying why the model is invalid.
    """
    proto = _parse(model)
    check_structure(proto)
    loaded = load_external_data(proto, _data_dir(model, base_dir), _given_as(model))
    module = _Importer(loaded, input_shapes or {}, input_values or {}).run()
    # after the import: a model mlc does not support keeps its list of unsupported nodes
    run_onnx_checker(checker_input(model, loaded, loaded is not proto, base_dir), loaded)
    module.verify()
    return module
