"""Actor strings (domain/actors.py): one format, compared by equality, never by prefix."""

from __future__ import annotations

import pytest

from domain import actors
from domain.actors import SYSTEM, ActorError, ActorKind

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (actors.ops("key-1"), "ops:key-1"),
        (actors.ops("link-abc"), "ops:link-abc"),
        (actors.cam(7), "cam:7"),
        (actors.cam("7"), "cam:7"),
        (actors.partner(123), "partner:123"),
        (actors.journey("onboarding-P1"), "journey:onboarding-P1"),
        (SYSTEM, "system"),
    ],
)
def test_builders(built: str, expected: str) -> None:
    assert built == expected


@pytest.mark.parametrize(
    ("actor", "kind", "ident"),
    [
        ("ops:key-1", ActorKind.ops, "key-1"),
        ("ops:link-abc", ActorKind.ops, "link-abc"),
        ("cam:123", ActorKind.cam, "123"),
        ("partner:P-9", ActorKind.partner, "P-9"),
        ("journey:deal-D-42", ActorKind.journey, "deal-D-42"),
        ("journey:a:b", ActorKind.journey, "a:b"),  # only the first ':' separates
        ("system", ActorKind.system, ""),
    ],
)
def test_parse_valid(actor: str, kind: ActorKind, ident: str) -> None:
    assert actors.parse(actor) == (kind, ident)
    assert actors.kind_of(actor) == kind


@pytest.mark.parametrize("built", [actors.ops(5), actors.cam("c1"), actors.partner(9), actors.journey("w-1")])
def test_builders_parse_back(built: str) -> None:
    kind, ident = actors.parse(built)
    assert f"{kind}:{ident}" == built


@pytest.mark.parametrize(
    "actor",
    [
        "opsx:1",  # unknown kind that starts like a known one
        "cam:",  # no id
        "partner",  # no separator
        "system:policy",  # system takes no id
        "system:",
        "",
        ":1",
        "ops",
        "OPS:1",  # kinds are lower case
        "admin:1",
        " cam:1",
    ],
)
def test_parse_invalid(actor: str) -> None:
    with pytest.raises(ActorError, match="is not an actor"):
        actors.parse(actor)
    assert actors.kind_of(actor) is None


def test_actor_error_is_a_value_error() -> None:
    """Pydantic validators may raise it directly."""
    assert issubclass(ActorError, ValueError)


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("ops:key-1", True),
        (actors.ops("link-1"), True),
        ("cam:1", False),
        ("partner:1", False),
        ("system", False),
        ("journey:ops", False),
        ("opsx:1", False),
        ("ops:", False),
        ("ops", False),
    ],
)
def test_is_ops(actor: str, expected: bool) -> None:
    assert actors.is_ops(actor) is expected


def test_prefix_look_alike_is_another_actor() -> None:
    """'partner:123abc' starts with partner('123') but is a different partner."""
    look_alike = "partner:123abc"
    assert look_alike.startswith(actors.partner("123"))
    assert look_alike != actors.partner("123")
    assert actors.parse(look_alike) == (ActorKind.partner, "123abc")
    assert actors.parse(look_alike)[1] != actors.parse(actors.partner("123"))[1]
