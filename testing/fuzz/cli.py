"""`python -m mlc.testing.fuzz`: the fuzzers' command line.

    python -m mlc.testing.fuzz ir --seed 0 --cases 5000 --jobs 2 --out fuzz-out --json ir.json
    python -m mlc.testing.fuzz onnx --seed 0 --cases 500 --timeout 30
    python -m mlc.testing.fuzz values --seed 0 --cases 200
    python -m mlc.testing.fuzz replay fuzz-out/ir-s0-00042.json [--debug]

Exit status: 0 when no case is a finding (`internal-error`, `crash`, `hang`, `mismatch`),
1 otherwise (for `replay`: when the case still fails), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlc.testing.fuzz.case import Result, load_case
from mlc.testing.fuzz.outcomes import FAILURES
from mlc.testing.fuzz.run import DEFAULT_MEMORY_LIMIT, FUZZERS, make_fuzzer, replay, run_fuzzer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlc.testing.fuzz", description="fuzz mlc's parsers, importer and code"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in FUZZERS:
        p = sub.add_parser(name, help=f"run the {name} fuzzer")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--cases", type=int, default=100)
        p.add_argument("--start", type=int, default=0, help="the first case index")
        p.add_argument("--timeout", type=float, help="seconds per case (default: the fuzzer's)")
        p.add_argument("--jobs", type=int, default=1, help="children at a time")
        p.add_argument("--out", type=Path, help="directory for the failing cases' inputs")
        p.add_argument("--json", type=Path, help="write the report as JSON")
        p.add_argument(
            "--memory-limit",
            type=int,
            default=DEFAULT_MEMORY_LIMIT,
            help="address-space cap of a child in bytes (0: none)",
        )
        p.add_argument("--quiet", action="store_true", help="print the summary only")
    p = sub.add_parser("replay", help="run saved cases again")
    p.add_argument("cases", nargs="+", type=Path, help="the .json files (or input files)")
    p.add_argument("--timeout", type=float)
    p.add_argument(
        "--debug",
        action="store_true",
        help="run in this process with MLC_DEBUG=1 (tracebacks; a crash or hang is this "
        "process's own)",
    )
    return parser


def _print_result(r: Result) -> None:
    if r.outcome in FAILURES:
        print(
            f"case {r.case.index} [{r.case.source}; {', '.join(r.case.mutations)}]: "
            f"{r.outcome}: {r.detail}",
            flush=True,
        )


def _fuzz(args: argparse.Namespace) -> int:
    report = run_fuzzer(
        args.command,
        seed=args.seed,
        cases=args.cases,
        start=args.start,
        timeout=args.timeout,
        jobs=args.jobs,
        out=args.out,
        memory_limit=args.memory_limit or None,
        on_result=None if args.quiet else _print_result,
    )
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    return 1 if report.failures() else 0


def _replay(args: argparse.Namespace) -> int:
    failed = False
    for path in args.cases:
        if args.debug:
            os.environ["MLC_DEBUG"] = "1"
            case, meta = load_case(path)
            fuzzer = make_fuzzer(case.fuzzer)
            fuzzer.prepare()
            with tempfile.TemporaryDirectory(prefix="mlc-fuzz-") as tmp:
                report = fuzzer.execute(case, Path(tmp))
            outcome, detail = report["outcome"], report.get("detail", "")
        else:
            result = replay(path, timeout=args.timeout)
            outcome, detail = result.outcome, result.detail
            meta = load_case(path)[1]
        print(f"{path}: {outcome}: {detail} (saved as {meta.get('outcome')})")
        failed |= outcome in FAILURES
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "replay":
        return _replay(args)
    return _fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
