"""Types every request and response body shares, and the bodies of the program-level routers
(CAMs, API keys). Each journey's bodies live in api/<journey>/schemas.py.

The shared text types of `domain/types.py` are re-exported here with the JSON Schema that says
what their validators check (a pattern, `format: email`), so that what the OpenAPI schema calls
valid is what the API accepts: request bodies use `Name`, `Label`, `Reason`, `RequiredReason`
and `Email` from this module. The validators are the domain's, unchanged."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Header
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from domain import types
from domain.enums import Role

DOMAIN = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+(xn--[a-z0-9-]{1,59}|[a-z]{2,63})$"
# What a domain field accepts as written (case is folded before DOMAIN is checked); documentation.
DOMAIN_INPUT = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([Xx][Nn]--[A-Za-z0-9-]{1,59}|[A-Za-z]{2,63})$"
CATEGORY = r"^[a-z0-9][a-z0-9_-]{0,59}$"

# `clean_text` refuses control characters (all of them in a line; all but newline and tab in
# text) and non-characters; `_nonblank` needs something besides whitespace. The non-characters
# above the BMP (U+1FFFE, U+1FFFF, ... U+10FFFF) are in the class as the characters themselves.
_NONCHARACTERS = r"\ufdd0-\ufdef\ufffe\uffff" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}-{chr(plane << 16 | 0xFFFF)}" for plane in range(1, 17)
)
_NOT_IN_LINE = r"\x00-\x1f\x7f-\x9f" + _NONCHARACTERS
_NOT_IN_TEXT = r"\x00-\x08\x0b-\x1f\x7f-\x9f" + _NONCHARACTERS
# The non-blank forms are linear: the leading run is whitespace only (`[^\S...]`), so the first
# non-space character ends it in one way (two runs of the same class backtrack quadratically).
LINE = rf"^[^{_NOT_IN_LINE}]*$"
NONBLANK_LINE = rf"^[^\S{_NOT_IN_LINE}]*[^\s{_NOT_IN_LINE}][^{_NOT_IN_LINE}]*$"
TEXT = rf"^[^{_NOT_IN_TEXT}]*$"
NONBLANK_TEXT = rf"^[^\S{_NOT_IN_TEXT}]*[^\s{_NOT_IN_TEXT}][^{_NOT_IN_TEXT}]*$"


at_most = types.at_most


Name = Annotated[types.Name, at_most(200), Field(json_schema_extra={"pattern": NONBLANK_LINE})]
Label = Annotated[types.Label, at_most(200), Field(json_schema_extra={"pattern": LINE})]
Reason = Annotated[types.Reason, at_most(1000), Field(json_schema_extra={"pattern": TEXT})]
RequiredReason = Annotated[types.RequiredReason, at_most(1000), Field(json_schema_extra={"pattern": NONBLANK_TEXT})]
Email = Annotated[types.Email, Field(json_schema_extra={"format": "email"})]


def _json_number(value: Any) -> Any:
    """A number as JSON writes it: not a boolean (`false` was taken as 0) nor a string (`"5"` as 5).
    An integer-valued number (`5.0`) is an integer, as JSON Schema says; `5.5` is refused."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON number, not a boolean or a string")
    return value


# After the integer's bounds, so that they stay JSON Schema (`exclusiveMinimum`, not `gt`): the
# integer of a JSON body is `Annotated[int, Field(ge=0, le=10**15), JSON_NUMBER]`.
JSON_NUMBER = BeforeValidator(_json_number)


# Text in a form field, query parameter or header is screened as the body's text types are:
# `Annotated[str, Form(max_length=500), SCREEN_LINE]` (one line) or `SCREEN_TEXT` (lines).
SCREEN_LINE = AfterValidator(types.screen_line)
SCREEN_TEXT = AfterValidator(types.screen_form_lines)  # CRLF from a browser's textarea read as LF
# A link or sign-in token in a path: URL-safe base64 and dots (what itsdangerous writes), bounded.
TOKEN = r"^[A-Za-z0-9_.=-]{1,2000}$"
# An Idempotency-Key header: printable ASCII, 1 to 200 characters.
IDEMPOTENCY_KEY = r"^[\x20-\x7e]{1,200}$"
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY, description="a retry with the same key is answered once"),
]


# Dates and times are bounded at the edge: within the years 2000 to 2099 (as written), so that no
# date a caller sends reaches a journey's arithmetic near the end of the calendar (9999-12-31 plus
# a protection window overflows). The JSON Schema says so with a pattern on the year.
EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
YEARS = r"^20[0-9]{2}-"
# The longest date or time written as documented: 2027-03-31T00:00:00.000000+05:30 is 32 characters.
MAX_MOMENT_LENGTH = 40
# A number, as pydantic would read it as a Unix timestamp. Linear: one way to match a run of digits
# (`\d+\.?\d*` split every run in two every way, quadratic on a long one); and it only ever sees at
# most MAX_MOMENT_LENGTH characters.
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*\Z")


def _as_written(value: Any) -> Any:
    """Dates and times are ISO 8601 strings, as documented: pydantic would also read a number, or a
    string of one, as a Unix timestamp (`0.5` or `"5"` as a moment of 1970). The length is bounded
    before anything reads the text."""
    if isinstance(value, str) and len(value) > MAX_MOMENT_LENGTH:
        raise ValueError(f"at most {MAX_MOMENT_LENGTH} characters, such as 2027-03-31 or 2027-03-31T00:00:00Z")
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be a string such as 2027-03-31 (a date) or 2027-03-31T00:00:00Z (a time)")
    return value


def _within_horizon(value: date) -> date:
    """Within the years the journeys reason about (the date as written, for a time)."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


_HORIZON = Field(json_schema_extra={"pattern": YEARS})
# A date's pattern in full, so that what it generates is nearly always a date (a fuzz filters less).
DATE = r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
IsoDate = Annotated[
    date, BeforeValidator(_as_written), AfterValidator(_within_horizon), Field(json_schema_extra={"pattern": DATE})
]
IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_as_written), AfterValidator(_within_horizon), _HORIZON]


def check_domain(v: str) -> str:
    if not re.match(DOMAIN, v):
        raise ValueError("must be a domain name such as acme.com")
    return v


class Strict(BaseModel):
    # No `str_strip_whitespace`: lengths and patterns apply to the text as sent, as the schema says
    # (stripped first, a 201-character name with a leading space passed a documented maxLength of
    # 200). The text types strip surrounding whitespace themselves (`clean_text`).
    model_config = ConfigDict(extra="forbid")


class CamCreate(Strict):
    name: Name
    email: Email


class CamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    created_at: datetime


def _one_binding_per_role(schema: dict) -> None:
    """An ops key is bound to nothing, a cam key to a CAM, a partner key to a partner."""
    absent = {"type": "null"}
    uuid_ = {"type": "string", "format": "uuid"}
    schema["oneOf"] = [
        {"properties": {"role": {"const": "ops"}, "cam_id": absent, "partner_id": absent}},
        {"properties": {"role": {"const": "cam"}, "cam_id": uuid_, "partner_id": absent}, "required": ["cam_id"]},
        {
            "properties": {"role": {"const": "partner"}, "cam_id": absent, "partner_id": uuid_},
            "required": ["partner_id"],
        },
    ]


class ApiKeyCreate(Strict):
    model_config = ConfigDict(json_schema_extra=_one_binding_per_role)

    role: Role
    cam_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    label: Label = ""
    approver_level: Annotated[int, Field(ge=1, le=20), JSON_NUMBER] | None = Field(
        None, description="ops keys: the highest MDF approval level this key decides (none: every level)"
    )
    integration: bool = Field(
        False,
        description="ops keys: the key of an integration (e.g. the CRM's), which may not allow private "
        "webhook destinations; its secret starts with `cl_int_`",
    )


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    role: Role
    cam_id: uuid.UUID | None
    partner_id: uuid.UUID | None
    label: str
    approver_level: int | None = None
    integration: bool = False
    key: str = Field(description="the secret; shown once, stored only as a hash")
