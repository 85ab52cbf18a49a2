"""`mlc-opt`: xDSL's opt driver with every xDSL and mlc dialect and pass.

    mlc-opt model.mlir -p 'pass-a{opt=v},pass-b'
    mlc-opt model.mlir --pass-pipeline='builtin.module(pass-a{opt=v},pass-b)'
    mlc-opt - < model.mlir                  # `-` (or no file) reads stdin
    mlc-opt model.onnx                      # imports ONNX first
    mlc-opt tests.mlir --split-input-file --verify-diagnostics   # `// expected-error {{..}}`
    mlc-opt in.mlir -p 'p1,p2' --bisect-semantics   # which pass changes the semantics?
    mlc-opt --list-passes; mlc-opt --help-pass tl-split

A user error is one line, `file:line:col: error: ...` or `mlc-opt: error: ...`, on stderr
with exit code 1; an exception inside a pass names the pass and the exception. A bug in
mlc is an `internal error` with exit code 2 (MLC_DEBUG=1 shows its traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import IO, NoReturn

from xdsl.dialects import get_all_dialects
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.printer import Printer
from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException
from xdsl.xdsl_opt_main import xDSLOptMain

from mlc import __version__
from mlc.parser.limits import static_element_count
from mlc.parser.mlir import IRDiagnostic, format_location, parse_module, verify_module
from mlc.registry import all_dialect_factories, all_pass_factories
from mlc.targets.timings import Timings
from mlc.tools.opt_pipeline import (
    OptError,
    check_target,
    help_pass,
    list_passes,
    one_line,
    parse_passes,
    spec_error_parts,
)

LOWER_TO_LLVM = "convert-graph-to-tl,convert-tl-kernel-to-loops,convert-tl-to-llvm"
"""The pipeline that takes graph-level IR to the `llvm` dialect (named in errors)."""


MAX_BISECT_ELEMENTS = 2**24
"""The most elements `--bisect-semantics` generates for one input (its reference runs
interpret every op with numpy, several times)."""


def check_bisect_inputs(module: ModuleOp) -> None:
    """An `IRDiagnostic` if an input of the module's entry function is too large for
    `--bisect-semantics` to generate (a type alone allocates nothing; its inputs would)."""
    from mlc.interpreters import InterpretError, entry_function

    try:
        function = entry_function(module)
    except InterpretError:
        return  # bisect_semantics reports it
    for i, ty in enumerate(function.function_type.inputs.data):
        count = static_element_count(ty) or 0
        if count > MAX_BISECT_ELEMENTS:
            raise IRDiagnostic(
                f"{format_location(function)}: error: --bisect-semantics: argument #{i} of "
                f"@{function.sym_name.data} ({ty}) has {count} elements, more than the "
                f"{MAX_BISECT_ELEMENTS} it generates inputs of"
            )


def expand_pipelines(passes: Sequence[ModulePass], module: ModuleOp) -> list[ModulePass]:
    """`passes` with every pipeline pass (`mlc-cpu-pipeline`) replaced by the passes it
    runs on `module`, so that printing and timing see each of them."""
    out: list[ModulePass] = []
    for p in passes:
        expand = getattr(p, "passes", None)
        out.extend(expand(module) if callable(expand) else [p])
    return out


class MlcOptMain(xDSLOptMain):
    bisect_found: bool = False
    """Set when `--bisect-semantics` found a pass that changes semantics (exit code 1)."""

    diagnostics_failed: bool = False
    """Set when `--verify-diagnostics` found a mismatch (exit code 1)."""

    version_format = f"mlc-opt {__version__} (xDSL {{xdsl_version}})"  # as `mlc --version`

    def __init__(self, args: Sequence[str] | None = None):
        self._bisect_reports: list[str] = []
        self._mlc_passes: set[str] = set(all_pass_factories())
        super().__init__(description="mlc modular optimizer driver", args=args)

    def setup_pipeline(self) -> None:
        # `--load-passes MODULE`: register the passes of MODULE.MLC_PASSES (name -> factory)
        for module_name in self.args.load_passes or []:
            try:
                module = importlib.import_module(module_name)
            except ImportError as e:
                raise OptError(f"--load-passes: cannot import '{module_name}': {e}") from None
            for name, factory in getattr(module, "MLC_PASSES", {}).items():
                self.register_pass(name, factory)
                self._mlc_passes.add(name)
        text = self.args.passes
        if self.args.pass_pipeline is not None:
            if text:
                raise OptError("give the passes with either -p or --pass-pipeline, not both")
            text = self.args.pass_pipeline
        self.pipeline = PassPipeline(parse_passes(text, self.available_passes))
        target = self.args.target.split("{")[0]
        check_target(self.args.target, self.available_targets[target])

    def run(self) -> None:
        """`--list-passes` / `--help-pass` print and return; `--verify-diagnostics` checks
        the annotations; anything else is xDSL's run."""
        if self.args.list_passes:
            sys.stdout.write(list_passes(self.available_passes, self._mlc_passes))
        elif self.args.help_pass is not None:
            sys.stdout.write(help_pass(self.args.help_pass, self.available_passes))
        elif self.args.verify_diagnostics:
            from mlc.tools.opt_diagnostics import run_verify_diagnostics

            self.diagnostics_failed = not run_verify_diagnostics(self)
        else:
            super().run()

    def get_input_stream(self) -> tuple[IO[bytes], str]:
        if self.args.input_file == "-":
            return sys.stdin.buffer, "mlir"
        try:
            return super().get_input_stream()
        except OSError as e:
            raise OptError(f"cannot open '{self.args.input_file}': {e.strerror}") from None

    def get_input_name(self) -> str:
        return "<stdin>" if self.args.input_file in (None, "-") else self.args.input_file

    def prepare_input(self) -> tuple[list[tuple[IO[bytes], int]], str]:
        extension = os.path.splitext(self.args.input_file or "")[1].lstrip(".")
        if self.args.input_file not in (None, "-") and not self.args.frontend:
            if extension not in self.available_frontends:
                raise OptError(
                    f"{self.args.input_file}: unrecognized file extension '.{extension}' "
                    f"(known: {', '.join(sorted(self.available_frontends))}); "
                    "-f mlir reads it as MLIR"
                )
        return super().prepare_input()

    def register_all_dialects(self) -> None:
        # xDSL's dialects, except where mlc defines its own under the same name (`hw`: the
        # hardware dialects hw.x86 / hw.accel replace xDSL's CIRCT `hw`), then mlc's
        ours = all_dialect_factories()
        for name, factory in get_all_dialects().items():
            if name not in ours:
                self.ctx.register_dialect(name, factory)
        for name, factory in ours.items():
            self.ctx.register_dialect(name, factory)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        for name, factory in all_pass_factories().items():
            self.register_pass(name, factory)

    def register_all_frontends(self) -> None:
        super().register_all_frontends()

        def parse_onnx(io: IO[bytes]) -> ModuleOp:
            from mlc.parser.onnx import OnnxImportError, import_onnx

            # external data is read from the model file's own directory (stdin: none)
            path = self.args.input_file
            base_dir = None if path in (None, "-") else os.path.dirname(os.path.abspath(path))
            try:
                return import_onnx(io.read(), base_dir=base_dir)
            except OnnxImportError as e:
                raise IRDiagnostic(f"{self.get_input_name()}: error: {e}") from None

        self.available_frontends["onnx"] = parse_onnx

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.prog = "mlc-opt"

        def usage_error(message: str) -> NoReturn:
            arg_parser.exit(1, f"mlc-opt: error: {message} (--help lists the options)\n")

        # a usage error is one line with exit code 1, instead of the usage text and code 2
        arg_parser.error = usage_error  # type: ignore[method-assign]
        # xDSL's help for -p lists every pass: point to --list-passes instead (argparse has
        # no public way to change the help of an argument already added)
        for action in arg_parser._actions:
            if action.dest == "input_file":
                action.help = "input file (.mlir, .onnx); '-' or none reads MLIR from stdin"
            elif action.dest == "verify_diagnostics":
                action.help = (
                    "check the diagnostics against the `// expected-error {{text}}` (-warning, "
                    "-note; @+N, @-N, @above, @below, @unknown) annotations; exit code 1 on a "
                    "mismatch"
                )
            elif action.dest == "passes":
                action.help = (
                    'pass pipeline, e.g. \'cse,tl-split{kernel="mm" loop="m" factor=8}\' '
                    "(MLIR's 'builtin.module(...)' also works); --list-passes lists the passes"
                )
        arg_parser.add_argument(
            "--pass-pipeline",
            metavar="PIPELINE",
            help="pass pipeline in MLIR syntax: 'builtin.module(pass-a{opt=v},pass-b)'",
        )
        arg_parser.add_argument(
            "--list-passes",
            action="store_true",
            help="list every pass (mlc's, then xDSL's) with a one-line description",
        )
        arg_parser.add_argument(
            "--help-pass",
            metavar="NAME",
            help="describe pass NAME and its options (types, defaults)",
        )
        arg_parser.add_argument(
            "--print-ir-after-all",
            action="store_true",
            help="print the IR to stderr after every pass",
        )
        arg_parser.add_argument(
            "--print-ir-after",
            action="append",
            metavar="PASS",
            help="print the IR to stderr after every run of PASS (may be repeated)",
        )
        arg_parser.add_argument(
            "--print-ir-after-change",
            action="store_true",
            help="print the IR to stderr after every pass that changed it",
        )
        arg_parser.add_argument(
            "--bisect-semantics",
            action="store_true",
            help="interpret the program after each pass on generated inputs, name the first "
            "pass that changes its semantics and print a shrunk counterexample (exit code 1)",
        )
        arg_parser.add_argument(
            "--load-passes",
            action="append",
            metavar="MODULE",
            help="import MODULE and register the passes of its MLC_PASSES dict",
        )

    def parse_chunk(
        self, chunk: IO[bytes], file_extension: str, start_offset: int = 0
    ) -> ModuleOp | None:
        if file_extension != "mlir":
            return super().parse_chunk(chunk, file_extension, start_offset)
        data = chunk.read()
        try:
            text = data.decode()
        except UnicodeDecodeError as e:
            line = start_offset + data.count(b"\n", 0, e.start) + 1
            raise IRDiagnostic(
                f"{self.get_input_name()}: error: not a UTF-8 text file (byte "
                f"0x{data[e.start]:02x} on line {line}); MLIR input must be text"
            ) from None
        return parse_module(
            self.ctx, text, self.get_input_name(), start_offset, verify=not self.args.disable_verify
        )

    def apply_passes(self, prog: ModuleOp) -> None:
        if self.args.bisect_semantics:
            from mlc.testing.bisect import bisect_semantics

            check_bisect_inputs(prog)
            result = bisect_semantics(prog, self.pipeline.passes, self.ctx)
            if result is None:
                self._bisect_reports.append("every pass preserves semantics on the inputs tried")
            else:
                self.bisect_found = True
                self._bisect_reports.append(result.report())
            return
        timings = Timings()
        after_names = set(self.args.print_ir_after or [])
        for p in expand_pipelines(self.pipeline.passes, prog):
            before = str(prog) if self.args.print_ir_after_change else ""
            try:
                with timings.stage(p.name):
                    p.apply(self.ctx, prog)
            except DiagnosticException as e:
                raise IRDiagnostic(
                    f"{self.get_input_name()}: error: in pass '{p.name}': {e}"
                ) from None
            except Exception as e:  # a pass bug: name it instead of dumping a traceback
                raise IRDiagnostic(
                    f"{self.get_input_name()}: error: pass '{p.name}' failed: "
                    f"{type(e).__name__}: {e}"
                ) from None
            if not self.args.disable_verify:
                with timings.stage("verify"):
                    verify_module(prog, f"after pass '{p.name}'")
            changed = self.args.print_ir_after_change and str(prog) != before
            if (
                self.args.print_ir_after_all
                or self.args.print_between_passes
                or changed
                or p.name in after_names
            ):
                print(f"// -----// IR Dump After {p.name} //----- //", file=sys.stderr)
                Printer(stream=sys.stderr).print_op(prog)
                print(file=sys.stderr)
        if self.args.time_passes:
            print(timings.table("mlc-opt pass execution time"), file=sys.stderr)

    def output_resulting_program(self, prog: ModuleOp) -> str:
        if self.args.bisect_semantics:
            return self._bisect_reports.pop() + "\n"
        try:
            return super().output_resulting_program(prog)
        except Exception as e:  # the target does not handle some op of the module
            if os.environ.get("MLC_DEBUG"):
                raise
            target = self.args.target.split("{")[0]
            lines = str(e).strip().splitlines()
            reason = (
                f"{type(e).__name__}: {lines[0][:200]}" if len(lines) == 1 else type(e).__name__
            )
            dialects = sorted({op.dialect_name() for op in prog.walk()} - {"builtin"})
            hint = (
                f"lower it first with -p {LOWER_TO_LLVM}"
                if target == "llvm"
                else f"lower it to the dialects target '{target}' prints first"
            )
            raise OptError(
                f"target '{target}' cannot print this module ({reason}; its ops are from "
                f"{', '.join(dialects) or 'no dialect'}): {hint}"
            ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run mlc-opt; 0: success, 1: a user error (one line on stderr), 2: an mlc bug."""
    try:
        opt = MlcOptMain(argv)
        opt.run()
        if opt.bisect_found or opt.diagnostics_failed:
            return 1
    except SystemExit as e:  # argparse: --help/--version (0) or a usage error (1)
        return 0 if e.code in (0, None) else 1
    except OptError as e:
        print(f"mlc-opt: error: {one_line(str(e))}", file=sys.stderr)
        return 1
    except ArgSpecParseError as e:  # a malformed -t TARGET{options}, before check_target
        print(f"mlc-opt: error: malformed target: {spec_error_parts(e)[1]}", file=sys.stderr)
        return 1
    except DiagnosticException as e:
        print(str(e).rstrip(), file=sys.stderr)
        return 1
    except OSError as e:
        name = f" '{e.filename}'" if e.filename else ""
        print(f"mlc-opt: error: cannot access{name}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except RecursionError:  # the input nests deeper than Python's stack (past the parser)
        print("mlc-opt: error: the input is nested too deeply to process", file=sys.stderr)
        return 1
    except MemoryError:
        print(
            "mlc-opt: error: out of memory (the input or its results are too large)",
            file=sys.stderr,
        )
        return 1
    except Exception as e:  # a bug in mlc: one line, the traceback only on request
        if os.environ.get("MLC_DEBUG"):
            raise
        first_line = (str(e).strip().splitlines() or [""])[0]
        print(
            f"mlc-opt: internal error: {type(e).__name__}: {first_line}; please report this "
            "bug (MLC_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
