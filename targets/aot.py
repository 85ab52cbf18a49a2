"""Ahead-of-time compilation: a model as a shared library plus a C header, and back.

    model = mlc.compile("examples/mlp.onnx")
    export_library(model, "mlp.so")     # mlp.so + mlp.h: int64_t mlp_run(const float *x, float *y)
                                        # + mlp.so.mlc.json, its manifest (sha256, signature)
    again = load("mlp.so")              # mlc.load: checked against the manifest, then the
                                        # same call and input checks as `model`
    export_object(model, "mlp.o", triple="aarch64-unknown-linux-gnu")   # cross: an object

The C ABI (written into every header): `int64_t <prefix>_run(const T *in0, ..., T *out0, ...)`,
one pointer per input then one per output, each to a dense row-major buffer of the declared
shape and element type, 16-byte aligned, no two overlapping. `<prefix>` is a C identifier
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

The entry returns an `int64_t`: 0, or the number of a failure of that call (k: the k-th
message of `checks`; an allocation that failed: out of memory).

The object is the JIT's IR (`CompiledModel.llvm_ir_unoptimized`) put through the same O3
pipeline, position independent, linked by the system C compiler (`cc`, or `$CC`) with
`-lm` and, when the IR calls OpenMP, libgomp.

Integrity: next to every library `export_library` writes its manifest, `<library>.mlc.json`
(`mlp.so.mlc.json`; JSON: `format`, `version`, `library`, `size`, `sha256` of the library's
bytes, `signature`), atomically like the library; the header repeats the digest. `load`
checks, before `dlopen`: the manifest is there and valid, the library has the recorded size
and sha256 (one streamed read) and sane ELF headers (every segment and section inside the
file); after it, that the embedded `mlc_signature` equals the manifest's. A truncated,
corrupted, edited or swapped library is an `AotError`, never a crash. This guards against
accidents, not attackers: whoever can rewrite the library can rewrite its manifest too.
`load(path, verify=False)` loads a library without manifest (e.g. one linked by hand from
`export_object`): no digest check, the ELF check and, if a manifest is there, the
signature cross-check still run.

Between hash and dlopen: the library is opened once, hashed through that descriptor and,
on Linux, `dlopen`ed as `/proc/self/fd/N`: the inode that was hashed, even if the path is
replaced meanwhile. That descriptor stays open for the life of the process, like the
mapping (one per distinct library): glibc hands out an already loaded library again for the
same name, so a name must never point at another file; this also makes a library re-exported
to the same path load anew. The gap left: bytes written into that very inode between the
hash and the mapping (size and mtime are compared before and after; never rewrite a library
in place). Elsewhere the path is `dlopen`ed and its inode, size and mtime compared after.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ml_dtypes
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir

import mlc
from mlc.lowering.llvm_vector_math import LIBMVEC
from mlc.lowering.tl_check_to_llvm import STATUS_GLOBAL
from mlc.lowering.tl_parallel_to_llvm import NUM_THREADS_GLOBAL
from mlc.lowering.tl_to_llvm import ARGUMENT_ALIGNMENT
from mlc.targets.compiled import BufferSpec, NativeFunction, labels_from_json, labels_json
from mlc.targets.cpu import TargetError, emit_object, host_features, is_host_triple

__all__ = [
    "AotError",
    "ExportedLibrary",
    "LoadedModel",
    "MANIFEST_SUFFIX",
    "SIGNATURE_SYMBOL",
    "c_header",
    "export_library",
    "export_object",
    "load",
    "manifest_path",
]

#: the exported JSON signature every mlc library carries
SIGNATURE_SYMBOL = "mlc_signature"
SIGNATURE_FORMAT = "mlc-library"
SIGNATURE_VERSION = 2  # 2: the entry returns an int64_t status
#: a library's manifest is the library's path plus this (`mlp.so` -> `mlp.so.mlc.json`)
MANIFEST_SUFFIX = ".mlc.json"
MANIFEST_FORMAT = "mlc-library-manifest"
MANIFEST_VERSION = 1
_MANIFEST_MAX_BYTES = 16 << 20
_HASH_CHUNK = 1 << 20
#: platforms whose shared libraries are ELF files
_ELF_PLATFORM = sys.platform.startswith(("linux", "freebsd", "netbsd", "openbsd"))

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
    #: the manifest (`<library>.mlc.json`: digest + signature) of a shared library
    manifest: Path | None = None


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
    entry: dict[str, Any] = {"name": spec.name, "dtype": spec.dtype.name, "shape": list(spec.shape)}
    return entry | labels_json(spec.labels)  # strings an index stands for, ZipMap keys


def _signature(
    model: _Exportable, prefix: str, threads: bool, status: bool, triple: str, cpu: str
) -> dict[str, Any]:
    return {
        "format": SIGNATURE_FORMAT,
        "version": SIGNATURE_VERSION,
        "mlc_version": mlc.__version__,
        "entry": f"{prefix}_run",
        "function": model.name,
        "alignment": ARGUMENT_ALIGNMENT,
        "inputs": [_buffer_json(s) for s in model.inputs],
        "outputs": [_buffer_json(s) for s in model.outputs],
        "num_threads": (
            {"set": f"{prefix}_set_num_threads", "get": f"{prefix}_get_num_threads"}
            if threads
            else None
        ),
        "checks": (
            {
                "status": f"{prefix}_status" if status else None,
                "messages": list(model.check_messages),
            }
            if model.check_messages
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


def c_header(signature: dict[str, Any], library: str = "", sha256: str = "") -> str:
    """The C header for a library with `signature` (the embedded JSON) and, if given, the
    `sha256` of its bytes (as in its manifest)."""
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
    proto = f"int64_t {entry}({', '.join(params) or 'void'})"
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
        *(
            [
                f" * sha256 {sha256}",
                f" * (as in its manifest, {Path(library).name}{MANIFEST_SUFFIX}: checked by "
                "mlc.load).",
            ]
            if sha256
            else []
        ),
        " *",
        f" * {proto};",
        " *",
        " * Inputs (read only):",
        *(described(inputs) or [" *   none"]),
        " * Outputs (every element is written):",
        *(described(outputs) or [" *   none"]),
        " *",
        " * ABI:",
        " * - returns 0, or k > 0 when the call failed (failure k is listed below, e.g. out of",
        " *   memory): the outputs are then meaningless;",
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
            "/* Failures, by the number the entry returns or the status word holds:",
            *(f" *   {k}: {m.replace('*/', '* /')}" for k, m in enumerate(checks["messages"], 1)),
            " */",
        ]
    if checks and checks["status"]:
        lines += [
            "/* Run-time checks on input values (gather indices, ...): set to 0 before a call;",
            " * nonzero (a failure number above) after one whose inputs failed a check. One word",
            " * for the library: serialize calls that read it. */",
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
    CPU with all its features; e.g. "x86-64-v3" for a portable library), its manifest
    (`manifest_path(path)`: sha256 and signature, checked by `load`) and its C header
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
        digest, size = _sha256_path(out)  # the very bytes that go in place
        os.replace(out, path)  # a new inode: a copy already loaded in a process stays intact
    manifest = _write_manifest(path, digest, size, signature)
    h = _write_header(path, signature, digest) if header else None
    return ExportedLibrary(path, h, signature["entry"], signature, manifest)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_header(path: Path, signature: dict[str, Any], sha256: str = "") -> Path:
    h = path.with_suffix(".h")
    h.write_text(c_header(signature, path.name, sha256))
    return h


def manifest_path(library: str | os.PathLike[str]) -> Path:
    """Where the manifest of `library` is: `mlp.so` -> `mlp.so.mlc.json`."""
    library = Path(library)
    return library.with_name(library.name + MANIFEST_SUFFIX)


def _sha256_fd(fd: int) -> tuple[str, int]:
    """The sha256 (hex) of what `fd` holds, read once in chunks, and its byte count."""
    digest, size = hashlib.sha256(), 0
    while chunk := os.pread(fd, _HASH_CHUNK, size):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _sha256_path(path: Path) -> tuple[str, int]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return _sha256_fd(fd)
    finally:
        os.close(fd)


def _write_manifest(path: Path, sha256: str, size: int, signature: dict[str, Any]) -> Path:
    """Write the manifest of the library `path` (JSON, atomically)."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "library": path.name,
        "size": size,
        "sha256": sha256,
        "signature": signature,
    }
    out = manifest_path(path)
    _write_atomic(out, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return out


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
    """A model exported by mlc, loaded from its shared library once it matched its manifest
    (`verify=False`: none needed, no digest): called like the `CompiledModel` it came from
    (numpy in, numpy out, inputs checked first)."""

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AotError(f"{self.path}: no such file")
        self._lib, manifest = _open_library(self.path, verify)
        #: the manifest `load` checked the library against (None: none, with verify=False)
        self.manifest: dict[str, Any] | None = manifest
        try:
            raw = ctypes.c_char.in_dll(self._lib, SIGNATURE_SYMBOL)
        except ValueError:
            raise AotError(
                f"{self.path}: not a library exported by mlc (no {SIGNATURE_SYMBOL} symbol)"
            ) from None
        self.signature = _parse_signature(ctypes.string_at(ctypes.addressof(raw)), self.path)
        if manifest is not None and self.signature != manifest["signature"]:
            raise AotError(
                f"{self.path}: its embedded {SIGNATURE_SYMBOL} does not match the signature in "
                f"its manifest {manifest_path(self.path).name} (corrupted or modified since "
                "export); re-export the model"
            )
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
                status = (
                    ctypes.c_int64.in_dll(self._lib, checks["status"]) if checks["status"] else None
                )
            except ValueError:
                raise AotError(
                    f"{self.path}: the status word {checks['status']} is missing"
                ) from None
            self._init_checks(checks["messages"], status)

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        return f"<LoadedModel {self.path.name}: {self.entry}({ins}) -> ({outs})>"


def _spec(buffer: dict[str, Any]) -> BufferSpec:
    return BufferSpec(
        tuple(buffer["shape"]), _dtype(buffer["dtype"]), buffer["name"], labels_from_json(buffer)
    )


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
                try:
                    labels_from_json(b)
                except ValueError as e:
                    raise ValueError(f"{e} of {b['name']}") from None
        checks = signature.get("checks")
        if checks is not None and (
            not isinstance(checks.get("status"), str | None)
            or not isinstance(checks.get("messages"), list)
            or not all(isinstance(m, str) for m in checks["messages"])
        ):
            raise ValueError("bad run-time check table")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise AotError(f"{path}: invalid {SIGNATURE_SYMBOL}: {e}") from None
    return signature


def load(path: str | os.PathLike[str], *, verify: bool = True) -> LoadedModel:
    """Load a shared library written by `export_library` / `CompiledModel.export`, after
    checking it against its manifest (see the module docstring). `verify=False` also loads
    a library without one and skips the digest: only for libraries you trust."""
    return LoadedModel(path, verify=verify)


# -- verifying a library before dlopen -------------------------------------------------------

#: (st_dev, st_ino) -> the descriptor through which that library was dlopen-ed, kept open
_PINNED: dict[tuple[int, int], int] = {}
_PIN_LOCK = threading.Lock()


def _open_library(path: Path, verify: bool) -> tuple[ctypes.CDLL, dict[str, Any] | None]:
    """`dlopen` the library `path` once it passed `_verify`; its manifest (if any)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise AotError(f"{path}: cannot read it ({e.strerror})") from None
    keep = False
    try:
        before = os.fstat(fd)
        manifest = _verify(fd, before.st_size, path, verify)
        lib, keep = _dlopen(fd, before, path)
        if _file_id(before) != _file_id(os.fstat(fd)):
            raise AotError(f"{path}: the library changed while it was being loaded")
    finally:
        if not keep:
            os.close(fd)
    return lib, manifest


def _verify(fd: int, size: int, path: Path, verify: bool) -> dict[str, Any] | None:
    """Check the library open as `fd` (`size` bytes): against its manifest (if `verify`, or
    if there is one) and its ELF headers; return the manifest."""
    manifest = _read_manifest(path)
    if manifest is not None and verify:
        _check_digest(fd, size, manifest, path)
    if _ELF_PLATFORM:
        _check_elf(fd, size, path)
    if manifest is None and verify:
        raise AotError(
            f"{path}: the library has no mlc manifest ({manifest_path(path).name}): not a "
            "library exported by mlc, or its manifest was not copied along; re-export the "
            "model (model.export / mlc compile) and keep the manifest next to the library"
        )
    return manifest


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of the library `path`, validated; None if there is none."""
    where = manifest_path(path)
    try:
        with where.open("rb") as f:
            data = f.read(_MANIFEST_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise AotError(f"{where}: cannot read the manifest ({e.strerror})") from None
    try:
        if len(data) > _MANIFEST_MAX_BYTES:
            raise ValueError(f"larger than {_MANIFEST_MAX_BYTES} bytes")
        manifest = json.loads(data.decode())
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError("not an mlc manifest")
        if manifest.get("version") != MANIFEST_VERSION:
            raise ValueError(
                f"version {manifest.get('version')}, this mlc reads {MANIFEST_VERSION}"
            )
        sha256, size = manifest.get("sha256"), manifest.get("size")
        if not isinstance(sha256, str) or re.fullmatch(r"[0-9a-f]{64}", sha256) is None:
            raise ValueError("no sha256 digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("no size")
        if not isinstance(manifest.get("signature"), dict):
            raise ValueError("no signature")
    except (ValueError, UnicodeDecodeError) as e:
        raise AotError(f"{where}: invalid mlc manifest ({e}); re-export the model") from None
    _parse_signature(json.dumps(manifest["signature"]).encode(), where)
    return manifest


def _check_digest(fd: int, size: int, manifest: dict[str, Any], path: Path) -> None:
    """The library (`size` bytes by fstat, then read once) has the manifest's size and
    sha256."""
    if size == manifest["size"]:
        sha256, size = _sha256_fd(fd)
        if size == manifest["size"] and sha256 == manifest["sha256"]:
            return
    detail = (
        f"{size} bytes, the manifest says {manifest['size']}"
        if size != manifest["size"]
        else "its sha256 differs"
    )
    raise AotError(
        f"{path}: the library does not match its manifest (corrupted or modified since "
        f"export: {detail}); re-export the model"
    )


#: ELF class -> (header fields from e_type on, program header, section header)
_ELF_LAYOUT = {
    1: ("HHIIIIIHHHHHH", "IIIIIIII", "IIIIIIIIII"),
    2: ("HHIQQQIHHHHHH", "IIQQQQQQ", "IIQQQQIIQQ"),
}
_ET_DYN, _SHT_NOBITS = 3, 8


def _check_elf(fd: int, size: int, path: Path) -> None:
    """The file is an ELF shared library of this machine's word size and byte order whose
    headers, segments and sections lie inside its `size` bytes (else dlopen could fault)."""
    ident = os.pread(fd, 16, 0)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        raise _not_loadable(path, "not an ELF file")
    host = (struct.calcsize("P") // 4, 1 if sys.byteorder == "little" else 2)
    if (ident[4], ident[5]) != host:  # EI_CLASS (1: 32-bit, 2: 64-bit), EI_DATA (1: LE, 2: BE)
        raise _not_loadable(path, f"ELF class {ident[4]}, data {ident[5]}: not this machine's")
    order = "<" if ident[5] == 1 else ">"
    header, phdr, shdr = (order + f for f in _ELF_LAYOUT[ident[4]])
    fields = _unpack(fd, header, 16, size, path, "ELF header")
    e_type, phoff, shoff = fields[0], fields[4], fields[5]
    phentsize, phnum, shentsize, shnum = fields[8:12]
    if e_type != _ET_DYN:
        raise _not_loadable(path, f"ELF type {e_type}, not a shared library")
    if phnum == 0 or phentsize != struct.calcsize(phdr):
        raise _not_loadable(path, "no valid program headers")
    for i in range(phnum):  # p_offset + p_filesz: what mmap reads
        ph = _unpack(fd, phdr, phoff + i * phentsize, size, path, "program headers")
        offset, filesz = (ph[2], ph[5]) if ident[4] == 2 else (ph[1], ph[4])
        _inside(offset, filesz, size, path, f"segment {i}")
    if shoff == 0:
        return
    if shentsize != struct.calcsize(shdr):
        raise _not_loadable(path, "invalid section headers")
    for i in range(max(shnum, 1)):  # (e_shnum 0: extended numbering, at least section 0)
        sh = _unpack(fd, shdr, shoff + i * shentsize, size, path, "section headers")
        if sh[1] != _SHT_NOBITS:
            _inside(sh[4], sh[5], size, path, f"section {i}")


def _unpack(fd: int, fmt: str, offset: int, size: int, path: Path, what: str) -> tuple[int, ...]:
    """`fmt` unpacked from the file at `offset`, which must hold it."""
    length = struct.calcsize(fmt)
    _inside(offset, length, size, path, what)
    return struct.unpack(fmt, os.pread(fd, length, offset))


def _inside(offset: int, length: int, size: int, path: Path, what: str) -> None:
    if offset + length > size:
        raise _not_loadable(
            path, f"truncated: its {what} end at byte {offset + length}, the file has {size}"
        )


def _not_loadable(path: Path, why: str) -> AotError:
    return AotError(f"{path}: cannot load it as a shared library ({why})")


def _file_id(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is replaced or rewritten."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _dlopen(fd: int, st: os.stat_result, path: Path) -> tuple[ctypes.CDLL, bool]:
    """`dlopen` the file open as `fd` (status `st`); whether `fd` must now stay open."""
    if not os.path.exists(f"/proc/self/fd/{fd}"):  # not Linux: by path, then compare
        lib = _cdll(str(path.resolve()), path)
        if _file_id(st) != _file_id(os.stat(path.resolve())):
            raise AotError(f"{path}: the library changed while it was being loaded")
        return lib, False
    # one name per inode, never reused: glibc hands out a loaded library again by name
    with _PIN_LOCK:
        pinned = _PINNED.get((st.st_dev, st.st_ino))
        lib = _cdll(f"/proc/self/fd/{fd if pinned is None else pinned}", path)
        if pinned is None:
            _PINNED[(st.st_dev, st.st_ino)] = fd
        return lib, pinned is None


def _cdll(name: str, path: Path) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(name)
    except OSError as e:
        why = str(e).replace(name, str(path))
        raise AotError(f"{path}: cannot load it as a shared library ({why})") from None
