"""The edge types every request body uses (domain/types.py): what `clean_text` refuses, keeps and
normalizes, code point by code point at each range's edges, and the limits measured once normalized."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from pydantic import BaseModel, ValidationError

from domain import types
from domain.types import Email, Label, Name, Reason, RequiredReason, at_most, clean_text, normalize_email

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\ud800", "must not contain unpaired surrogate code points"),  # the first surrogate
        ("a\udbffb", "must not contain unpaired surrogate code points"),
        ("a\udc00", "must not contain unpaired surrogate code points"),
        ("\udfff", "must not contain unpaired surrogate code points"),  # the last
        ("a\x00b", "must not contain NUL bytes"),
        ("a\x01b", "must not contain control characters (U+0001)"),
        ("a\x1fb", "must not contain control characters (U+001F)"),
        ("a\x7fb", "must not contain control characters (U+007F)"),
        ("a\x85b", "must not contain control characters (U+0085)"),
        ("a\x9fb", "must not contain control characters (U+009F)"),
        ("a\nb", "must not contain control characters (U+000A)"),  # a single line: no newline, no tab
        ("a\tb", "must not contain control characters (U+0009)"),
        ("a\rb", "must not contain control characters (U+000D)"),
        ("a\ufdd0b", "must not contain non-characters (U+FDD0)"),
        ("a\ufdefb", "must not contain non-characters (U+FDEF)"),
        ("a\ufffeb", "must not contain non-characters (U+FFFE)"),
        ("a\uffffb", "must not contain non-characters (U+FFFF)"),
        ("a\U0001fffeb", "must not contain non-characters (U+1FFFE)"),
        ("a\U0010ffffb", "must not contain non-characters (U+10FFFF)"),
    ],
)
def test_clean_text_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        clean_text(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "text",
    ["a\ud7ffb", "a\ue000b", "a\ufdcfb", "a\ufdf0b", "a\ufffdb", "a\U0001fffdb", "a\x20b", "a\xa0b", "Zoë 🙂"],
)
def test_clean_text_keeps_the_neighbours_of_each_refused_range(text: str) -> None:
    assert clean_text(text) == text


def test_clean_text_lines_keep_newlines_and_tabs_only() -> None:
    assert clean_text(" a\n\tb \n", multiline=True) == "a\n\tb"
    with pytest.raises(ValueError, match=r"U\+000D"):
        clean_text("a\r\nb", multiline=True)
    with pytest.raises(ValueError, match="NUL bytes"):
        clean_text("a\n\x00", multiline=True)
    with pytest.raises(ValueError, match="unpaired surrogate"):
        clean_text("a\n\ud800", multiline=True)


def test_clean_text_normalizes_and_strips() -> None:
    assert clean_text("  Mu\u0308ller\u3000") == "Müller"  # NFC, then the ideographic space stripped too
    assert clean_text("") == ""


class Body(BaseModel):
    name: Name | None = None
    label: Label | None = None
    reason: Reason | None = None
    required: RequiredReason | None = None
    email: Email | None = None
    short: Annotated[str, at_most(3)] | None = None


@pytest.mark.parametrize(
    ("field", "value", "kept"),
    [
        ("name", " Casey ", "Casey"),
        ("name", "x" * 200, "x" * 200),
        ("label", "", ""),
        ("label", "  ", ""),
        ("reason", "line 1\nline 2", "line 1\nline 2"),
        ("reason", "", ""),
        ("required", " why ", "why"),
        ("email", " Casey@Vendor.TEST ", "casey@vendor.test"),
        ("email", "casey@münchen.test", "casey@xn--mnchen-3ya.test"),
        ("short", "abc", "abc"),
    ],
)
def test_edge_types_accept(field: str, value: str, kept: str) -> None:
    assert getattr(Body.model_validate({field: value}), field) == kept


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "must not be blank"),
        ("name", "   ", "must not be blank"),
        ("name", "a\nb", "control characters"),
        ("name", "a\ud800", "unicode string"),  # pydantic refuses it first (clean_text too, above)
        ("name", "x" * 201, "at most 200 characters"),
        ("name", "\u0344" * 150, "at most 200 characters once normalized (NFC), not 300"),
        ("label", "a\x00", "NUL bytes"),
        ("reason", "\u0344" * 501, "at most 1000 characters once normalized (NFC), not 1002"),
        ("reason", "a\ud800", "unicode string"),
        ("required", " \n ", "must not be blank"),
        ("short", "abcd", "at most 3 characters once normalized (NFC), not 4"),
        ("email", "casey", "not a deliverable email address"),
        ("email", "câsey@vendor.test", "not a deliverable email address"),  # no SMTPUTF8 local part
        ("email", "casey@vendor.test\x00", "NUL bytes"),
    ],
)
def test_edge_types_refuse(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Body.model_validate({field: value})


def test_normalize_email_lowercases_the_whole_address() -> None:
    assert normalize_email("Pat.O'Neil@Gold.Example.COM") == "pat.o'neil@gold.example.com"


@pytest.mark.parametrize(
    ("received", "kept"),
    [
        ("ok", "ok"),
        ("o\x00k", "ok"),  # NUL dropped
        ("a\x07b\x9fc", "abc"),  # C0 and C1 controls dropped
        ("line 1\nline\t2", "line 1\nline\t2"),  # newline and tab kept
        ("x\ud800y", "xy"),  # an unpaired surrogate dropped
        ("a\ufdd0b\uffffc\U0001fffed", "abcd"),  # non-characters dropped, first and later planes
        ("e\u0301", "\u00e9"),  # normalised to NFC
        ("\ufdcf\ufdf0", "\ufdcf\ufdf0"),  # just outside the non-character block: kept
    ],
)
def test_scrub_text_keeps_what_clean_text_would_accept(received: str, kept: str) -> None:
    assert types.scrub_text(received, 100) == kept


def test_scrub_text_is_bounded() -> None:
    assert types.scrub_text("x" * 5000, 1000) == "x" * 1000
    assert types.scrub_text("\x00" * 2000 + "tail", 1000) == ""  # bounded work: at most twice the limit read
    assert types.scrub_text("\x00" * 999 + "kept", 1000) == "kept"


def test_form_text_reads_crlf_as_a_line_break() -> None:
    assert types.screen_form_lines("one\r\ntwo") == "one\ntwo"
    with pytest.raises(ValueError, match="control characters"):
        types.screen_form_lines("one\rtwo")  # a lone CR is no line break
