"""journeys.attention (a journey waiting for ops); customer keys re-computed with the Unicode-aware
normalization (NFKC, invisible characters dropped, casefold, dotted legal forms)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("journeys", sa.Column("attention", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index(
        "ix_journeys_needs_attention", "journeys", ["state"], postgresql_where=sa.text("attention is not null")
    )
    # Deals registered before the new normalization keep their old keys otherwise, and a look-alike
    # registration would not find them: re-key the open ones with the same pure functions (copied
    # below as the deal journey had them: a migration is frozen).
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "select id, customer_name, customer_domain from deals where state in ('pending_approval', "
            "'conflict_review', 'approved')"
        )
    ).fetchall()
    for deal_id, name, domain in rows:
        bind.execute(
            sa.text("update deals set customer_name_key = :n, customer_key = :d where id = :id"),
            {"n": normalize_company_name(name), "d": normalize_domain(domain), "id": deal_id},
        )


def downgrade() -> None:
    op.drop_index("ix_journeys_needs_attention", table_name="journeys")
    op.drop_column("journeys", "attention")


# ------------------------------------------------------------------ frozen copy of the deal's customer keys

_LEGAL = {
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "company",
    "llc",
    "llp",
    "lp",
    "ltd",
    "limited",
    "plc",
    "gmbh",
    "ag",
    "kg",
    "kgaa",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "bv",
    "nv",
    "oy",
    "oyj",
    "ab",
    "as",
    "aps",
    "pty",
    "kk",
    "pte",
    "sl",
    "sro",
    "ltda",
    "the",
}

# Default-ignorable code points that are not in category Cf (which is dropped as a whole): the combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and standard variation selectors.
_IGNORABLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0"
    + "".join(map(chr, range(0x180B, 0x1810)))
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
_APOSTROPHES = "'\u2018\u2019\u02bc`"  # dropped, not spaced: "McDonald's" == "McDonalds"
_INITIALS = re.compile(r"\b([^\W\d_])[./](?=[^\W\d_]\b)")  # "s.a.s." -> "sas.", "a/s" -> "as"


def _fold(text: str) -> str:
    """NFKC + casefold, without invisible characters (zero-width, soft hyphen, BOM, bidi marks...)."""
    if text.isascii():
        return text.casefold()
    text = "".join(
        c for c in unicodedata.normalize("NFKC", text) if c not in _IGNORABLE and unicodedata.category(c) != "Cf"
    )
    return unicodedata.normalize("NFKC", text.casefold())


def normalize_company_name(name: str) -> str:
    """'The ACME, Inc.' -> 'acme'; 'Müller GmbH & Co. KG' -> 'müller'; 'Ｇｌｏ\u200bｂｅｘ S.A.' -> 'globex'.

    Accents stay significant ('müller' != 'muller'); look-alikes from other scripts (Cyrillic 'а') are not
    folded (that needs a UTS #39 confusables skeleton)."""
    text = _INITIALS.sub(r"\1", _fold(name))
    text = "".join("" if c in _APOSTROPHES else c if unicodedata.category(c)[0] in "LMN" else " " for c in text)
    words = text.split()
    words = [w for i, w in enumerate(words) if w != "and" or not 0 < i < len(words) - 1]  # '&' == 'and'
    kept = [w for w in words if w not in _LEGAL]
    return " ".join(kept or words)


def normalize_domain(domain: str) -> str:
    """'HTTPS://WWW.Shop.Acme.co.uk/x' -> 'acme.co.uk' (the registrable domain, IDN labels in punycode:
    'münchen.de' -> 'xn--mnchen-3ya.de')."""
    d = _fold(domain).strip().replace("\u3002", ".")  # NFKC already maps full-width dots to '.' or '。'
    d = re.sub(r"^([a-z][a-z0-9+.-]*:)?//", "", d)
    d = re.split(r"[/?#\\]", d, maxsplit=1)[0].rpartition("@")[2].split(":")[0].rstrip(".")
    d = d.removeprefix("www.")
    if not d.isascii():
        d = ".".join(_idna_label(label) for label in d.split("."))
    return _psl().privatesuffix(d) or d


def _idna_label(label: str) -> str:
    """One label in its ASCII (punycode) form, or unchanged when IDNA refuses it."""
    if label.isascii():
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        return label


_PSL: PublicSuffixList | None = None


def _psl() -> PublicSuffixList:
    global _PSL
    if _PSL is None:
        from publicsuffixlist import PublicSuffixList

        _PSL = PublicSuffixList()
    return _PSL
