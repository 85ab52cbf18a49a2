"""`python -m mlc.tools.mutate`: the fault-injection command (`mlc.testing.mutate` is
what it runs; see its docstring and docs/testing.md).

    python -m mlc.tools.mutate --sample 40 --seed 0 --jobs 2 --json mutants.json
    python -m mlc.tools.mutate --rerun mutants.json         # only the survivors, again
    python -m mlc.tools.mutate --list --sample 10            # what would run
    python -m mlc.tools.mutate --kinds floor-to-trunc,skip-guard --sample 1000 --jobs 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from mlc.testing import mutate
from mlc.testing.mutate import (
    FAULT_KINDS,
    ROOT,
    TARGETS,
    Mutation,
    all_sites,
    excluded,
    run,
    sample,
)

__all__ = ["iter_kinds", "main"]


def iter_kinds(value: str) -> Iterator[str]:
    for k in value.split(","):
        if k not in FAULT_KINDS:
            raise argparse.ArgumentTypeError(f"unknown fault kind {k!r}")
        yield k


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlc.tools.mutate", description=mutate.__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sample", type=int, default=40, help="number of mutants (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run in parallel")
    parser.add_argument("--target", type=float, default=0.9, help="fraction to reach")
    parser.add_argument(
        "--files", nargs="*", default=list(TARGETS), help="globs under the package root"
    )
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        help="globs under the package root to leave out; GLOB::NAME leaves out one top-level "
        "function or class, GLOB::CLASS.METHOD one method (e.g. code of passes not registered yet)",
    )
    parser.add_argument(
        "--kinds",
        type=lambda v: list(iter_kinds(v)),
        default=list(FAULT_KINDS),
        help="comma-separated fault kinds (default: all)",
    )
    parser.add_argument(
        "--deselect",
        nargs="*",
        default=[],
        help="globs of covering test node ids (relative to the package root, e.g. "
        "'tests/unit/lowering/test_native_corners.py::*') left out: the kill rate without them",
    )
    parser.add_argument("--list", action="store_true", help="list the sampled mutants and stop")
    parser.add_argument(
        "--rerun",
        type=Path,
        help="run again the mutants of an earlier --json report that had --rerun-status",
    )
    parser.add_argument("--rerun-status", default="survived")
    parser.add_argument("--json", type=Path, help="also write the outcomes as JSON here")
    args = parser.parse_args(argv)

    sites = [
        m
        for m in all_sites(ROOT, args.files)
        if m.kind in args.kinds and not excluded(m, args.exclude)
    ]
    chosen = sample(sites, args.sample, args.seed)
    if args.rerun:
        fields = {f.name for f in dataclasses.fields(Mutation)}
        chosen = [
            Mutation(**{k: v for k, v in entry.items() if k in fields})
            for entry in json.loads(args.rerun.read_text())
            if entry["status"] == args.rerun_status
        ]
    if args.list:
        for m in chosen:
            print(f"{m.where} {m.kind}: {m.description}")
        return 0
    report = run(chosen, timeout=args.timeout, jobs=args.jobs, deselect=args.deselect)
    report.sites = len(sites)
    print(report.text())
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        **asdict(o.mutation),
                        "status": o.status,
                        "seconds": o.seconds,
                        "area": mutate.area_of(o.mutation.path),
                        "detail": o.detail[-2000:],
                    }
                    for o in report.outcomes
                ],
                indent=1,
            )
        )
    return 0 if report.caught_fraction >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
