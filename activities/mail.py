"""Rendering (Jinja2, text + HTML) and sending (aiosmtplib) of outbox messages."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
from dataclasses import dataclass, field
from email import charset as _charset
from email import encoders
from email.generator import BytesGenerator
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
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
        auto_reload=False,  # a template is read once per process, not checked on disk for every email
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
    ) -> Message:
        """The MIME message: text and HTML alternatives (in `multipart/mixed` with the attachments,
        when there are any). Built with the `compat32` classes, which neither parse nor refold a
        header: `EmailMessage` did both, for every header of every email, at several times the
        cost of the rest of a send (bench/README.md, issue 26). Non-ASCII headers are RFC 2047
        words, a display name encoded apart from its address."""
        body = MIMEMultipart("alternative")
        body.attach(_text(rendered.text, "plain"))
        body.attach(_text(rendered.html, "html"))
        msg: Message = body
        if rendered.attachments:
            msg = MIMEMultipart("mixed")
            msg.attach(body)
            for item in rendered.attachments:
                msg.attach(_attachment(item))
        msg["From"] = _address(self.sender)
        msg["To"] = _address(recipient)
        msg["Subject"] = rendered.subject
        msg["Message-ID"] = msg_id
        msg["Date"] = formatdate(localtime=False)
        for k, v in (headers or {}).items():
            msg[k] = v
        return msg

    async def send(self, msg: Message) -> None:
        """Send one message. With a pool, on an open connection kept from an earlier send when
        there is one: a connection the server closed while it was idle fails at its first command
        (before anything was delivered) and the message goes once more over a new connection; any
        other failure closes the connection and is raised, as without a pool. (A disconnect later
        in the exchange, once the server may have kept the message, is the at-least-once window a
        Temporal retry of the send has as well: the message goes again with the same Message-ID.)"""
        if self.pool_size <= 0:
            async with aiosmtplib.SMTP(**self._server()) as once:
                await _deliver(once, msg)
            return
        loop = asyncio.get_running_loop()
        smtp = self._take(loop)
        if smtp is not None:
            try:
                await _deliver(smtp, msg)
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
            await _deliver(smtp, msg)
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


class _WirePolicy(Compat32):
    """`compat32` on the wire (CRLF), except that a header value without a space is never folded:
    `EmailMessage` kept such a value (a long `X-CAMLights-Key`) on its header's line, where
    `compat32` would move it to the next one (and a reader would see it with a leading space)."""

    def fold(self, name: str, value: str) -> str:
        return f"{name}: {value}{self.linesep}" if _unbroken(value) else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        return f"{name}: {value}{self.linesep}".encode() if _unbroken(value) else super().fold_binary(name, value)


def _unbroken(value: Any) -> bool:
    return isinstance(value, str) and value.isascii() and " " not in value and "\n" not in value


_WIRE = _WirePolicy(linesep="\r\n")


async def _deliver(smtp: aiosmtplib.SMTP, msg: Message) -> None:
    """`smtp.send_message(msg)` with our own flattening (`_WIRE`): 8-bit bodies as they are when
    the server takes 8BITMIME (re-encoded as base64 when it does not), SMTPUTF8 asked for an
    address that is not ASCII (refused when the server cannot)."""
    if smtp.is_ehlo_or_helo_needed:
        await smtp.ehlo()
    sender = parseaddr(msg["From"])[1]
    recipients = [parseaddr(msg["To"])[1]]
    options: list[str] = []
    if not (sender + "".join(recipients)).isascii():
        if not smtp.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("a non-ASCII address, and the server has no SMTPUTF8")
        options.append("SMTPUTF8")
    eight_bit = smtp.supports_extension("8bitmime")
    if eight_bit:
        options.append("BODY=8BITMIME")
    out = io.BytesIO()
    BytesGenerator(out, policy=_WIRE if eight_bit else _WIRE.clone(cte_type="7bit")).flatten(msg)
    await smtp.sendmail(sender, recipients, out.getvalue(), mail_options=options)


# A text part's body as it is (7bit, or 8bit: every SMTP server we send to takes 8BITMIME, and
# the generator re-encodes for one that does not), or base64 when a line is too long for SMTP.
_UTF8 = _charset.Charset("utf-8")
_UTF8.body_encoding = None  # type: ignore[assignment]  # typeshed: int; None is 'as it is'
_UTF8_BASE64 = _charset.Charset("utf-8")
_UTF8_BASE64.body_encoding = _charset.BASE64


def _text(content: str, subtype: str) -> Message:
    """A `text/<subtype>` part in UTF-8, its lines ending in a newline as `set_content` makes them."""
    text = "\n".join(content.splitlines()) + "\n"
    part = MIMENonMultipart("text", subtype)
    long_line = max(map(len, text.encode().splitlines()), default=0) > 998
    part.set_payload(text, _UTF8_BASE64 if long_line else _UTF8)
    return part


def _attachment(item: dict[str, str]) -> Message:
    """A file from the context's `attachments`, base64, named, with its content type's parameters
    (e.g. `text/calendar; method=REQUEST`)."""
    maintype, _, rest = item["content_type"].partition("/")
    subtype, *params = (p.strip() for p in rest.split(";"))
    part = MIMEBase(maintype, subtype)
    for name, value in (p.split("=", 1) for p in params if "=" in p):
        part.set_param(name, value)
    part.set_payload(item["content"].encode())
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=item["filename"])
    return part


def _address(value: str) -> str:
    """An address header's value: the display name RFC 2047-encoded when it is not ASCII."""
    name, address = parseaddr(value)
    return formataddr((name, address)) if name else value
