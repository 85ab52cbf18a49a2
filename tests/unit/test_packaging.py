"""Every package directory of the repository is listed in pyproject.toml."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {"mlc"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and (
            rel.parts[0] in {"tests", "venv", "build"} or any(p.startswith(".") for p in rel.parts)
        ):
            continue
        if rel.parts:
            on_disk.add("mlc." + ".".join(rel.parts))
    assert on_disk == listed, f"unlisted: {on_disk - listed}, stale: {listed - on_disk}"
