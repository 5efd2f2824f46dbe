"""Secrets kept in the database sealed with the payload key ring (core/codec.py): webhook signing
secrets are needed in clear to sign, so they cannot be hashed like API keys; sealed, a copy of
the database alone does not let anyone forge our signatures. Without a key ring (development
only: production requires PAYLOAD_KEYS) they are kept as they are."""

from __future__ import annotations

import base64

from temporalio.api.common.v1 import Payload

from core.codec import CodecError, EncryptionCodec, KeyRing

SEALED = "sealed:"


def seal(ring: KeyRing | None, text: str) -> str:
    if ring is None:
        return text
    payload = EncryptionCodec(ring).encrypt(Payload(data=text.encode()))
    return SEALED + base64.b64encode(payload.SerializeToString()).decode()


def unseal(ring: KeyRing | None, stored: str) -> str:
    if not stored.startswith(SEALED):
        return stored  # kept as it is (no key ring when it was written)
    if ring is None:
        raise CodecError("a sealed secret needs the payload key ring (PAYLOAD_KEYS) to be read")
    payload = Payload()
    payload.ParseFromString(base64.b64decode(stored.removeprefix(SEALED)))
    return EncryptionCodec(ring).decrypt(payload).data.decode()
