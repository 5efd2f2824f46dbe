"""What a service refuses, in the domain's words. Services (journeys/<name>/service.py and the
platform's) raise these; one mapping (api/errors.py) answers each as an HTTP status with a JSON
body, and the workspace shows the same text as a message. Nothing here knows about HTTP."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """A refusal: `detail` says what was wrong, in words a user can act on."""

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class NotFound(DomainError):
    """The thing named does not exist, or the caller may not know it exists (404)."""


class Conflict(DomainError):
    """The request is valid, but the thing is not in a state that allows it (409)."""


class Refused(DomainError):
    """The caller may not do this (403)."""


class Invalid(DomainError):
    """The request breaks a rule of the program that the edge types cannot see (422)."""


class Gone(DomainError):
    """It existed and can no longer be used, e.g. an old one-click link (410)."""


class TooLarge(DomainError):
    """What was sent is over a limit of the program, e.g. a file over the policy's size (413)."""


class Unsupported(DomainError):
    """What was sent is of a kind the program does not take, e.g. a file's content type (415)."""


class Unavailable(DomainError):
    """Something the request needs does not answer or is not configured now; retry later (503)."""


class TimedOut(DomainError):
    """Something the request needs did not answer in time; it may still apply (504)."""


class Pending(DomainError):
    """Taken, not recorded yet: it will apply; `headers` may say where to watch it (202). Not a
    refusal, but the caller gets no result now, so it travels the same way."""
