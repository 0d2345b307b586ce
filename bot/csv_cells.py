"""CSV files a spreadsheet opens safely (OWASP's CSV-injection rule).

A cell whose text begins with `=`, `+`, `-`, `@`, a tab or a carriage return — or their
full-width forms, or any of these after leading blanks — is read by Excel, LibreOffice and
Google Sheets as a formula. Such a cell gets a leading apostrophe, so it is shown as text
(`+15551234567` becomes `'+15551234567`), and every cell is written between double quotes
(quotes inside doubled). Numbers and other cells are written as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")  # ＝ ＋ － ＠


def neutralise(value: Any) -> Any:
    """`value` unchanged, or `'` + value when a spreadsheet would start a formula with it."""
    if isinstance(value, str) and value and (
            value[0] in FORMULA_START or value.lstrip()[:1] in FORMULA_START):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer for files people open in a spreadsheet: every cell quoted and neutralised."""

    def __init__(self, fh: TextIO) -> None:
        self._w = csv.writer(fh, quoting=csv.QUOTE_ALL)

    def writerow(self, row: Iterable[Any]) -> None:
        self._w.writerow([neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)

    def writerecord(self, columns: Sequence[str], record: Mapping[str, Any]) -> None:
        """One row of `record`'s values in `columns` order (missing ones empty)."""
        self.writerow(record.get(c, "") for c in columns)
