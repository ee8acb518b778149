"""Identifiers in the API's shapes: ``prefix`` + 24 alphanumerics, random or derived from inputs."""

from __future__ import annotations

import hashlib
import secrets
import string

__all__ = ["derived_id", "random_id"]

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_LENGTH = 24


def random_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def derived_id(prefix: str, *parts: str) -> str:
    """The same parts always give the same id, so re-downloaded results are identical."""
    number = int.from_bytes(hashlib.blake2b("\x00".join(parts).encode(), digest_size=32).digest(), "big")
    chars = []
    for _ in range(_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return prefix + "".join(chars)
