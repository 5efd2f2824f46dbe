"""The payload key ring the tests run with (encryption on, as in production). Test-only keys:
the recorded histories under tests/<journey>/histories are encrypted with them."""

from __future__ import annotations

from core.codec import KeyRing, data_converter

# Fixed so that recorded histories replay; never use these outside the tests.
TEST_PAYLOAD_KEYS = (
    "test-2026a:dGVzdC1vbmx5LWtleS1jYW1saWdodHMtMjAyNmEtMzI=,test-2026b:dGVzdC1vbmx5LWtleS1jYW1saWdodHMtMjAyNmItMzI="
)
TEST_RING = KeyRing.parse(TEST_PAYLOAD_KEYS, "test-2026b")
CONVERTER = data_converter(TEST_RING)
