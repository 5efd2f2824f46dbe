"""What a sent email looks like on the wire (issue 26: the message is built with the `compat32`
classes, not `EmailMessage`, which parsed and refolded every header of every email). Sent through
the real SMTP sink with a mail folder, read back raw and parsed as a mail client would."""

from __future__ import annotations

import email
import email.policy
import os

import pytest

from activities.mail import Mailer, Rendered
from worker.services import SmtpSink

LONG_KEY = "deal-123e4567-e89b-12d3-a456-426614174000:approval_request:" + "0123456789abcdef" * 4
ICS = "BEGIN:VCALENDAR\r\nSUMMARY:Überprüfung Q3\r\nEND:VCALENDAR\r\n"


@pytest.fixture
def sink(tmp_path):
    sink = SmtpSink(mail_dir=tmp_path).start()
    yield sink
    sink.stop()


@pytest.mark.parametrize("pool_size", [0, 2])
async def test_an_email_reads_back_as_written(sink, tmp_path, pool_size):
    mailer = Mailer(
        host=sink.host, port=sink.port, sender="CAM Lights Überblick <no-reply@vendor.test>", pool_size=pool_size
    )
    rendered = Rendered(
        subject="Deal genehmigt: Müller & Söhne — geschützt bis 2027-03-01, bitte prüfen Sie die Angaben",
        text="Grüße — “Acme”\nZeile zwei",
        html="<p>" + "ü" * 1200 + "</p>",  # a line too long for SMTP as it is
        attachments=[{"filename": "qbr.ics", "content_type": "text/calendar; method=REQUEST", "content": ICS}],
    )
    msg = mailer.build(
        recipient="owner@partner.test",
        rendered=rendered,
        msg_id="<wire@camlights>",
        headers={"X-CAMLights-Key": LONG_KEY, "X-CAMLights-Template": "approved"},
    )
    await mailer.send(msg)

    (raw_file,) = tmp_path.glob("*.eml")
    raw = raw_file.read_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998, "a line longer than SMTP allows"
    got = email.message_from_bytes(raw, policy=email.policy.default)
    assert got["Subject"] == rendered.subject  # every space kept (EmailMessage's refold lost one)
    assert got["X-CAMLights-Key"] == LONG_KEY  # not folded onto a line of its own
    assert got["X-CAMLights-Template"] == "approved"
    assert got["From"].addresses[0].display_name == "CAM Lights Überblick"
    assert got["From"].addresses[0].addr_spec == "no-reply@vendor.test"
    assert got["To"] == "owner@partner.test" and got["Message-ID"] == "<wire@camlights>" and got["Date"]
    assert got.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Grüße — “Acme”\nZeile zwei\n"
    assert got.get_body(("html",)).get_content().strip() == rendered.html
    (ics,) = list(got.iter_attachments())
    assert (ics.get_filename(), ics.get_content_type(), ics.get_param("method")) == (
        "qbr.ics",
        "text/calendar",
        "REQUEST",
    )
    assert ics.get_payload(decode=True).decode() == ICS
    assert sink.messages[-1]["X-Envelope-To"] == "owner@partner.test"


async def test_an_ascii_email_is_plain_7bit(sink, tmp_path):
    mailer = Mailer(host=sink.host, port=sink.port, sender="no-reply@vendor.test")
    msg = mailer.build(
        recipient="a@partner.test", rendered=Rendered(subject="Hi", text="Hello", html="<p>Hello</p>"), msg_id="<a@x>"
    )
    await mailer.send(msg)
    (raw_file,) = tmp_path.glob("*.eml")
    raw = raw_file.read_bytes()
    assert b"Content-Transfer-Encoding: 7bit" in raw and b"Hello\r\n" in raw and b"base64" not in raw


async def test_the_sink_process_keeps_each_message_in_arrival_order(tmp_path):
    """The benchmarks' sink (worker/services.py `SmtpSinkProcess`): in a process of its own,
    each message a whole `.eml` file, read back in the order it arrived, cleared between runs."""
    import threading

    from worker.services import SmtpSinkProcess, port_is_open

    threads = threading.active_count()
    sink = SmtpSinkProcess(tmp_path / "mail").start()
    try:
        assert threading.active_count() == threads, "the sink must not serve from a thread of this process"
        assert sink.pid != os.getpid()
        mailer = Mailer(host=sink.host, port=sink.port, sender="no-reply@vendor.test", pool_size=1)
        for i in range(3):
            rendered = Rendered(subject=f"n{i}", text="Hello", html="<p>Hello</p>")
            await mailer.send(mailer.build(recipient="a@partner.test", rendered=rendered, msg_id=f"<m{i}@x>"))
        assert sink.counted == 3
        assert [m["Message-ID"] for m in sink.messages] == ["<m0@x>", "<m1@x>", "<m2@x>"]
        times = [at for at, _ in sink.received]
        assert times == sorted(times)
        assert not list((tmp_path / "mail").glob(".*")), "a half-written message was left in the folder"
        sink.clear()
        assert sink.counted == 0 and sink.messages == []
        await mailer.send(mailer.build(recipient="a@partner.test", rendered=rendered, msg_id="<m3@x>"))
        assert [m["Message-ID"] for m in sink.messages] == ["<m3@x>"]
    finally:
        sink.stop()
    assert not port_is_open(sink.host, sink.port)
