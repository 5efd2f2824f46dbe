"""Partner data is encrypted in workflow history (core/codec.py) and still readable by ops
through the codec endpoint; keys rotate without breaking running journeys."""

from __future__ import annotations

import base64
import json
import os
import zlib

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from core import registry
from core.codec import (
    COMPRESS_OVER,
    COMPRESSION,
    ENCODING,
    KEY_ID,
    CodecError,
    EncryptionCodec,
    KeyRing,
    compress,
    data_converter,
    new_key,
)
from domain.enums import Role
from journeys.onboarding.domain import MilestoneDone
from journeys.onboarding.workflow import OnboardingWorkflow
from tests.helpers.api import create_cam, enrol
from tests.helpers.api import new_key as new_api_key
from tests.helpers.histories import histories
from tests.helpers.keys import TEST_RING
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually
from worker.main import build_worker


def raw_client(dev_env, ring: KeyRing | None = None) -> Client:
    """A client of the same server that sees payloads as stored (no codec), or with `ring`."""
    return Client(
        dev_env.client.service_client,
        namespace=dev_env.client.namespace,
        data_converter=data_converter(ring) if ring else pydantic_data_converter,
    )


def stored_payloads(history_json: str, *, search_attributes: bool = False) -> list[dict]:
    """The payloads of a history as stored ({"metadata": {...}, "data": <base64>}): those of the
    workflow (inputs, results, signals, updates...), or with `search_attributes` those of the
    search attributes and of the markers, which stay in clear and carry ids, tier, journey,
    state, patch names and a local activity's type and attempt only (a local activity's result
    is the workflow's: encrypted)."""
    found: list[dict] = []

    def walk(node, in_attributes: bool):
        if isinstance(node, dict):
            if "metadata" in node and "data" in node and isinstance(node["metadata"], dict):
                if in_attributes == search_attributes:
                    found.append(node)
                return
            if node.get("markerName") == "core_local_activity":
                walk(node["details"].get("result"), False)
                walk(node["details"].get("data"), True)
                return
            for key, value in node.items():
                if key == "header":  # trace context (ids only) when tracing is on: not the journey's data
                    continue
                walk(value, in_attributes or key in ("searchAttributes", "markerRecordedEventAttributes"))
        elif isinstance(node, list):
            for value in node:
                walk(value, in_attributes)

    walk(json.loads(history_json), False)
    return found


async def test_history_is_encrypted_and_ops_decode_it_through_the_codec_endpoint(
    api, ops, worker, dev_env, sessionmaker
):
    cam = await create_cam(api, ops, email="casey@vendor.test")
    partner = await enrol(
        api, ops, tier="gold", cam_id=cam["id"], domain="secret-partner.test", name="Confidential Networks"
    )
    wid = f"onboarding-{partner['id']}"
    r = await api.post(f"/partners/{partner['id']}/onboarding/milestones/portal_access", headers=ops)
    assert r.status_code == 200, r.text
    history = await raw_client(dev_env).get_workflow_handle(wid).fetch_history()
    payloads = stored_payloads(history.to_json())
    assert len(payloads) > 5
    clear = b"".join(base64.b64decode(p["data"]) for p in payloads)
    for secret in (b"Confidential Networks", b"owner@secret-partner.test", b"casey@vendor.test"):
        assert secret not in clear  # nothing of the partner in clear in the stored history
    encodings = {base64.b64decode(p["metadata"]["encoding"]) for p in payloads}
    assert encodings == {b"binary/encrypted"}
    attributes = stored_payloads(history.to_json(), search_attributes=True)  # in clear, for ops' queries
    values = {base64.b64decode(p["data"]).decode() for p in attributes}
    allowed = {partner["id"], cam["id"], "gold", "onboarding", "in_progress", "kit-lean-steps", "false"}
    local = (
        "policy.load",
        "events.publish",
        "outbox.notify_publishing",
        "onboarding.open_plan",
        "onboarding.record_milestone",
    )
    allowed |= {f'"activity_type":"{name}"' for name in local}  # local activities' markers
    assert all(any(a in v for a in allowed) or _is_datetime(v) for v in values), values  # NextDeadline
    assert not any("Confidential" in v or "@" in v for v in values)
    key_ids = {base64.b64decode(p["metadata"]["encryption-key-id"]).decode() for p in payloads}
    assert key_ids == {TEST_RING.active}

    body = {"payloads": payloads}
    r = await api.post("/codec/decode", json=body, headers=ops)
    assert r.status_code == 200, r.text
    decoded = b"".join(base64.b64decode(p["data"]) for p in r.json()["payloads"])
    # The partner's name (its journey's input); its address is no longer in the history since one
    # activity queues and sends the welcome (`outbox.notify` answers counts, not recipients).
    assert b"Confidential Networks" in decoded
    assert (await api.post("/codec/decode", json=body)).status_code == 401
    cam_h = await new_api_key(sessionmaker, Role.cam, cam_id=cam["id"])
    assert (await api.post("/codec/decode", json=body, headers=cam_h)).status_code == 403
    # encode then decode is the identity (the UI encodes what it sends)
    r = await api.post("/codec/encode", json=r.json(), headers=ops)
    again = await api.post("/codec/decode", json=r.json(), headers=ops)
    assert b"Confidential Networks" in b"".join(base64.b64decode(p["data"]) for p in again.json()["payloads"])


async def test_a_payload_whose_key_is_not_in_the_ring_fails_naming_the_key(api, ops):
    other = KeyRing.parse("lost-key:" + base64.b64encode(new_key()).decode())
    encoded = EncryptionCodec(other).encrypt((await pydantic_data_converter.encode(["Confidential Networks"]))[0])
    with pytest.raises(CodecError, match="lost-key"):
        EncryptionCodec(TEST_RING).decrypt(encoded)
    from google.protobuf.json_format import MessageToDict

    r = await api.post("/codec/decode", json={"payloads": [MessageToDict(encoded)]}, headers=ops)
    assert r.status_code == 422 and "lost-key" in r.json()["detail"], r.text


async def test_key_rotation_mid_journey_completes_the_journey(api, ops, settings, dev_env, sessionmaker, mailbox):
    """Started under key A; the ring rotates to B (A kept for reading); a worker and client with the
    new ring finish the journey. Its history holds payloads under both keys."""
    await api.put("/policy", json=fast_policy(day_seconds=60).model_dump(mode="json"), headers=ops)
    ring_a = KeyRing.parse("rot-a:" + base64.b64encode(new_key()).decode())
    ring_b = ring_a.rotated("rot-b")  # `camlights rotate-key`: a new active key, the old ones kept
    partner = await enrol(api, ops, tier="registered", domain="rotate.test")  # started by the API: test ring
    # The API (test ring) started it; from here the journey runs on ring A, then on ring B.
    wid = f"onboarding-{partner['id']}"
    ring_a_full = KeyRing(active="rot-a", keys={**TEST_RING.keys, **ring_a.keys})
    ring_b_full = KeyRing(active="rot-b", keys={**TEST_RING.keys, **ring_b.keys})
    client_a, client_b = raw_client(dev_env, ring_a_full), raw_client(dev_env, ring_b_full)
    async with build_worker(client_a, settings, sessionmaker, settings.task_queue):
        handle = client_a.get_workflow_handle(wid)
        await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key="portal_access", by="ops:k"))
        await eventually(lambda: _done(handle, "portal_access"), what="first milestone under key A")
    async with build_worker(client_b, settings, sessionmaker, settings.task_queue):
        handle = client_b.get_workflow_handle(wid)
        for key in ("first_training", "first_deal"):
            await handle.signal(OnboardingWorkflow.mark_milestone, MilestoneDone(key=key, by="ops:k"))
        result = await handle.result()
    assert result["state"] == "activated"
    history = await raw_client(dev_env).get_workflow_handle(wid).fetch_history()
    key_ids = {
        base64.b64decode(p["metadata"]["encryption-key-id"]).decode() for p in stored_payloads(history.to_json())
    }
    assert {"rot-a", "rot-b"} <= key_ids, key_ids


async def _done(handle, key: str) -> bool:
    progress = await handle.query(OnboardingWorkflow.progress)
    return any(m.key == key and m.done_at for m in progress.milestones)


def _is_datetime(value: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(json.loads(value))
    except (ValueError, TypeError):
        return False
    return True


async def test_production_codec_refuses_payloads_in_clear():
    """A signal or update sent in clear (the temporal CLI without the codec) could name any actor as
    its author: production workers and clients refuse it; development keeps reading old clear history."""
    (clear,) = await pydantic_data_converter.encode([{"by": "ops:forged", "decision": "approve"}])
    with pytest.raises(CodecError, match="not encrypted"):
        await EncryptionCodec(TEST_RING, accept_plain=False).decode([clear])
    assert await EncryptionCodec(TEST_RING).decode([clear]) == [clear]
    sealed = EncryptionCodec(TEST_RING).encrypt(clear)
    assert EncryptionCodec(TEST_RING, accept_plain=False).decrypt(sealed) == clear


def serialized(size: int, *, fill: bytes = b"a") -> Payload:
    """A payload whose serialized form is exactly `size` bytes (its data repeats `fill`)."""
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b"")
    overhead = len(payload.SerializeToString()) + 3  # the data field's tag and a length of up to 2 bytes
    payload.data = (fill * size)[: size - overhead]
    while len(payload.SerializeToString()) < size:
        payload.data += fill[:1]
    assert len(payload.SerializeToString()) == size
    return payload


@pytest.mark.parametrize(
    ("size", "compressed"), [(COMPRESS_OVER - 1, False), (COMPRESS_OVER, False), (COMPRESS_OVER + 1, True)]
)
def test_a_payload_is_compressed_over_the_bar_only(size, compressed):
    codec = EncryptionCodec(TEST_RING)
    payload = serialized(size)
    sealed = codec.encrypt(payload)
    assert sealed.metadata["encryption-compression"] == (b"zlib" if compressed else b"none")
    assert codec.decrypt(sealed) == payload


def test_an_incompressible_payload_over_the_bar_is_only_encrypted():
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(4 * COMPRESS_OVER))
    sealed = EncryptionCodec(TEST_RING).encrypt(payload)
    assert sealed.metadata["encryption-compression"] == b"none"
    assert EncryptionCodec(TEST_RING).decrypt(sealed) == payload


@pytest.mark.parametrize("size", [COMPRESS_OVER + 1, 1_000, 5_000, 40_000, 200_000])
def test_the_window_sized_stream_is_ordinary_zlib(size):
    """`compress` sizes zlib's window to the payload: any zlib reader reads it, it packs no worse
    than `zlib.compress` at the same level by more than a few bytes, and repeats further apart
    than a small window are still found in a large payload."""
    data = (os.urandom(3_000) * (size // 3_000 + 1))[:size]  # repeats 3,000 bytes apart
    packed = compress(data)
    assert zlib.decompress(packed) == data
    assert len(packed) <= len(zlib.compress(data, 6)) + 16
    if size > 6_000:
        assert len(packed) < size / 2


def test_payloads_compressed_before_the_window_was_sized_still_decode():
    """Histories written before (full 32 KiB window, `zlib.compress`) read as they did."""
    codec = EncryptionCodec(TEST_RING)
    payload = serialized(2_000, fill=b"partner ")
    nonce, key_id = os.urandom(12), TEST_RING.active
    packed = zlib.compress(payload.SerializeToString(), 6)
    sealed = AESGCM(TEST_RING.keys[key_id]).encrypt(nonce, packed, key_id.encode())
    metadata = {"encoding": ENCODING, KEY_ID: key_id.encode(), COMPRESSION: b"zlib"}
    old = Payload(metadata=metadata, data=nonce + sealed)
    assert codec.decrypt(old) == payload


ENCRYPTED_HISTORIES = [
    p
    for journey in ("onboarding", "deal", "mdf", "cert", "qbr", "lead")
    for p in histories(journey)
    if {base64.b64decode(x["metadata"]["encoding"]) for x in stored_payloads(p.read_text())} == {b"binary/encrypted"}
]


@pytest.mark.parametrize("path", ENCRYPTED_HISTORIES[:6], ids=[p.stem for p in ENCRYPTED_HISTORIES[:6]])
async def test_a_production_worker_replays_encrypted_history(path):
    """Patch markers and search attributes stay in clear but never pass through the codec: a worker
    that refuses clear payloads still runs the journeys."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=registry.workflows(), data_converter=data_converter(TEST_RING, accept_plain=False))
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=True)).replay_failure is None


UI = "http://127.0.0.1:8233"


@pytest.mark.parametrize(
    ("environment", "peer", "status"),
    [("development", "127.0.0.1", 200), ("development", "203.0.113.7", 401), ("production", "127.0.0.1", 401)],
)
async def test_the_ui_origin_calls_without_a_key_only_from_loopback_in_development(
    settings, sessionmaker, environment, peer, status
):
    from api.app import create_app

    app = create_app(
        settings.model_copy(update={"environment": environment, "codec_cors_origin": UI}), reconcile_every=None
    )
    (clear,) = await pydantic_data_converter.encode(["Confidential Networks"])
    from google.protobuf.json_format import MessageToDict

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://camlights.test") as client:
            r = await client.post("/codec/encode", headers={"Origin": UI}, json={"payloads": [MessageToDict(clear)]})
    assert r.status_code == status, r.text
    if status == 401:
        assert "Authorization" in r.json()["detail"]
