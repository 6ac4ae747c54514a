"""CSV cells that are safe to open in a spreadsheet, and how the importer reads them back.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may run as a
formula in Excel, LibreOffice or Google Sheets (CSV injection). Which characters split a
.csv into cells depends on the spreadsheet and its locale — Norwegian Excel splits on
``;``, others on ``,`` or a tab — so a value such as ``massasje;=cmd|' /C calc'!A0`` is one
harmless cell to us and two cells, one a formula, to someone else. So every *part* of a
value that could become a cell of its own is neutralised with a leading ``'``, not only the
value's first character. One form is left alone: a space and then a number, which is how
the export writes a negative coordinate (Jan Mayen's longitude); a spreadsheet reads it
as the number, and a bare number would join its neighbours into a longer, formula-like
cell in a spreadsheet that splits on another character.
"""

from __future__ import annotations

import re

# Cells starting with these are formulas to a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# What some spreadsheet splits a CSV line into cells on (a line break ends a row).
_SEPARATOR = re.compile(r"([;,\t\r\n])")
# Spaces and quotes a spreadsheet drops before a cell's content.
_LEAD = ' "'
_SPACED_NUMBER = re.compile(r" +[+-]?[0-9]+(?:\.[0-9]+)?")


def _neutralise_part(part: str) -> str:
    lead = len(part) - len(part.lstrip(_LEAD))
    rest = part[lead:]
    return part[:lead] + "'" + rest if rest.startswith(FORMULA_PREFIXES) else part


def neutralise_cell(value: object) -> str:
    """Return the value as cell text, with ``'`` before each part a spreadsheet could run."""
    text = "" if value is None else str(value)
    if _SPACED_NUMBER.fullmatch(text):
        return text
    pieces = _SEPARATOR.split(text)  # parts at even indexes, separators between them
    for index in range(0, len(pieces), 2):
        pieces[index] = _neutralise_part(pieces[index])
    cell = "".join(pieces)
    # A leading tab or carriage return is a separator to some and a formula start to others.
    return "'" + cell if cell.startswith(("\t", "\r")) else cell


def _restore_part(part: str) -> str:
    lead = len(part) - len(part.lstrip(_LEAD))
    if part[lead : lead + 1] == "'" and part[lead + 1 : lead + 2].startswith(FORMULA_PREFIXES):
        return part[:lead] + part[lead + 1 :]
    return part


def restore_cell(cell: str) -> str:
    """Undo :func:`neutralise_cell`, so an exported file imports as the values it came from."""
    if cell[:1] == "'" and cell[1:2] in ("\t", "\r"):
        cell = cell[1:]
    pieces = _SEPARATOR.split(cell)
    for index in range(0, len(pieces), 2):
        pieces[index] = _restore_part(pieces[index])
    return "".join(pieces)
