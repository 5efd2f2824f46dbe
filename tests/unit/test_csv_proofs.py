"""CSV proofs as reviewers download them: a cell a spreadsheet would run as a formula is written as
text (a leading apostrophe), a plain number stays a number, the rows and the delimiter stay as sent."""

from __future__ import annotations

import pytest

from journeys.mdf.domain import defuse_cell, defuse_csv

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("cell", "served"),
    [
        ('=HYPERLINK("http://x.test")', '\'=HYPERLINK("http://x.test")'),
        ("+1+cmd", "'+1+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcalc", "'\tcalc"),
        ("\rcalc", "'\rcalc"),
        ("-12", "-12"),  # plain numbers stay numbers
        ("+3.5", "+3.5"),
        ("-4,25", "-4,25"),
        ("Ada = host", "Ada = host"),  # a sign inside the text is no formula
        ("", ""),
    ],
)
def test_a_formula_leading_cell_is_served_as_text(cell: str, served: str) -> None:
    assert defuse_cell(cell) == served


def test_rows_delimiter_and_line_ends_stay_as_sent() -> None:
    assert defuse_csv(b"name,email\r\nAda,=1+2\r\n") == b"name,email\r\nAda,'=1+2\r\n"
    assert defuse_csv(b"name;seats\n@Bob;-3\n") == b"name;seats\n'@Bob;-3\n"
    assert defuse_csv("\ufeffname,n\n=x,1\n".encode()) == "\ufeffname,n\n'=x,1\n".encode()
