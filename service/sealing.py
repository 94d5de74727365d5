"""Sealing stored answers with keys the database does not hold.

Two stored things can quote a note (evidence spans, excluded mentions): an idempotent POST's
answer, kept for replay, and an asynchronous job's results, kept until fetched. The database
must never hold note text unless the deployment opts in, so both are sealed:

* an idempotent answer with a key derived from the request body itself (only a caller who sends
  the same note again can open it; the row keeps a differently derived hash to match bodies);
* job results with a key derived from the secret half of the job id, which only the client holds.

The construction is AES-256-GCM (an authenticated cipher, from the ``cryptography`` package) over
the zlib-compressed text, with a fresh random 96-bit nonce per message and the format version as
associated data; keys are derived with HKDF-SHA256, one per purpose. Stored data is not a place
for a home-made cipher.
"""

from __future__ import annotations

import os
import zlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.errors import CodesuggestError

VERSION = b"\x02"
NONCE_BYTES = 12
TAG_BYTES = 16


class SealError(CodesuggestError):
    """A sealed blob is truncated, tampered with, or opened with the wrong key."""

    http_status = 500


def derive_key(purpose: str, material: bytes) -> bytes:
    """Derive a 32-byte key for one purpose from secret material (HKDF-SHA256).

    Args:
        purpose: a label that separates uses (``"idempotency.seal"``, ``"job.seal"``...).
        material: the secret (a request body, a job secret).

    Returns:
        The key.
    """
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"codesuggest/" + purpose.encode("utf-8"))
    return hkdf.derive(material)


def seal(key: bytes, plaintext: bytes) -> bytes:
    """Compress, encrypt and authenticate ``plaintext``.

    Args:
        key: 32 secret bytes (see :func:`derive_key`).
        plaintext: what to protect.

    Returns:
        ``version || nonce || ciphertext-with-tag``.
    """
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, zlib.compress(plaintext, 6), VERSION)


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
    nonce, ciphertext = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        packed = AESGCM(key).decrypt(nonce, ciphertext, VERSION)
    except InvalidTag as exc:
        raise SealError("sealed data does not match its key (altered, or the wrong key)") from exc
    try:
        return zlib.decompress(packed)
    except zlib.error as exc:  # pragma: no cover - only reachable with a forged valid tag
        raise SealError(f"sealed data does not decompress: {exc}") from exc
