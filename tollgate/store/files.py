"""Files every stage writes or checks: atomic JSON writes and SHA-256 checksums."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

CHUNK_BYTES = 1 << 20


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """``write_text_atomic`` of ``payload`` as indented JSON."""
    write_text_atomic(path, json.dumps(payload, indent=2, default=str))


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def file_sha256(path: Path) -> str:
    """``sha256_file`` computed once per (path, size, mtime) in a process: raw batches are hashed for the
    cache key and again for lineage."""
    status = path.stat()
    return _cached_sha256(str(path.resolve()), status.st_size, status.st_mtime_ns)


@lru_cache(maxsize=256)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))
