"""Cells of the CSV files the workspace offers (the portfolio, CAM effectiveness): a cell a
spreadsheet would run as a formula (it starts with =, +, -, @, a tab or a carriage return) gets a
leading quote."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str | int | float | None) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text
