"""Validation at the edge, once: the constrained types every request body uses. Whatever passed
them can always be stored (PostgreSQL refuses NUL and unpaired surrogates), rendered and sent
(the mailer applies the same address rule), so no journey meets it later as a poison pill."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field

_ALLOWED_IN_LINES = frozenset("\n\t")


def clean_text(value: str, *, multiline: bool = False) -> str:
    """NFC-normalized text without NUL, other control characters (newlines and tabs only where
    `multiline`), unpaired surrogates or non-characters; surrounding whitespace stripped."""
    for ch in value:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            raise ValueError("must not contain unpaired surrogate code points")
        category = unicodedata.category(ch)
        if category == "Cc" and not (multiline and ch in _ALLOWED_IN_LINES):
            what = "NUL bytes" if cp == 0 else f"control characters (U+{cp:04X})"
            raise ValueError(f"must not contain {what}")
        if category == "Cn" and (0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE):
            raise ValueError(f"must not contain non-characters (U+{cp:04X})")
    return unicodedata.normalize("NFC", value).strip()


def scrub_text(value: str, limit: int) -> str:
    """Text received from outside that is kept, not refused (what a webhook subscriber or an SMTP
    server answered): what `clean_text` would refuse is dropped (NUL, control characters but
    newline and tab, unpaired surrogates, non-characters), then at most `limit` characters."""
    kept = []
    for ch in value[: limit * 2]:  # bounded work: what is dropped leaves room for up to as much again
        cp = ord(ch)
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_IN_LINES) or category == "Cs":
            continue
        if category == "Cn" and (0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE):
            continue
        kept.append(ch)
    return unicodedata.normalize("NFC", "".join(kept))[:limit]


def screen_line(value: str) -> str:
    return clean_text(value)


def screen_lines(value: str) -> str:
    return clean_text(value, multiline=True)


def screen_form_lines(value: str) -> str:
    """Text of a form's textarea: browsers send its line breaks as CRLF (HTML form encoding)."""
    return clean_text(value.replace("\r\n", "\n"), multiline=True)


def _nonblank(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return value


def normalize_email(value: str) -> str:
    """The address as the mailer will use it: syntax checked by email-validator (no quoted or
    non-ASCII local parts, a dotted domain), the domain in ASCII (IDNA), lower case."""
    try:
        checked = validate_email(
            clean_text(value), check_deliverability=False, allow_smtputf8=False, test_environment=True
        )
    except EmailNotValidError as err:
        raise ValueError(f"not a deliverable email address: {err}") from err
    ascii_email = checked.ascii_email
    if ascii_email is None:  # only with allow_smtputf8, which is off: kept for the type checker
        raise ValueError("not a deliverable email address: it needs SMTPUTF8")
    return ascii_email.lower()


def at_most(limit: int) -> AfterValidator:
    """The length once normalized: NFC can lengthen text (U+0344 becomes two characters), and the
    column holds `limit` characters."""

    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters once normalized (NFC), not {len(value)}")
        return value

    return AfterValidator(check)


# A single line of text (names, titles, labels), 1..200 characters.
Name = Annotated[str, Field(max_length=200), AfterValidator(screen_line), AfterValidator(_nonblank), at_most(200)]
# A short single line that may be empty (labels).
Label = Annotated[str, Field(max_length=200), AfterValidator(screen_line), at_most(200)]
# Free text that may span lines (reasons, notes), at most 1000 characters.
Reason = Annotated[str, Field(max_length=1000), AfterValidator(screen_lines), at_most(1000)]
RequiredReason = Annotated[
    str, Field(min_length=1, max_length=1000), AfterValidator(screen_lines), AfterValidator(_nonblank)
]
# An email address the mailer accepts.
Email = Annotated[str, Field(max_length=320), AfterValidator(normalize_email)]
