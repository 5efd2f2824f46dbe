"""Rendering (Jinja2, text + HTML) and sending (aiosmtplib) of outbox messages."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

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
        pool_size: int = 0,
        pool_idle_seconds: float = 30.0,
    ):
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls
        self.env = env or template_env()
        # Open SMTP connections kept between sends (0: one connection per email), each reused
        # while it has been idle less than `pool_idle_seconds`: (connection, idle since, its loop).
        self.pool_size, self.pool_idle_seconds = pool_size, pool_idle_seconds
        self._idle: list[tuple[aiosmtplib.SMTP, float, asyncio.AbstractEventLoop]] = []

    def _exists(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except TemplateNotFound:
            return False
        return True

    def render(self, journey: str, template: str, context: dict[str, Any], language: str = "en") -> Rendered:
        """`templates/<journey>/<template>.*.j2`, else the shared `templates/common/<template>.*.j2`;
        in `language` when the template has that variant (`<template>.<language>.*.j2`), else English.
        (Each name is looked up by itself: listing every template walked the template folders on
        every email.)"""
        base = f"{journey}/{template}"
        if not self._exists(f"{base}.subject.j2"):
            base = f"common/{template}"
        if language != "en" and self._exists(f"{base}.{language}.subject.j2"):
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
        """Send one message. With a pool, on an open connection kept from an earlier send when
        there is one: a connection the server closed while it was idle fails at its first command
        (before anything was delivered) and the message goes once more over a new connection; any
        other failure closes the connection and is raised, as without a pool. (A disconnect later
        in the exchange, once the server may have kept the message, is the at-least-once window a
        Temporal retry of the send has as well: the message goes again with the same Message-ID.)"""
        if self.pool_size <= 0:
            await aiosmtplib.send(msg, **self._server())
            return
        loop = asyncio.get_running_loop()
        smtp = self._take(loop)
        if smtp is not None:
            try:
                await smtp.send_message(msg)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                smtp.close()  # closed by the server while idle: nothing was sent, a new connection
            except BaseException:
                smtp.close()
                raise
            else:
                await self._give_back(smtp, loop)
                return
        smtp = aiosmtplib.SMTP(**self._server())
        try:
            await smtp.connect()
            await smtp.send_message(msg)
        except BaseException:
            smtp.close()
            raise
        await self._give_back(smtp, loop)

    @property
    def open_connections(self) -> int:
        """Connections kept open for the next emails (as far as this side knows)."""
        return sum(smtp.is_connected for smtp, _, _ in self._idle)

    def _server(self) -> dict:
        """Where and how to connect: the same for a one-off send and a pooled connection."""
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "start_tls": self.starttls,
            "timeout": 10,
        }

    def _take(self, loop: asyncio.AbstractEventLoop) -> aiosmtplib.SMTP | None:
        """The most recently used open connection of this event loop; expired ones are closed."""
        while self._idle:
            smtp, since, owner = self._idle.pop()
            if owner is loop and smtp.is_connected and time.monotonic() - since < self.pool_idle_seconds:
                return smtp
            with contextlib.suppress(Exception):  # its loop may be gone (a test's)
                smtp.close()
        return None

    async def _give_back(self, smtp: aiosmtplib.SMTP, loop: asyncio.AbstractEventLoop) -> None:
        if len(self._idle) < self.pool_size:
            self._idle.append((smtp, time.monotonic(), loop))
            return
        with contextlib.suppress(Exception):  # the pool is full: this one says goodbye
            await smtp.quit()
        smtp.close()
