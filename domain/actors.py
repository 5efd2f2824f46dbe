"""Who did something: one actor format everywhere, compared by equality, never by prefix.

ops:<api key id>        an ops user (or an ops decision link: ops:link-<link id>)
cam:<cam id>            a Channel Account Manager
partner:<partner id>    the partner itself
system                  the program policy acting on its own (auto-approval, expiry, ...)
journey:<workflow id>   another journey (e.g. the first deal marking an onboarding milestone)
"""

from __future__ import annotations

from enum import StrEnum

SYSTEM = "system"


class ActorKind(StrEnum):
    ops = "ops"
    cam = "cam"
    partner = "partner"
    system = "system"
    journey = "journey"


class ActorError(ValueError):
    """Not an actor in the format above."""


def ops(key_id: object) -> str:
    return f"ops:{key_id}"


def cam(cam_id: object) -> str:
    return f"cam:{cam_id}"


def partner(partner_id: object) -> str:
    return f"partner:{partner_id}"


def journey(workflow_id: str) -> str:
    return f"journey:{workflow_id}"


def parse(actor: str) -> tuple[ActorKind, str]:
    """'cam:123' -> (ActorKind.cam, '123'); 'system' -> (ActorKind.system, '')."""
    if actor == SYSTEM:
        return ActorKind.system, ""
    kind, sep, ident = actor.partition(":")
    if not sep or not ident or kind not in ActorKind.__members__ or kind == ActorKind.system:
        raise ActorError(
            f"{actor!r} is not an actor (expected ops:<id>, cam:<id>, partner:<id>, system or journey:<workflow id>)"
        )
    return ActorKind(kind), ident


def kind_of(actor: str) -> ActorKind | None:
    """The actor's kind, or None when the string is not an actor."""
    try:
        return parse(actor)[0]
    except ActorError:
        return None


def is_ops(actor: str) -> bool:
    return kind_of(actor) == ActorKind.ops
