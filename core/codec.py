"""Partner data encrypted in workflow history: a payload codec (AES-256-GCM, compressed first
when that pays) applied by every client and worker through the data converter.

Keys form a ring: the active key encrypts, every key of the ring decrypts; each payload names
its key id in its metadata, so keys rotate without breaking running journeys. A payload that is
not encrypted (histories recorded before encryption) passes through unchanged in development
only: in production the workers refuse it (whoever can reach Temporal could otherwise send a
signal or update in clear and name any actor as its author). A payload whose key is not in the
ring fails with an error naming the key id, never silently."""

from __future__ import annotations

import base64
import dataclasses
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
COMPRESSION = "encryption-compression"
NONCE_BYTES = 12
COMPRESS_OVER = 256  # bytes: smaller payloads are only encrypted
COMPRESS_LEVEL = 6


class CodecError(ValueError):
    """A payload cannot be decrypted (unknown key id, tampered with) or the key ring is wrong."""


@dataclasses.dataclass(frozen=True)
class KeyRing:
    active: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise CodecError(f"the active payload key {self.active!r} is not in the key ring ({', '.join(self.keys)})")
        for key_id, key in self.keys.items():
            if len(key) != 32:
                raise CodecError(f"payload key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
            if not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
                raise CodecError(f"payload key id {key_id!r} must be letters, digits, '-' or '_'")

    @classmethod
    def parse(cls, spec: str, active: str | None = None) -> KeyRing:
        """`id1:<base64 key>,id2:<base64 key>`; the active key is `active`, else the last one."""
        keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep:
                raise CodecError(f"payload key {item[:12]!r}...: expected <id>:<base64 key>")
            try:
                keys[key_id.strip()] = base64.b64decode(encoded.strip(), validate=True)
            except ValueError as err:
                raise CodecError(f"payload key {key_id!r}: not base64") from err
        if not keys:
            raise CodecError("the payload key ring is empty")
        return cls(active=active or list(keys)[-1], keys=keys)

    def spec(self) -> str:
        return ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in self.keys.items())

    def rotated(self, key_id: str | None = None) -> KeyRing:
        """A ring with a new random active key; the old keys stay for reading."""
        new_id = key_id or f"k{len(self.keys) + 1}"
        if new_id in self.keys:
            raise CodecError(f"payload key id {new_id!r} is already in the ring")
        return KeyRing(active=new_id, keys={**self.keys, new_id: new_key()})


def rotate_file(path: Path) -> KeyRing:
    """Add a new active key to the ring kept in `path` (created, mode 600, when missing); the file
    is replaced atomically, so it is never half-written."""
    ring = KeyRing.parse(path.read_text().strip()) if path.exists() else None
    ring = ring.rotated() if ring else KeyRing(active="k1", keys={"k1": new_key()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(ring.spec() + "\n")
    tmp.replace(path)
    return ring


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


class EncryptionCodec(PayloadCodec):
    def __init__(self, ring: KeyRing, *, accept_plain: bool = True):
        """`accept_plain`: a payload that is not encrypted decodes as it is (development, and the
        codec endpoint that only shows history); False refuses it (production workers and clients)."""
        self.ring = ring
        self.accept_plain = accept_plain
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        plain = payload.SerializeToString()
        compression = b"none"
        if len(plain) > COMPRESS_OVER:
            packed = compress(plain)
            if len(packed) < len(plain):
                plain, compression = packed, b"zlib"
        nonce = os.urandom(NONCE_BYTES)
        key_id = self.ring.active
        sealed = self._ciphers[key_id].encrypt(nonce, plain, key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode(), COMPRESSION: compression}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if self.accept_plain:
                return payload  # written before encryption was on: passes through
            raise CodecError(
                "payload is not encrypted; in production only payloads encrypted with the key ring are "
                "accepted (a signal or update sent in clear, e.g. with the temporal CLI without the codec)"
            )
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(
                f"payload encrypted with key {key_id!r}, which is not in the key ring ({', '.join(self.ring.keys)})"
            )
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        except InvalidTag as err:
            raise CodecError(f"payload encrypted with key {key_id!r} does not decrypt: wrong key or tampered") from err
        if payload.metadata.get(COMPRESSION) == b"zlib":
            plain = zlib.decompress(plain)
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def compress(plain: bytes) -> bytes:
    """zlib (level 6) with a window just large enough for `plain` (at most zlib's 32 KiB) and hash
    memory to match. `zlib.compress` sets up and clears its full state, about 256 KiB, for every
    call: 55-90 µs for a payload of under a kilobyte, several per step of every journey, where
    this takes 7-15 µs and packs as small. The stream is ordinary zlib: `zlib.decompress` reads
    it, and every payload compressed before reads as it did (bench/README.md, "session 51")."""
    wbits = min(15, max(9, len(plain).bit_length()))
    packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, wbits, max(1, wbits - 7))
    return packer.compress(plain) + packer.flush()


def data_converter(ring: KeyRing | None, *, accept_plain: bool = True) -> DataConverter:
    """Pydantic payloads, encrypted when a key ring is configured (`accept_plain`: see EncryptionCodec)."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    if ring is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(ring, accept_plain=accept_plain))
