"""The policy editor's form: the program policy as one labelled field per leaf (dotted names such
as `deal.approval_sla_days`, `onboarding.milestones.0.title`), read back into the policy's JSON,
validated by `ProgramPolicy` itself (errors per field), and the diff against the current version.
New policy sections (MDF, QBR...) appear here with no change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from domain.policy import ProgramPolicy

LIST_SEP = ","


@dataclass(frozen=True)
class Field:
    name: str  # dotted path
    value: str  # as shown in the input
    kind: str  # "bool" | "list" | "number" | "text"
    description: str = ""


def flatten(data: Any, prefix: str = "") -> list[Field]:
    """Every leaf of the policy's JSON, in order."""
    if isinstance(data, dict):
        out: list[Field] = []
        for key, value in data.items():
            out += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(data, list) and any(isinstance(v, dict) for v in data):
        return [f for i, v in enumerate(data) for f in flatten(v, f"{prefix}.{i}")]
    if isinstance(data, list):
        return [Field(prefix, f"{LIST_SEP} ".join(_show(v) for v in data), "list")]
    if isinstance(data, bool):
        return [Field(prefix, "true" if data else "false", "bool")]
    if isinstance(data, int | float):
        return [Field(prefix, _show(data), "number")]
    return [Field(prefix, "" if data is None else str(data), "text")]


def grouped(fields: list[Field]) -> list[tuple[str, list[Field]]]:
    """The fields by policy section (the first part of their name), in order."""
    groups: dict[str, list[Field]] = {}
    for f in fields:
        groups.setdefault(f.name.split(".", 1)[0] if "." in f.name else "program", []).append(f)
    return list(groups.items())


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse_scalar(text: str, kind: str) -> Any:
    text = text.strip()
    if kind == "bool":
        return {"true": True, "false": False}.get(text.lower(), text)
    if kind == "number":
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
        return text  # the model says what is wrong with it
    return text


def _parse_list(text: str) -> list[Any]:
    return [_parse_scalar(part, "number") for part in text.split(LIST_SEP) if part.strip()]


def unflatten(current: Any, form: dict[str, str], prefix: str = "") -> Any:
    """The policy's JSON with every leaf taken from the form (a leaf missing from the form keeps
    its current value), shaped like `current`."""
    if isinstance(current, dict):
        return {k: unflatten(v, form, f"{prefix}.{k}" if prefix else str(k)) for k, v in current.items()}
    if isinstance(current, list) and any(isinstance(v, dict) for v in current):
        return [unflatten(v, form, f"{prefix}.{i}") for i, v in enumerate(current)]
    if prefix not in form:
        return current
    if isinstance(current, list):
        return _parse_list(form[prefix])
    if current is None:  # an optional setting left empty (e.g. a tier without a promotion score)
        text = form[prefix].strip()
        return None if not text else _parse_scalar(text, "number")
    kind = "bool" if isinstance(current, bool) else "number" if isinstance(current, int | float) else "text"
    return _parse_scalar(form[prefix], kind)


@dataclass(frozen=True)
class Checked:
    policy: ProgramPolicy | None
    errors: dict[str, str]  # field name ("" for the whole policy) -> message
    proposed: dict[str, Any]


def check(current: dict[str, Any], form: dict[str, str]) -> Checked:
    proposed = unflatten(current, form)
    try:
        return Checked(ProgramPolicy.model_validate(proposed), {}, proposed)
    except ValidationError as err:
        errors: dict[str, str] = {}
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            msg = str(e["msg"]).removeprefix("Value error, ")
            errors.setdefault(_leaf_of(loc, form, msg), msg)
        return Checked(None, errors, proposed)


def _leaf_of(loc: str, form: dict[str, str], msg: str) -> str:
    """The form field an error belongs to: the leaf itself; a rule of a whole section goes to the
    field its message starts with ('deal.escalation_days must be ...'), else to the form ('')."""
    if loc in form:
        return loc
    named = msg.split(" ", 1)[0].rstrip(":")
    if named in form:
        return named
    parts = loc.split(".")
    while parts:  # a list element's error belongs to the list field
        parts.pop()
        if ".".join(parts) in form:
            return ".".join(parts)
    return ""


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, old, new) of every leaf that changed."""
    old = {f.name: f.value for f in flatten(before)}
    new = {f.name: f.value for f in flatten(after)}
    return [
        (name, old.get(name, "—"), new.get(name, "—"))
        for name in dict.fromkeys([*old, *new])
        if old.get(name) != new.get(name)
    ]


def encode(proposed: dict[str, Any]) -> str:
    return json.dumps(proposed, separators=(",", ":"), sort_keys=True)
