"""Sealing of stored answers: round trip, tampering, wrong keys."""

from __future__ import annotations

import pytest

from service.sealing import SealError, derive_key, seal, unseal


@pytest.mark.parametrize("plaintext", [b"", b"x", b"note text " * 1000, bytes(range(256))])
def test_sealing_round_trip(plaintext: bytes) -> None:
    key = derive_key("test", b"material")
    blob = seal(key, plaintext)
    assert unseal(key, blob) == plaintext
    if len(plaintext) > 16:
        assert plaintext[:16] not in blob


def test_sealing_uses_a_fresh_nonce_each_time() -> None:
    key = derive_key("test", b"material")
    assert seal(key, b"same") != seal(key, b"same")


@pytest.mark.parametrize("position", [0, 1, 20, -1, -40])
def test_sealing_detects_tampering(position: int) -> None:
    key = derive_key("test", b"material")
    blob = bytearray(seal(key, b"some results " * 10))
    blob[position] ^= 0x01
    with pytest.raises(SealError):
        unseal(key, bytes(blob))


@pytest.mark.parametrize("blob", [b"", b"\x02", b"\x01" + b"0" * 80, b"\x03" + b"0" * 80])
def test_sealing_rejects_malformed_blobs(blob: bytes) -> None:
    with pytest.raises(SealError, match="malformed"):
        unseal(derive_key("test", b"k"), blob)


def test_sealing_wrong_key_fails() -> None:
    blob = seal(derive_key("a", b"k"), b"secret")
    with pytest.raises(SealError, match="wrong key"):
        unseal(derive_key("b", b"k"), blob)


def test_sealing_keys_depend_on_purpose_and_material() -> None:
    keys = {derive_key(p, m) for p in ("a", "b") for m in (b"1", b"2")}
    assert len(keys) == 4
