"""`mlc-opt`: xDSL's opt driver with every xDSL and mlc dialect and pass.

    mlc-opt model.mlir -p 'pass-a{opt=v},pass-b'
    mlc-opt model.onnx                      # imports ONNX first
    mlc-opt tests.mlir --split-input-file --verify-diagnostics
    mlc-opt in.mlir -p 'p1,p2' --bisect-semantics   # which pass changes the semantics?

Errors are `file:line:col: error: ...` on stderr with a non-zero exit, never a traceback;
an exception inside a pass names the pass and the exception.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import IO

from xdsl.dialects import get_all_dialects
from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException
from xdsl.xdsl_opt_main import xDSLOptMain

from mlc.parser.mlir import IRDiagnostic, parse_module, verify_module
from mlc.registry import all_dialect_factories, all_pass_factories


class MlcOptMain(xDSLOptMain):
    bisect_found: bool = False
    """Set when `--bisect-semantics` found a pass that changes semantics (exit code 1)."""

    def __init__(self, args: Sequence[str] | None = None):
        self._bisect_reports: list[str] = []
        super().__init__(description="mlc modular optimizer driver", args=args)

    def setup_pipeline(self) -> None:
        # `--load-passes MODULE`: register the passes of MODULE.MLC_PASSES (name -> factory)
        for module_name in self.args.load_passes or []:
            module = importlib.import_module(module_name)
            for name, factory in getattr(module, "MLC_PASSES", {}).items():
                self.register_pass(name, factory)
        super().setup_pipeline()

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

            try:
                return import_onnx(io.read())
            except OnnxImportError as e:
                raise IRDiagnostic(f"{self.get_input_name()}: error: {e}") from None

        self.available_frontends["onnx"] = parse_onnx

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--print-ir-after-all",
            action="store_true",
            help="print the IR to stderr after every pass",
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
        text = chunk.read().decode()
        return parse_module(
            self.ctx, text, self.get_input_name(), start_offset, verify=not self.args.disable_verify
        )

    def apply_passes(self, prog: ModuleOp) -> None:
        if self.args.bisect_semantics:
            from mlc.testing.bisect import bisect_semantics

            result = bisect_semantics(prog, self.pipeline.passes, self.ctx)
            if result is None:
                self._bisect_reports.append("every pass preserves semantics on the inputs tried")
            else:
                self.bisect_found = True
                self._bisect_reports.append(result.report())
            return
        for p in self.pipeline.passes:
            before = str(prog) if self.args.print_ir_after_change else ""
            try:
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
                verify_module(prog, f"after pass '{p.name}'")
            changed = self.args.print_ir_after_change and str(prog) != before
            if self.args.print_ir_after_all or self.args.print_between_passes or changed:
                print(f"// -----// IR Dump After {p.name} //----- //", file=sys.stderr)
                Printer(stream=sys.stderr).print_op(prog)
                print(file=sys.stderr)

    def output_resulting_program(self, prog: ModuleOp) -> str:
        if self.args.bisect_semantics:
            return self._bisect_reports.pop() + "\n"
        return super().output_resulting_program(prog)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        opt = MlcOptMain(argv)
        opt.run()
        if opt.bisect_found:
            return 1
    except DiagnosticException as e:
        print(str(e).rstrip(), file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"mlc-opt: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug in mlc: one line, the traceback only on request
        if os.environ.get("MLC_DEBUG"):
            raise
        print(
            f"mlc-opt: internal error: {type(e).__name__}: {e} (MLC_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
