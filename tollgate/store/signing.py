"""Provenance: what Tollgate packaged is signed with a key that lives outside the model store.

A stored model records each file's SHA-256; anyone who can change a file can change that record too.
So the record itself is signed (HMAC-SHA256) with a key the store does not hold: ``TOLLGATE_SIGNING_KEY``,
or else the key file ``TOLLGATE_SIGNING_KEY_FILE`` (default ``~/.config/tollgate/signing.key``, created
with 32 random bytes and mode 600 the first time a model is packaged). A model or bento changed
together with its recorded checksums no longer matches its signature and is refused before any
pickle in it is loaded. Serving a model on another machine needs the same key there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from tollgate.config.settings import Settings


class SigningKeyError(RuntimeError):
    """No usable signing key: nothing can be signed or verified."""


def signing_key(settings: Settings) -> bytes:
    """The key: ``TOLLGATE_SIGNING_KEY`` if set, else the key file (created on first use)."""
    if settings.signing_key is not None:
        value = settings.signing_key.get_secret_value().strip()
        if len(value) < 16:
            raise SigningKeyError("TOLLGATE_SIGNING_KEY is shorter than 16 characters; use a long random value")
        return value.encode()
    path = settings.signing_key_file
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < 16:
        raise SigningKeyError(f"signing key file {path} holds fewer than 16 characters; delete it to make a new one")
    return value.encode()


def sign(key: bytes, subject: str, checksums: dict[str, str]) -> str:
    """HMAC-SHA256 of what is being vouched for: the subject (a model tag, a bento file) and its files'
    SHA-256s, in one canonical JSON text."""
    message = json.dumps({"subject": subject, "files": dict(sorted(checksums.items()))}, sort_keys=True)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signature_matches(key: bytes, subject: str, checksums: dict[str, str], signature: str) -> bool:
    return hmac.compare_digest(sign(key, subject, checksums), signature)


def signature_path(signed_file: Path) -> Path:
    """Where a signed file's signature lives: beside it, ``<name>.sig``."""
    return signed_file.with_name(signed_file.name + ".sig")
