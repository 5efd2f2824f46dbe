"""Every text of the partner portal (its templates, the journeys' portal templates and modules)
has a translation in every catalog, and the catalogs' placeholders match their texts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from api.portal.i18n import LOCALE_DIR, Translator, catalog, languages

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
JINJA = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}


def portal_texts() -> set[str]:
    texts = set()
    templates = [*(ROOT / "api/portal/templates").glob("*.j2"), *ROOT.glob("journeys/*/templates/portal/*.j2")]
    for path in templates:
        texts |= {msg for _, msg, _, _ in extract_from_file("jinja2", str(path), options=JINJA)}
    for path in [*(ROOT / "api/portal").glob("*.py"), *ROOT.glob("journeys/*/portal.py")]:
        texts |= {msg for _, msg, _, _ in extract_from_file("python", str(path)) if isinstance(msg, str)}
    return texts


def test_english_and_german_are_there():
    assert languages() == ("en", "de")
    assert (LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po").is_file()


@pytest.mark.parametrize("language", languages())
def test_every_portal_text_has_a_translation(language):
    texts = portal_texts()
    assert len(texts) > 80  # the extraction sees the templates and modules
    missing = sorted(texts - set(catalog(language)))
    assert not missing, f"api/portal/locale/{language}: no translation of {missing}"
    for text in texts:
        assert set(re.findall(r"%\(\w+\)s", text)) == set(re.findall(r"%\(\w+\)s", catalog(language)[text])), text


def test_formats_follow_the_locale_and_the_time_zone():
    from datetime import UTC, date, datetime

    de, en = Translator("de", "Europe/Berlin"), Translator("en", "UTC")
    assert de.money(2_500_000, "USD") == "25.000,00\xa0$" and en.money(2_500_000, "USD") == "$25,000.00"
    assert de.number(1234.5) == "1.234,5" and en.number(1234.5) == "1,234.5"
    assert de.percent(1.5) == "150\xa0%" and en.percent(1.5) == "150%"
    moment = datetime(2027, 3, 31, 22, 30, tzinfo=UTC)
    assert de.datetime(moment) == "01.04.2027, 00:30:00" and en.datetime(moment) == "Mar 31, 2027, 10:30:00\u202fPM"
    assert de.date(date(2027, 3, 31)) == "31.03.2027" and de.datetime(None) == "" and de.date(None) == ""
    assert de.gettext("Deal registered.") == "Deal registriert." and de.gettext("unknown text") == "unknown text"
    assert de.gettext("%(name)s was invited.", name="Dana") == "Dana wurde eingeladen."
    assert Translator("xx").gettext("Home") == "Home"  # no catalog: as written
