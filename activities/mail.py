"""Rendering (Jinja2, text + HTML) and sending (aiosmtplib) of outbox messages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent / "templates"
JOURNEYS = Path(__file__).resolve().parents[1] / "journeys"


def journey_templates(kind: str) -> dict[str, FileSystemLoader]:
    """Each journey's own templates of a kind (`mail`, `links`), by the convention
    `journeys/<name>/templates/<kind>/`, named `<name>/<template>` (e.g. `deal/approved.txt.j2`)."""
    return {
        folder.parent.parent.name: FileSystemLoader(folder)
        for folder in sorted(JOURNEYS.glob(f"*/templates/{kind}"))
        if folder.is_dir()
    }


def template_env() -> Environment:
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES), PrefixLoader(journey_templates("mail"))]),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def message_id(idempotency_key: str, recipient: str, template: str) -> str:
    """Deterministic Message-ID: a retried send is recognisably the same message."""
    digest = hashlib.sha256(f"{idempotency_key}|{recipient}|{template}".encode()).hexdigest()[:40]
    return f"<{digest}@camlights>"


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    # Files attached as given in the context's `attachments` ({filename, content_type, content}),
    # e.g. a QBR's iCalendar invite.
    attachments: list[dict[str, str]] = field(default_factory=list)


class Mailer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        env: Environment | None = None,
    ):
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls
        self.env = env or template_env()

    def render(self, journey: str, template: str, context: dict[str, Any], language: str = "en") -> Rendered:
        """`templates/<journey>/<template>.*.j2`, else the shared `templates/common/<template>.*.j2`;
        in `language` when the template has that variant (`<template>.<language>.*.j2`), else English."""
        known = self.env.list_templates()
        base = f"{journey}/{template}"
        if f"{base}.subject.j2" not in known:
            base = f"common/{template}"
        if language != "en" and f"{base}.{language}.subject.j2" in known:
            base = f"{base}.{language}"
        subject = self.env.get_template(f"{base}.subject.j2").render(**context).strip()
        text = self.env.get_template(f"{base}.txt.j2").render(**context)
        html = self.env.get_template(f"{base}.html.j2").render(**context)
        attachments = list(context.get("attachments") or [])
        return Rendered(subject=" ".join(subject.split()), text=text, html=html, attachments=attachments)

    def build(
        self, *, recipient: str, rendered: Rendered, msg_id: str, headers: dict[str, str] | None = None
    ) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = recipient
        msg["Subject"] = rendered.subject
        msg["Message-ID"] = msg_id
        msg["Date"] = formatdate(localtime=False)
        for k, v in (headers or {}).items():
            msg[k] = v
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        for item in rendered.attachments:
            maintype, _, subtype = item["content_type"].partition("/")
            params = dict(p.strip().split("=", 1) for p in subtype.split(";")[1:] if "=" in p)
            msg.add_attachment(
                item["content"].encode(),
                maintype=maintype,
                subtype=subtype.split(";")[0].strip(),
                filename=item["filename"],
                params=params,
            )
        return msg

    async def send(self, msg: EmailMessage) -> None:
        await aiosmtplib.send(
            msg,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            timeout=10,
        )
