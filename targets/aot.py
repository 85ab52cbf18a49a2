"""Ahead-of-time compilation: a model as a shared library plus a C header, and back.

    model = mlc.compile("examples/mlp.onnx")
    export_library(model, "mlp.so")     # mlp.so + mlp.h: void mlp_run(const float *x, float *y)
    again = load("mlp.so")              # mlc.load: the same call and input checks as `model`
    export_object(model, "mlp.o", triple="aarch64-unknown-linux-gnu")   # cross: an object

The C ABI (written into every header): `void <prefix>_run(const T *in0, ..., T *out0, ...)`,
one pointer per input then one per output, each to a dense row-major buffer of the declared
shape and element type, 64-byte aligned, no two overlapping. `<prefix>` is a C identifier
made from the file name (`mlp.so`, `libmlp.so` -> `mlp`) unless given. Every other symbol is
internal, except

- `mlc_signature`: a NUL-terminated JSON string (entry symbol, input / output names, dtypes
  and shapes) from which `load` rebuilds the Python wrapper (json only: no pickle, no eval);
- `<prefix>_set_num_threads` / `<prefix>_get_num_threads`, when the module has the
  `mlc_num_threads` global (threads for parallel loops; 0 = the OpenMP default).
- `int64_t <prefix>_status`, when the model has run-time checks (`tl.check`: gather indices
  in range, ...): nonzero after a call whose inputs failed one (k: the k-th message of the
  signature's `checks`), whose outputs are then meaningless; clear it before a call. It is
  the library's, not the call's: serialize calls (`load` does).

The object is the JIT's IR (`CompiledModel.llvm_ir_unoptimized`) put through the same O3
pipeline, position independent, linked by the system C compiler (`cc`, or `$CC`) with
`-lm` and, when the IR calls OpenMP, libgomp.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ml_dtypes
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir

from mlc.lowering.llvm_vector_math import LIBMVEC
from mlc.lowering.tl_to_llvm import ALIGNMENT
from mlc.targets.compiled import BufferSpec, NativeFunction
from mlc.targets.cpu import TargetError, emit_object, host_features, is_host_triple

__all__ = [
    "AotError",
    "ExportedLibrary",
    "LoadedModel",
    "SIGNATURE_SYMBOL",
    "c_header",
    "export_library",
    "export_object",
    "load",
]

#: the exported JSON signature every mlc library carries
SIGNATURE_SYMBOL = "mlc_signature"
SIGNATURE_FORMAT = "mlc-library"
SIGNATURE_VERSION = 1
#: the module-level thread-count global the generated code may read
NUM_THREADS_GLOBAL = "mlc_num_threads"
#: the run-time check status word (`lowering.tl_check_to_llvm`)
STATUS_GLOBAL = "mlc_status"

#: numpy dtype name -> C element type in headers (16-bit floats as raw bits)
C_TYPES: dict[str, str] = {
    "float32": "float",
    "float64": "double",
    "float16": "uint16_t",
    "bfloat16": "uint16_t",
    "bool": "bool",
    "int8": "int8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "int64": "int64_t",
    "uint8": "uint8_t",
    "uint16": "uint16_t",
    "uint32": "uint32_t",
    "uint64": "uint64_t",
}

_C_KEYWORDS = frozenset(
    "auto bool break case char const continue default do double else enum extern float for "
    "goto if inline int long register restrict return short signed sizeof static struct "
    "switch typedef union unsigned void volatile while class new delete this template "
    "typename namespace operator private public protected virtual friend".split()
)


class AotError(Exception):
    """Exporting or loading a library failed (one line, for users)."""


class _Exportable(Protocol):
    name: str
    inputs: list[BufferSpec]
    outputs: list[BufferSpec]
    llvm_ir_unoptimized: str
    check_messages: list[str]


@dataclass(frozen=True)
class ExportedLibrary:
    """What `export_library` / `export_object` wrote."""

    #: the shared library (or object file)
    path: Path
    #: the C header
    header: Path | None
    #: the C symbol of the entry function
    entry: str
    #: the JSON signature embedded as `mlc_signature`
    signature: dict[str, Any]


def _dtype(name: str) -> np.dtype:
    if name not in C_TYPES:
        raise ValueError(f"unsupported dtype '{name}'")
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def c_identifier(text: str, fallback: str) -> str:
    """`text` as a C identifier (other characters become `_`), or `fallback` if empty."""
    ident = re.sub(r"\W+", "_", text, flags=re.ASCII).strip("_")
    if not ident:
        return fallback
    if ident[0].isdigit() or ident in _C_KEYWORDS:
        ident = f"{fallback}_{ident}"
    return ident


def default_prefix(path: str | os.PathLike[str]) -> str:
    """The symbol prefix for a library file: its name without suffix and `lib`."""
    stem = Path(path).name.split(".")[0]
    if stem.startswith("lib") and len(stem) > 3:
        stem = stem[3:]
    return c_identifier(stem, "mlc")


def _buffer_json(spec: BufferSpec) -> dict[str, Any]:
    return {"name": spec.name, "dtype": spec.dtype.name, "shape": list(spec.shape)}


def _signature(
    model: _Exportable, prefix: str, threads: bool, checks: bool, triple: str, cpu: str
) -> dict[str, Any]:
    from mlc import __version__

    return {
        "format": SIGNATURE_FORMAT,
        "version": SIGNATURE_VERSION,
        "mlc_version": __version__,
        "entry": f"{prefix}_run",
        "function": model.name,
        "alignment": ALIGNMENT,
        "inputs": [_buffer_json(s) for s in model.inputs],
        "outputs": [_buffer_json(s) for s in model.outputs],
        "num_threads": (
            {"set": f"{prefix}_set_num_threads", "get": f"{prefix}_get_num_threads"}
            if threads
            else None
        ),
        "checks": (
            {"status": f"{prefix}_status", "messages": list(model.check_messages)}
            if checks
            else None
        ),
        "triple": triple,
        "cpu": cpu,
    }


def _library_ir(model: _Exportable, prefix: str, triple: str, cpu: str) -> tuple[str, dict]:
    """The module with the entry renamed `<prefix>_run`, the signature and thread accessors
    added, and everything else internal."""
    if not model.llvm_ir_unoptimized:
        raise AotError("the model has no LLVM IR to export; build it with mlc.compile")
    try:
        ref = llvm.parse_assembly(model.llvm_ir_unoptimized)
        entry = ref.get_function(model.name)
    except (RuntimeError, NameError) as e:
        raise AotError(f"cannot export @{model.name}: {str(e).strip()}") from None
    # (get_global_variable does not see internal globals)
    threads_var = next((g for g in ref.global_variables if g.name == NUM_THREADS_GLOBAL), None)
    status_var = next((g for g in ref.global_variables if g.name == STATUS_GLOBAL), None)
    signature = _signature(
        model, prefix, threads_var is not None, status_var is not None, triple, cpu
    )
    extra = ir.Module()
    extra.triple, extra.data_layout = ref.triple, ref.data_layout
    text = json.dumps(signature, sort_keys=True).encode() + b"\0"
    sig_type = ir.ArrayType(ir.IntType(8), len(text))
    sig = ir.GlobalVariable(extra, sig_type, SIGNATURE_SYMBOL)
    sig.global_constant = True
    sig.initializer = ir.Constant(sig_type, bytearray(text))
    exported = {signature["entry"], SIGNATURE_SYMBOL}
    if threads_var is not None:
        value_type = str(threads_var.global_value_type)
        if value_type != "i32":
            raise AotError(f"@{NUM_THREADS_GLOBAL} is {value_type}, expected i32")
        count = ir.GlobalVariable(extra, ir.IntType(32), NUM_THREADS_GLOBAL)
        if threads_var.is_declaration:  # only declared (for a runtime to define): define it
            count.initializer = ir.Constant(ir.IntType(32), 0)
        else:
            count.linkage = "external"
        setter = ir.Function(
            extra, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]), f"{prefix}_set_num_threads"
        )
        b = ir.IRBuilder(setter.append_basic_block())
        b.store(setter.args[0], count)
        b.ret_void()
        getter = ir.Function(
            extra, ir.FunctionType(ir.IntType(32), []), f"{prefix}_get_num_threads"
        )
        b = ir.IRBuilder(getter.append_basic_block())
        b.ret(b.load(count))
        exported |= {setter.name, getter.name}
        if not threads_var.is_declaration:
            threads_var.linkage = "external"  # so that the accessors resolve to it
    if status_var is not None:  # the run-time check status word, under the library's prefix
        status_var.name = signature["checks"]["status"]
        if status_var.name != signature["checks"]["status"]:
            raise AotError(f"cannot name the status word {signature['checks']['status']}")
        exported.add(status_var.name)
    ref.link_in(llvm.parse_assembly(str(extra)))
    entry.name = signature["entry"]
    if entry.name != signature["entry"]:
        raise AotError(f"cannot name the entry function {signature['entry']}: the name is taken")
    for value in (*ref.functions, *ref.global_variables):
        if not value.is_declaration and value.name not in exported:
            value.linkage = "internal"
    return str(ref), signature


def c_header(signature: dict[str, Any], library: str = "") -> str:
    """The C header for a library with `signature` (the embedded JSON)."""
    entry: str = signature["entry"]
    prefix = entry.removesuffix("_run")
    macro = prefix.upper()
    taken: set[str] = set()

    def param(name: str, fallback: str) -> str:
        ident = c_identifier(name, fallback)
        if ident in taken:
            ident = f"{ident}_{fallback}"
        taken.add(ident)
        return ident

    inputs = [(b, param(b["name"], f"in{i}"), f"IN{i}") for i, b in enumerate(signature["inputs"])]
    outputs = [
        (b, param(b["name"], f"out{i}"), f"OUT{i}") for i, b in enumerate(signature["outputs"])
    ]
    params = [f"const {C_TYPES[b['dtype']]} *{p}" for b, p, _ in inputs]
    params += [f"{C_TYPES[b['dtype']]} *{p}" for b, p, _ in outputs]
    proto = f"void {entry}({', '.join(params) or 'void'})"
    width = max([len(p) for _, p, _ in (*inputs, *outputs)] + [1])

    rows = [*inputs, *outputs]
    types = {m: f"{b['dtype']}{b['shape']}" for b, _, m in rows}
    type_width = max([len(t) for t in types.values()] + [1])

    def described(group: list[tuple[dict[str, Any], str, str]]) -> list[str]:
        return [
            f" *   {p:<{width}}  {types[m]:<{type_width}}  macros {macro}_{m}_*"
            + (f', ONNX name "{b["name"]}"' if b["name"] and b["name"] != p else "")
            for b, p, m in group
        ]

    lines = [
        f"/* {Path(library).name or prefix}: generated by mlc {signature['mlc_version']}; "
        "do not edit.",
        " *",
        f" * {proto};",
        " *",
        " * Inputs (read only):",
        *(described(inputs) or [" *   none"]),
        " * Outputs (every element is written):",
        *(described(outputs) or [" *   none"]),
        " *",
        " * ABI:",
        " * - one pointer per input, then one per output, each to a dense row-major (C order)",
        " *   buffer of exactly the shape and element type above;",
        f" * - every pointer is {signature['alignment']}-byte aligned ({macro}_ALIGNMENT), e.g. "
        f"aligned_alloc({signature['alignment']}, n)",
        f" *   with n rounded up to a multiple of {signature['alignment']};",
        " * - no two buffers overlap (pass a copy to use one array as two inputs);",
        " * - intermediates are aligned_alloc-ed and freed before returning: no state is kept",
        " *   between calls; the weights are constants inside the library;",
        " * - bool is one byte (0 or 1); float16 and bfloat16 are raw 16-bit patterns;",
        f" * - compiled for {signature['triple']}"
        + (f", CPU {signature['cpu']} and its features" if signature["cpu"] else "")
        + ": run it on such a CPU.",
        " */",
        f"#ifndef MLC_{macro}_H",
        f"#define MLC_{macro}_H",
        "",
        "#include <stdbool.h>",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"#define {macro}_NUM_INPUTS {len(inputs)}",
        f"#define {macro}_NUM_OUTPUTS {len(outputs)}",
        f"#define {macro}_ALIGNMENT {signature['alignment']}",
    ]
    for b, _, m in (*inputs, *outputs):
        size = int(np.prod(b["shape"], dtype=np.int64))
        nbytes = size * _dtype(b["dtype"]).itemsize
        lines.append(f"#define {macro}_{m}_RANK {len(b['shape'])}")
        lines.append(f"#define {macro}_{m}_SIZE {size} /* elements */")
        lines.append(f"#define {macro}_{m}_BYTES {nbytes}")
        if b["shape"]:
            lines.append(f"#define {macro}_{m}_SHAPE {{{', '.join(map(str, b['shape']))}}}")
    lines += ["", f"{proto};"]
    threads = signature.get("num_threads")
    if threads:
        lines += [
            "",
            "/* Threads for parallel loops (OpenMP); 0, the default, means the OpenMP default",
            " * (OMP_NUM_THREADS, else one per core). Set it between calls, not during one. */",
            f"void {threads['set']}(int32_t n);",
            f"int32_t {threads['get']}(void);",
        ]
    checks = signature.get("checks")
    if checks:
        lines += [
            "",
            "/* Run-time checks on input values: set to 0 before a call; nonzero after it when",
            " * the inputs failed check k (the outputs are then meaningless):",
            *(f" *   {k}: {m.replace('*/', '* /')}" for k, m in enumerate(checks["messages"], 1)),
            " * One word for the library: serialize calls that read it. */",
            f"extern int64_t {checks['status']};",
        ]
    lines += [
        "",
        "/* NUL-terminated JSON: entry, inputs and outputs (name, dtype, shape); read by",
        " * mlc.load. */",
        f"extern const char {SIGNATURE_SYMBOL}[];",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* MLC_{macro}_H */",
        "",
    ]
    return "\n".join(lines)


def _target_cpu(triple: str | None, cpu: str | None) -> str:
    if cpu is not None:
        return cpu
    return host_features().cpu if is_host_triple(triple) else ""


def _emit(
    model: _Exportable,
    prefix: str,
    triple: str | None,
    cpu: str | None,
    features: str | None,
    opt: int,
) -> tuple[bytes, dict[str, Any], list[str]]:
    """The object file, the signature and the libraries it needs besides libm."""
    target_triple = triple or llvm.get_default_triple()
    text, signature = _library_ir(model, prefix, target_triple, _target_cpu(triple, cpu))
    try:
        obj = emit_object(text, triple=triple, cpu=cpu, features=features, opt=opt)
    except TargetError as e:
        raise AotError(str(e)) from None
    needs = []
    if re.search(r'@"?(GOMP_|omp_)', text) is not None:
        needs.append("gomp")
    if re.search(r'@"?_ZGV', text) is not None:  # lowering.llvm_vector_math
        needs.append("mvec")
    return obj, signature, needs


def export_object(
    model: _Exportable,
    path: str | os.PathLike[str],
    *,
    prefix: str | None = None,
    triple: str | None = None,
    cpu: str | None = None,
    features: str | None = None,
    opt: int = 3,
    header: bool = True,
) -> ExportedLibrary:
    """Write `model` as an object file `path` (any target LLVM has: `triple`, `cpu`,
    `features`; default the host) and its C header (`path` with suffix `.h`). Link it into
    a shared library yourself: `cc -shared -o m.so m.o -lm` (plus `-lgomp` if it uses
    OpenMP, `-lmvec` if it calls glibc's vector math: `lowering.llvm_vector_math`)."""
    path = Path(path)
    prefix = prefix or default_prefix(path)
    obj, signature, _ = _emit(model, prefix, triple, cpu, features, opt)
    _write_atomic(path, obj)
    h = _write_header(path, signature) if header else None
    return ExportedLibrary(path, h, signature["entry"], signature)


def export_library(
    model: _Exportable,
    path: str | os.PathLike[str],
    *,
    prefix: str | None = None,
    cpu: str | None = None,
    features: str | None = None,
    opt: int = 3,
    header: bool = True,
) -> ExportedLibrary:
    """Write `model` as a shared library `path` for this machine (`cpu`: default the host
    CPU with all its features; e.g. "x86-64-v3" for a portable library) and its C header
    (`path` with suffix `.h`). Needs a C compiler (`cc`, or `$CC`) to link."""
    path = Path(path)
    prefix = prefix or default_prefix(path)
    compiler = _c_compiler()
    obj, signature, needs = _emit(model, prefix, None, cpu, features, opt)
    libs = ["-lm", *(_openmp_link_flags(compiler) if "gomp" in needs else [])]
    if "mvec" in needs:
        libs.append(f"-l:{LIBMVEC}")
    with tempfile.TemporaryDirectory(prefix="mlc-export-") as tmp:
        obj_path = Path(tmp) / f"{prefix}.o"
        obj_path.write_bytes(obj)
        out = path.parent / f".{path.name}.{os.getpid()}.tmp"
        checks = []
        if sys.platform.startswith("linux"):  # no undefined symbols; found by file name
            checks = ["-Wl,-z,defs", f"-Wl,-soname,{path.name}"]
        cmd = [*compiler, "-shared", "-o", str(out), str(obj_path), *checks, *libs]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            out.unlink(missing_ok=True)
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()] or ["no output"]
            detail = next((ln for ln in lines if "error" in ln.lower()), lines[0])
            raise AotError(f"linking {path} with {compiler[0]} failed: {detail.strip()}")
        os.replace(out, path)  # a new inode: a copy already loaded in a process stays intact
    h = _write_header(path, signature) if header else None
    return ExportedLibrary(path, h, signature["entry"], signature)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_header(path: Path, signature: dict[str, Any]) -> Path:
    h = path.with_suffix(".h")
    h.write_text(c_header(signature, path.name))
    return h


def _c_compiler() -> list[str]:
    compiler = shlex.split(os.environ.get("CC") or "cc")
    if not compiler or shutil.which(compiler[0]) is None:
        raise AotError(
            f"no C compiler to link with: '{compiler[0] if compiler else ''}' is not on PATH "
            "(set CC, or write an object file, NAME.o, and link it yourself)"
        )
    return compiler


def _openmp_link_flags(compiler: list[str]) -> list[str]:
    """How to link libgomp: `-lgomp` with the development symlink, else the runtime."""
    for name in ("libgomp.so", "libgomp.so.1"):
        try:
            found = subprocess.run(
                [*compiler, f"-print-file-name={name}"], capture_output=True, text=True
            ).stdout.strip()
        except OSError:
            break
        if os.path.isabs(found) and os.path.exists(found):
            return ["-lgomp"] if name == "libgomp.so" else [found]
    runtime = ctypes.util.find_library("gomp")
    if runtime is None:
        raise AotError("the model uses OpenMP but libgomp was not found; install libgomp")
    return [f"-l:{runtime}"]


class LoadedModel(NativeFunction):
    """A model exported by mlc, loaded from its shared library: called like the
    `CompiledModel` it came from (numpy in, numpy out, inputs checked first)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AotError(f"{self.path}: no such file")
        try:
            self._lib = ctypes.CDLL(str(self.path.resolve()))
        except OSError as e:
            raise AotError(f"{self.path}: cannot load it as a shared library ({e})") from None
        try:
            raw = ctypes.c_char.in_dll(self._lib, SIGNATURE_SYMBOL)
        except ValueError:
            raise AotError(
                f"{self.path}: not a library exported by mlc (no {SIGNATURE_SYMBOL} symbol)"
            ) from None
        self.signature = _parse_signature(ctypes.string_at(ctypes.addressof(raw)), self.path)
        self.entry: str = self.signature["entry"]
        try:
            address = ctypes.cast(self._lib[self.entry], ctypes.c_void_p).value
        except AttributeError:
            raise AotError(f"{self.path}: the entry function {self.entry} is missing") from None
        assert address is not None
        inputs = [_spec(b) for b in self.signature["inputs"]]
        outputs = [_spec(b) for b in self.signature["outputs"]]
        super().__init__(self.entry, inputs, outputs, address)
        threads = self.signature.get("num_threads")
        if threads:
            setter = self._lib[threads["set"]]
            setter.restype, setter.argtypes = None, [ctypes.c_int32]
            self._init_threads(lambda n: setter(int(n)))
        checks = self.signature.get("checks")
        if checks:
            try:
                status = ctypes.c_int64.in_dll(self._lib, checks["status"])
            except ValueError:
                raise AotError(
                    f"{self.path}: the status word {checks['status']} is missing"
                ) from None
            self._init_status(status, checks["messages"])

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        return f"<LoadedModel {self.path.name}: {self.entry}({ins}) -> ({outs})>"


def _spec(buffer: dict[str, Any]) -> BufferSpec:
    return BufferSpec(tuple(buffer["shape"]), _dtype(buffer["dtype"]), buffer["name"])


def _parse_signature(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        signature = json.loads(raw.decode())
        if signature.get("format") != SIGNATURE_FORMAT:
            raise ValueError("not an mlc-library signature")
        if signature.get("version") != SIGNATURE_VERSION:
            raise ValueError(
                f"version {signature.get('version')}, this mlc reads {SIGNATURE_VERSION}"
            )
        if not isinstance(signature.get("entry"), str):
            raise ValueError("no entry symbol")
        for key in ("inputs", "outputs"):
            for b in signature[key]:
                if not isinstance(b.get("name"), str):
                    raise ValueError(f"a buffer in {key} has no name")
                _dtype(b["dtype"])
                if not all(isinstance(d, int) and d >= 0 for d in b["shape"]):
                    raise ValueError(f"bad shape {b['shape']}")
        checks = signature.get("checks")
        if checks is not None and (
            not isinstance(checks.get("status"), str)
            or not isinstance(checks.get("messages"), list)
            or not all(isinstance(m, str) for m in checks["messages"])
        ):
            raise ValueError("bad run-time check table")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise AotError(f"{path}: invalid {SIGNATURE_SYMBOL}: {e}") from None
    return signature


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a shared library written by `export_library` / `CompiledModel.export`."""
    return LoadedModel(path)
