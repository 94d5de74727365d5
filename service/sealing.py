"""Sealing stored answers with keys the database does not hold.

Two stored things can quote a note (evidence spans, excluded mentions): an idempotent POST's
answer, kept for replay, and an asynchronous job's results, kept until fetched. The database
must never hold note text unless the deployment opts in, so both are sealed:

* an idempotent answer with a key derived from the request body itself (only a caller who sends
  the same note again can open it; the row keeps a differently derived hash to match bodies);
* job results with a key derived from the secret half of the job id, which only the client holds.

The construction uses the standard library only: zlib compression, then a SHAKE-256 keystream
(an extendable-output function used as a stream cipher with a fresh random nonce per message)
and an HMAC-SHA256 tag over version, nonce and ciphertext (encrypt-then-MAC), with separate
encryption and MAC keys derived from the one key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import zlib

from pipeline.errors import CodesuggestError

VERSION = b"\x01"
NONCE_BYTES = 16
TAG_BYTES = 32


class SealError(CodesuggestError):
    """A sealed blob is truncated, tampered with, or opened with the wrong key."""

    http_status = 500


def derive_key(purpose: str, material: bytes) -> bytes:
    """Derive a 32-byte key for one purpose from secret material.

    Args:
        purpose: a label that separates uses (``"idempotency.seal"``, ``"job.seal"``...).
        material: the secret (a request body, a job secret).

    Returns:
        The key.
    """
    return hashlib.sha256(purpose.encode("utf-8") + b"\x00" + material).digest()


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def _subkeys(key: bytes) -> tuple[bytes, bytes]:
    return derive_key("seal.encrypt", key), derive_key("seal.mac", key)


def seal(key: bytes, plaintext: bytes) -> bytes:
    """Compress, encrypt and authenticate ``plaintext``.

    Args:
        key: 32 secret bytes (see :func:`derive_key`).
        plaintext: what to protect.

    Returns:
        ``version || nonce || ciphertext || tag``.
    """
    enc_key, mac_key = _subkeys(key)
    nonce = os.urandom(NONCE_BYTES)
    packed = zlib.compress(plaintext, 6)
    stream = hashlib.shake_256(enc_key + nonce).digest(len(packed)) if packed else b""
    body = VERSION + nonce + _xor(packed, stream)
    return body + hmac.new(mac_key, body, hashlib.sha256).digest()


def unseal(key: bytes, blob: bytes) -> bytes:
    """Check and open a blob made by :func:`seal`.

    Args:
        key: the key it was sealed with.
        blob: the sealed bytes.

    Returns:
        The plaintext.

    Raises:
        SealError: the blob is malformed, was altered, or the key is wrong.
    """
    if len(blob) < 1 + NONCE_BYTES + TAG_BYTES or blob[:1] != VERSION:
        raise SealError("sealed data is malformed or of an unknown version")
    enc_key, mac_key = _subkeys(key)
    body, tag = blob[:-TAG_BYTES], blob[-TAG_BYTES:]
    if not hmac.compare_digest(tag, hmac.new(mac_key, body, hashlib.sha256).digest()):
        raise SealError("sealed data does not match its key (altered, or the wrong key)")
    nonce, ciphertext = body[1 : 1 + NONCE_BYTES], body[1 + NONCE_BYTES :]
    stream = hashlib.shake_256(enc_key + nonce).digest(len(ciphertext)) if ciphertext else b""
    try:
        return zlib.decompress(_xor(ciphertext, stream))
    except zlib.error as exc:  # pragma: no cover - only reachable with a forged valid tag
        raise SealError(f"sealed data does not decompress: {exc}") from exc
