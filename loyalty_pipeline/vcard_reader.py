"""vCard address books (.vcf: Apple Contacts' only export, offered by Google and Outlook too) read
with vobject into the same line + c<index> text cells as the other readers, under header names of
the field table, so matching, conventions and validation are the ones of every upload.

A card's emails (EMAIL, preferred ones first) and phones (TEL, mobiles first, then preferred ones)
become numbered columns; N gives the first and last name, FN the full name; BDAY is passed as
written (`1990-03-14`, `19900314`, `--0314`, `1604-03-14`), and a year Apple marks as omitted
(X-APPLE-OMIT-YEAR) is dropped, never kept as a birth year. `line` is the card's number (the
first card is 1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import vobject

from loyalty_pipeline.fields import ColumnMatch, HeaderError, column_name

_FIXED = ("First Name", "Last Name", "Full Name", "Birthday", "Country")


class VCardError(ValueError):
    """The file cannot be read as vCards (the caller adds the file's name)."""


@dataclass
class Cards:
    match: ColumnMatch
    cells: pl.DataFrame  # line (the card number) + c<index> text columns of match.read


def _types(prop) -> set[str]:
    types = {value.upper() for value in prop.params.get("TYPE", []) for value in value.split(",")}
    if "PREF" in {key.upper() for key in prop.params}:
        types.add("PREF")
    return types


def _values(card, name: str, first: tuple[str, ...]) -> list[str]:
    """The card's values of property `name`, those typed as `first` (in that order) before the rest."""
    props = card.contents.get(name, [])
    ranked = sorted(props, key=lambda p: [kind not in _types(p) for kind in first])
    return [str(p.value).strip() for p in ranked if str(p.value).strip()]


def _birthday(card) -> str | None:
    prop = card.contents.get("bday", [None])[0]
    if prop is None:
        return None
    value = str(prop.value).strip()
    omitted = prop.params.get("X-APPLE-OMIT-YEAR", [None])[0]
    if omitted and value.startswith(omitted):
        rest = value[len(omitted) :].lstrip("-")
        return "--" + rest if len(rest) in (4, 5) else value
    return value


def _name_parts(card) -> tuple[str | None, str | None, str | None]:
    name = card.contents.get("n", [None])[0]
    given = family = None
    if name is not None and isinstance(name.value, vobject.vcard.Name):
        given = " ".join(filter(None, [name.value.given] if isinstance(name.value.given, str) else name.value.given))
        family = " ".join(
            filter(None, [name.value.family] if isinstance(name.value.family, str) else name.value.family)
        )
    full = card.contents.get("fn", [None])[0]
    return given or None, family or None, (str(full.value).strip() or None) if full is not None else None


def _country(card) -> str | None:
    for prop in card.contents.get("adr", []):
        if isinstance(prop.value, vobject.vcard.Address) and str(prop.value.country).strip():
            return str(prop.value.country).strip()
    return None


def read_vcards(text: str, match_header: Callable[[list[str]], ColumnMatch]) -> Cards:
    records: list[tuple[list[str], list[str], tuple]] = []
    try:
        for card in vobject.readComponents(text, ignoreUnreadable=True):
            if card.name.upper() != "VCARD":
                continue
            emails = _values(card, "email", ("PREF", "INTERNET"))
            phones = _values(card, "tel", ("CELL", "PREF"))
            records.append((emails, phones, (*_name_parts(card), _birthday(card), _country(card))))
    except (vobject.base.ParseError, ValueError, AttributeError, KeyError) as exc:
        raise VCardError(f"not a readable vCard file ({' '.join(str(exc).split())[:200]})") from exc
    if not records:
        raise VCardError("no vCard (BEGIN:VCARD ... END:VCARD) in the file")
    most_emails = max(1, *(len(emails) for emails, _, _ in records))
    most_phones = max(0, *(len(phones) for _, phones, _ in records))
    header = [
        *(f"E-mail {n} - Value" for n in range(1, most_emails + 1)),
        *(f"Phone {n} - Value" for n in range(1, most_phones + 1)),
        *_FIXED,
    ]
    try:
        match = match_header(header)
    except HeaderError as exc:
        raise VCardError(str(exc)) from exc
    rows = [
        [*emails, *[None] * (most_emails - len(emails)), *phones, *[None] * (most_phones - len(phones)), *fixed]
        for emails, phones, fixed in records
    ]
    columns = {column_name(i): pl.Series([row[i] for row in rows], dtype=pl.Utf8) for i in match.read}
    cells = pl.DataFrame({"line": pl.int_range(1, len(rows) + 1, eager=True, dtype=pl.Int64), **columns})
    return Cards(match=match, cells=cells)
