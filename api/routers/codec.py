"""The Temporal codec-server protocol, so that ops read decoded history in the Temporal Web UI:
`POST /codec/decode` and `POST /codec/encode` take and give `{"payloads": [...]}` (protobuf JSON).

Who may call: an ops API key (`Authorization: Bearer <key>`, e.g. injected by the proxy in front
of a production UI). In development only, the configured UI origin (`CODEC_CORS_ORIGIN`, set by
`make run` to the embedded UI) may call without a key, and only from a loopback peer. CORS answers that origin only."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payloads

from api.auth import check_role, principal_from_request
from api.errors import status_of
from api.openapi import CODEC
from api.routemeta import route_meta
from core.codec import CodecError, EncryptionCodec
from domain.enums import Role
from domain.errors import DomainError

router = APIRouter(prefix="/codec", tags=["codec"])
MAX_PAYLOADS = 1000
# The body both operations take, as the codec-server protocol writes it (protobuf JSON of
# `temporal.api.common.v1.Payloads`): read by the handler itself, so declared here for the schema.
_BYTES = {"type": "string", "format": "byte", "maxLength": 4 * 1024 * 1024}
PAYLOADS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["payloads"],
                    "properties": {
                        "payloads": {
                            "type": "array",
                            "maxItems": MAX_PAYLOADS,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "metadata": {"type": "object", "additionalProperties": _BYTES},
                                    "data": _BYTES,
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    allowed = request.app.state.settings.codec_cors_origin
    if origin and allowed and origin == allowed:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }
    return {}


def _from_loopback(request: Request) -> bool:
    """The TCP peer (not a forwarded header) is this machine."""
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def _authorize(request: Request) -> None:
    settings = request.app.state.settings
    origin = request.headers.get("origin")
    if (
        settings.environment == "development"
        and settings.codec_cors_origin
        and origin == settings.codec_cors_origin
        and "authorization" not in request.headers
        and _from_loopback(request)
    ):
        return  # the embedded UI of `make run`, on loopback (an Origin header is easy to forge from elsewhere)
    async with request.app.state.sessionmaker() as session:
        principal = await principal_from_request(request, session)
    check_role(principal, Role.ops)


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec | None = request.app.state.codec  # built once, in the app's lifespan
    if codec is None:
        raise HTTPException(409, detail="payload encryption is off (PAYLOAD_KEYS is not set): nothing to decode")
    return codec


async def _payloads(request: Request) -> Payloads:
    try:
        body: Any = await request.json()
        message = ParseDict(body, Payloads())
    except (ValueError, ParseError) as err:
        raise HTTPException(422, detail=f'body: expected {{"payloads": [...]}} in protobuf JSON ({err})') from err
    if len(message.payloads) > MAX_PAYLOADS:
        raise HTTPException(422, detail=f"payloads: at most {MAX_PAYLOADS} at once")
    return message


async def _run(request: Request, decode: bool) -> Response:
    headers = _cors(request)
    try:
        await _authorize(request)
        codec = _codec(request)
        message = await _payloads(request)
        try:
            out = await (codec.decode(message.payloads) if decode else codec.encode(message.payloads))
        except CodecError as err:
            raise HTTPException(422, detail=str(err)) from err
    except (HTTPException, DomainError) as err:  # DomainError: check_role's refusal
        return JSONResponse(
            {"detail": err.detail}, status_code=status_of(err), headers={**headers, **(err.headers or {})}
        )
    return JSONResponse(MessageToDict(Payloads(payloads=out)), headers=headers)


@router.post(
    "/decode",
    openapi_extra=route_meta(
        CODEC,
        business_rule="an encrypted payload must be one the key ring can decrypt (its key id in the ring)",
        openapi=PAYLOADS_BODY,
    ),
)
async def decode(request: Request) -> Response:
    """Decrypt payloads (the UI shows history in clear). A payload whose key is not in the ring: 422 naming it."""
    return await _run(request, decode=True)


@router.post("/encode", openapi_extra=route_meta(CODEC, openapi=PAYLOADS_BODY))
async def encode(request: Request) -> Response:
    """Encrypt payloads with the active key (the UI's signals and queries)."""
    return await _run(request, decode=False)


@router.options("/decode", include_in_schema=False)
@router.options("/encode", include_in_schema=False)
async def preflight(request: Request) -> Response:
    return Response(status_code=204 if _cors(request) else 403, headers=_cors(request))
