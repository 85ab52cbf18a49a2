"""Code generation per kernel: the llvm-dialect module split into one LLVM module per
kernel function (`tl-outline-kernels`) plus the model's own, each optimized and compiled
to object code once (the compile cache), in parallel, then linked into the JIT.

    objects = compile_objects(split_kernels(module), opt=3, cache=CompileCache(), jobs=2)
    engine.add_objects(objects)            # JitEngine: link and finalize

Parallelism: threads, one LLVM context and target machine each (llvmlite's calls release
the GIL while LLVM works), `MLC_COMPILE_JOBS` of them (default: the cores). Objects are
returned in module order, so the result does not depend on the job count.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from llvmlite import binding as llvm
from xdsl.dialects import llvm as llvmd
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from mlc.targets.compile_cache import CompileCache, object_key
from mlc.targets.cpu import host_features, optimize, runtimes_called, target_machine
from mlc.targets.llvm_emit import emit_module
from mlc.targets.timings import Timings
from mlc.transforms.loops.outline import kernel_of

__all__ = ["Objects", "Part", "compile_jobs", "compile_objects", "split_kernels"]


def compile_jobs() -> int:
    """`MLC_COMPILE_JOBS`, else the number of cores."""
    env = os.environ.get("MLC_COMPILE_JOBS", "").strip()
    return max(1, int(env)) if env.isdigit() else max(1, os.cpu_count() or 1)


def _declaration(f: llvmd.FuncOp) -> llvmd.FuncOp:
    decl = llvmd.FuncOp(f.sym_name.data, f.function_type, linkage=llvmd.LinkageAttr("external"))
    if f.arg_attrs is not None:
        decl.arg_attrs = f.arg_attrs
    return decl


def _references(ops: Sequence[Operation]) -> tuple[set[str], set[str]]:
    """Functions called and globals addressed by `ops`."""
    calls: set[str] = set()
    globals_: set[str] = set()
    for top in ops:
        for op in top.walk():
            if isinstance(op, llvmd.CallOp) and op.callee is not None:
                calls.add(op.callee.string_value())
            elif isinstance(op, llvmd.AddressOfOp):
                globals_.add(op.global_name.root_reference.data)
    return calls, globals_


@dataclass(frozen=True)
class Part:
    """One LLVM module's worth of a split module: `ops` are the module's own (not copies:
    splitting a large model is then free), `declarations` new external declarations of the
    functions they call in other parts, `external` the globals they address in other parts."""

    ops: list[Operation]
    declarations: list[llvmd.FuncOp]
    external: set[str]

    def module(self) -> ModuleOp:
        """A module of copies of the part's ops, e.g. to verify the part alone (each
        resolves its calls among few symbols, instead of the whole model's)."""
        # declarations first: xDSL resolves a call's callee by scanning the module's ops
        # in order, and the model's function calls every kernel
        return ModuleOp([d.clone() for d in self.declarations] + [op.clone() for op in self.ops])


def split_kernels(module: ModuleOp) -> list[Part]:
    """One `Part` per kernel function with its parallel bodies, then the rest of `module`
    (the model's function and the globals). The parts hold `module`'s ops: do not change
    `module` while they are in use."""
    funcs = {op.sym_name.data: op for op in module.ops if isinstance(op, llvmd.FuncOp)}
    globals_ = {op.sym_name.data for op in module.ops if isinstance(op, llvmd.GlobalOp)}
    groups: dict[str, list[str]] = {}
    for name in funcs:  # mlc_kernel_<key> and its parallel regions mlc_kernel_<key>_parN...
        root = kernel_of(name)
        if root is not None:
            groups.setdefault(root, []).append(name)
    owned = {name for group in groups.values() for name in group}
    parts = [_part([funcs[n] for n in groups[root]], funcs, globals_) for root in sorted(groups)]
    rest = [
        op for op in module.ops if not (isinstance(op, llvmd.FuncOp) and op.sym_name.data in owned)
    ]
    parts.append(_part(rest, funcs, globals_))
    return parts


def _part(ops: list[Operation], funcs: dict[str, llvmd.FuncOp], globals_: set[str]) -> Part:
    defined = {op.sym_name.data for op in ops if isinstance(op, llvmd.FuncOp | llvmd.GlobalOp)}
    calls, addressed = _references(ops)
    decls = [_declaration(funcs[n]) for n in sorted(calls - defined) if n in funcs]
    return Part(ops, decls, (addressed - defined) & globals_)


@dataclass(frozen=True)
class Objects:
    """The object files of a model's parts, how many came from the cache, and the LLVM IR
    of each part."""

    objects: list[bytes]
    cache_hits: int
    llvm_ir: list[str]
    #: each object's compile-cache key
    keys: list[str]

    @property
    def runtimes(self) -> list[str]:
        """The runtimes the objects call (`targets.cpu.runtimes_called`)."""
        return runtimes_called(self.llvm_ir)


_local = threading.local()
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _executor(workers: int) -> ThreadPoolExecutor:
    """`workers` code-generation threads, kept between compiles (each keeps its LLVM
    context, instead of a new context per thread per compile); per process, since a
    forked child has none of its parent's threads."""
    key = (os.getpid(), workers)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(workers, thread_name_prefix="mlc-codegen")
    return _pools[key]


def _thread_target(opt: int) -> tuple[llvm.TargetMachine, object]:
    """This thread's target machine and LLVM context (LLVM is thread-safe per context)."""
    state = getattr(_local, "state", None)
    if state is None or state[0] != opt:
        state = (opt, target_machine(opt, jit=False, reloc="pic"), llvm.create_context())
        _local.state = state
    return state[1], state[2]


def _emit_object(text: str, opt: int) -> bytes:
    tm, context = _thread_target(opt)
    ref = llvm.parse_assembly(text, context=context)  # type: ignore[arg-type]
    ref.verify()
    optimize(ref, tm, opt)
    return tm.emit_object(ref)


def compile_objects(
    parts: Sequence[Part],
    opt: int = 3,
    *,
    cache: CompileCache | None = None,
    jobs: int = 0,
    constants: dict[str, bytes] | None = None,
    timings: Timings | None = None,
) -> Objects:
    """Object code for every part of a module (`split_kernels`), from `cache` where it
    has them; large constants go to `constants` instead of the IR (see `emit_module`)."""
    timings = timings if timings is not None else Timings()
    tm = target_machine(opt, jit=False, reloc="pic")
    triple, layout = tm.triple, str(tm.target_data)
    features = host_features()
    texts: list[str] = []
    with timings.stage("emit LLVM IR"):
        for part in parts:
            ir_module = emit_module(
                part.declarations + part.ops, triple, layout, constants, declare=part.external
            )
            texts.append(str(ir_module))
    keys = [object_key(t, triple, features.cpu, features.features, opt) for t in texts]
    objects: list[bytes | None] = [cache.get(k) if cache else None for k in keys]
    todo = [i for i, o in enumerate(objects) if o is None]
    with timings.stage("LLVM O3 + codegen"):
        workers = min(jobs or compile_jobs(), len(todo))
        if workers > 1:
            built = list(_executor(workers).map(lambda i: _emit_object(texts[i], opt), todo))
        else:
            built = [_emit_object(texts[i], opt) for i in todo]
    for i, obj in zip(todo, built):
        objects[i] = obj
        if cache is not None:
            cache.put(keys[i], obj, evict=False)
    if cache is not None and built:
        cache.evict()
    return Objects([o for o in objects if o is not None], len(texts) - len(todo), texts, keys)
