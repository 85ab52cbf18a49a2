"""The persistent compile cache: object code per kernel module, content-addressed (and the
records and constants of whole compiled models, `targets.model_cache`).

    cache = CompileCache()                      # $MLC_CACHE_DIR, else ~/.cache/mlc
    obj = cache.get(key)                        # bytes or None (a bad entry is deleted)
    cache.put(key, obj)                         # atomic; evicts least recently used
    cache.info(); cache.clear()                 # `mlc cache info` / `mlc cache clear`

The key (`object_key`) hashes everything that determines the object: the module's LLVM IR
(itself determined by the scheduled kernel), the target triple, CPU and features, the
optimization level, and the mlc and llvmlite versions. An entry is a small header (magic,
payload length, SHA-256 of the payload) and the object; a truncated or corrupted entry
fails the check, is deleted and rebuilt, never loaded. Writes go to a temporary file in
the same directory and are renamed into place, so concurrent processes see a whole entry
or none. The size cap (`MLC_CACHE_MAX_BYTES`, default 1 GiB) is kept by deleting the
least recently used entries (a hit touches its file).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlc

__all__ = ["CacheInfo", "CompileCache", "default_cache_dir", "object_key"]

MAGIC = b"MLCOBJ1\n"
_HEADER = struct.Struct("<8sQ32s")
DEFAULT_MAX_BYTES = 1 << 30


def default_cache_dir() -> Path:
    """`$MLC_CACHE_DIR`, else `$XDG_CACHE_HOME/mlc`, else `~/.cache/mlc`."""
    env = os.environ.get("MLC_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "mlc"


def object_key(llvm_ir: str, triple: str, cpu: str, features: str, opt: int) -> str:
    """The cache key of the object code of `llvm_ir` for a target and `O<opt>`."""
    import llvmlite

    h = hashlib.sha256()
    for part in (mlc.__version__, llvmlite.__version__, triple, cpu, features, str(opt), llvm_ir):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    entries: int
    bytes: int
    max_bytes: int

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.entries} entries, {self.bytes / 2**20:.1f} MiB "
            f"(cap {self.max_bytes / 2**20:.0f} MiB)"
        )


class CompileCache:
    """Object files on disk under `root`, keyed by `object_key`."""

    def __init__(self, root: str | os.PathLike[str] | None = None, max_bytes: int = 0) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        env = os.environ.get("MLC_CACHE_MAX_BYTES", "")
        self.max_bytes = max_bytes or (int(env) if env.isdigit() else DEFAULT_MAX_BYTES)

    def _path(self, key: str, kind: str) -> Path:
        return self.root / key[:2] / f"{key}.{kind}"

    def get(self, key: str, kind: str = "o") -> bytes | None:
        """The entry `key` of `kind` (`o`: object code, `model`: a compiled model's
        record, `const`: a constant's bytes), or None; a bad entry is deleted."""
        found = self.get_with_digest(key, kind)
        return None if found is None else found[0]

    def get_with_digest(self, key: str, kind: str = "o") -> tuple[bytes, bytes] | None:
        """The entry and the SHA-256 digest of its bytes (checked), or None."""
        path = self._path(key, kind)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if len(data) >= _HEADER.size:
            magic, length, digest = _HEADER.unpack_from(data)
            payload = data[_HEADER.size :]
            if (
                magic == MAGIC
                and length == len(payload)
                and hashlib.sha256(payload).digest() == digest
            ):
                try:
                    os.utime(path)  # least recently used goes first
                except OSError:
                    pass
                return payload, digest
        try:  # corrupted or truncated: never loaded, rebuilt by the caller
            path.unlink()
        except OSError:
            pass
        return None

    def put(
        self,
        key: str,
        obj: bytes,
        kind: str = "o",
        evict: bool = True,
        digest: bytes | None = None,
    ) -> None:
        """Store `obj` (atomically); with `evict`, then keep the cache under its cap
        (a caller storing many entries passes False and calls `evict()` once). `digest`:
        `obj`'s SHA-256 where the caller has it (a wrong one makes the entry read as
        corrupted, never as other bytes)."""
        path = self._path(key, kind)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            header = _HEADER.pack(MAGIC, len(obj), digest or hashlib.sha256(obj).digest())
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(header)
                f.write(obj)
            os.replace(tmp, path)
        except OSError:
            return  # a read-only or full cache directory only costs speed
        if evict:
            self.evict()

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for p in self.root.glob("*/*.*"):
            if p.name.startswith(".tmp-"):
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((st.st_mtime, st.st_size, p))
        return out

    def evict(self) -> None:
        """Delete least recently used entries until the cache is under its cap."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.max_bytes:
                break
            try:
                p.unlink()
                total -= size
            except OSError:
                pass

    def info(self) -> CacheInfo:
        entries = self._entries()
        return CacheInfo(self.root, len(entries), sum(s for _, s, _ in entries), self.max_bytes)

    def clear(self) -> int:
        """Delete every entry; returns how many."""
        n = 0
        for _, _, p in self._entries():
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
        return n
