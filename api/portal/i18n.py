"""The partner portal's languages: one Babel catalog per language,
`api/portal/locale/<language>/LC_MESSAGES/messages.po`, read at start-up (no compile step: a fresh
checkout runs as is), and the formats of each locale (dates and times in the user's time zone,
numbers, money). Adding a language is adding its catalog (docs/portal.md)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# Each journey may carry its own words: `journeys/<name>/locale/<language>/LC_MESSAGES/messages.po`,
# merged over the platform's catalog (a journey's strings stay in its own package).
JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"
DEFAULT = "en"


def languages() -> tuple[str, ...]:
    """The languages with a catalog (English first)."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / "messages.po").is_file())
    return tuple(sorted(found, key=lambda lang: lang != DEFAULT))


def N_(message: str) -> str:  # noqa: N802  (the catalogs' marker: extracted, translated when shown)
    """Marks a text for the catalogs where it is written, translated where it is shown."""
    return message


@functools.cache
def catalog(language: str) -> dict[str, str]:
    """msgid -> translation of the language (untranslated and fuzzy entries left out): the
    platform's catalog, then each journey's own."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return {}
    words: dict[str, str] = {}
    for po_path in [path, *sorted(JOURNEYS.glob(f"*/locale/{language}/LC_MESSAGES/messages.po"))]:
        with po_path.open("rb") as po:
            messages = read_po(po, locale=language)
        words.update({str(m.id): str(m.string) for m in messages if m.id and m.string and not m.fuzzy})
    return words


@dataclass(frozen=True)
class Translator:
    """Words and formats for one person: their language and time zone."""

    language: str = DEFAULT
    time_zone: str = "UTC"

    def gettext(self, message: str, **values: object) -> str:
        text = catalog(self.language).get(message, message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self.gettext(singular if n == 1 else plural)
        return text % {"num": n, **values}

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, "medium", tzinfo=self.zone, locale=self.language)

    def date(self, value: date | None) -> str:
        return "" if value is None else format_date(value, "medium", locale=self.language)

    def number(self, value: float | int | Decimal) -> str:
        return format_decimal(value, locale=self.language)

    def percent(self, share: float) -> str:
        """A share (1.5) as the locale writes it: 150% in English, 150 % in German."""
        return format_percent(share, locale=self.language)

    def money(self, minor: int, currency: str) -> str:
        return format_currency(Decimal(minor) / 100, currency, locale=self.language)

    def context(self) -> dict[str, object]:
        """What a portal template is rendered with: the i18n extension's callables and the formats."""
        return {
            "gettext": self.gettext,
            "ngettext": self.ngettext,
            "lang": self.language,
            "fmt_datetime": self.datetime,
            "fmt_date": self.date,
            "fmt_number": self.number,
            "fmt_money": self.money,
        }
