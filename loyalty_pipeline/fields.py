"""The customer fields an upload can carry and the header names that carry them: THE field table.

Programs upload what their shop or mailing tool exports (Square, Mailchimp, Shopify, Google
Contacts, Outlook, Klaviyo, HubSpot, Eventbrite, Stripe) or what Excel saves in their language, so
a field is recognised by any of several header names. Adding a field or an alias is one entry in
HEADERS; the readers, the validation schema, the run metadata and the README table follow from it
(tests/test_fields.py checks the README against it).

Headers compare case-, accent-, space- and punctuation-insensitively ("E-mail Address",
"email_address" and "EMAIL ADDRESS" are one name). When several columns feed one field, each row
takes the first non-empty one in the table's order (mobile before landline)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

# What validated users are made of; "full_name" below only feeds first_name / last_name.
FIELDS = ("email", "first_name", "last_name", "birth_date", "phone_number")

# field -> accepted header names, most preferred first. "{n}" is any number (Google's
# "E-mail 1 - Value", Outlook's "E-mail 2 Address"); lower numbers come first.
HEADERS: dict[str, tuple[str, ...]] = {
    "email": (
        "Email",
        "E-mail Address",
        "E-mail {n} - Value",
        "E-mail {n} Address",
        "E-mail {n}",
        "Courriel",
        "Adresse e-mail",
        "Adresse électronique",
        "Adresse mail",
        "Adresse de messagerie",  # fr
        "E-Mail-Adresse",  # de
        "Correo electrónico",
        "Correo",
        "Dirección de correo electrónico",  # es
        "Indirizzo email",
        "Posta elettronica",
        "Indirizzo posta elettronica",  # it
        "E-mailadres",  # nl
        "Endereço de e-mail",
        "Correio eletrónico",
        "Correio eletrônico",  # pt
    ),
    "first_name": (
        "First Name",
        "Given Name",
        "Forename",
        "Vorname",
        "Prénom",
        "Nombre",
        "Nome",
        "Primeiro nome",
        "Voornaam",
    ),
    "last_name": (
        "Last Name",
        "Surname",
        "Family Name",
        "Nachname",
        "Familienname",
        "Nom",
        "Nom de famille",
        "Apellidos",
        "Apellido",
        "Cognome",
        "Sobrenome",
        "Apelido",
        "Achternaam",
    ),
    # Stripe's "Name": used only when the file has no first or last name column, split at the
    # first space (German "Name" next to "Vorname" is a surname, so it is not guessed at).
    "full_name": (
        "Name",
        "Full Name",
        "Customer Name",
        "Contact Name",
        "Vollständiger Name",
        "Nom complet",
        "Nombre completo",
        "Nome completo",
        "Volledige naam",
        "Naam",
    ),
    "birth_date": (
        "Birth Date",
        "Date of Birth",
        "DOB",
        "Birthday",
        "Geburtsdatum",
        "Geburtstag",
        "Date de naissance",
        "Anniversaire",
        "Fecha de nacimiento",
        "Cumpleaños",
        "Data di nascita",
        "Compleanno",
        "Data de nascimento",
        "Aniversário",
        "Geboortedatum",
        "Verjaardag",
    ),
    "phone_number": (
        # mobiles first: the birthday message may go out by SMS
        "Mobile Phone",
        "Mobile Phone Number",
        "Mobile",
        "Mobile Number",
        "Cell Phone",
        "Cell",
        "Handy",
        "Handynummer",
        "Mobil",
        "Mobiltelefon",
        "Mobilnummer",
        "Portable",
        "Téléphone portable",
        "Téléphone mobile",
        "Tél. mobile",
        "Móvil",
        "Teléfono móvil",
        "Celular",
        "Telefone celular",
        "Cellulare",
        "Telefono cellulare",
        "Telemóvel",
        "Mobiel",
        "Mobiel nummer",
        "Mobiele telefoon",
        "Phone Number",
        "Phone",
        "Primary Phone",
        "Telephone",
        "Phone {n} - Value",
        "Home Phone",
        "Home Phone {n}",
        "Business Phone",
        "Business Phone {n}",
        "Other Phone",
        "Default Address Phone",
        "Telefon",
        "Telefonnummer",
        "Téléphone",
        "Numéro de téléphone",
        "Teléfono",
        "Telefono",
        "Numero di telefono",
        "Telefone",
        "Telefoon",
        "Telefoonnummer",
    ),
}

# Cells where exports put spreadsheet conventions: Square and Shopify write "'+14155550134" and
# "'1990-03-14" (a leading apostrophe marks text), Google joins several values with " ::: " and
# marks the primary one with "* ".
_MARKED_FIELDS = ("email", "birth_date", "phone_number")
_MULTI_VALUE = " ::: "

# Shopify exports metafields as "<label> (customer.metafields.<namespace>.<key>)"; the key names the field.
_METAFIELD = re.compile(r"\(\s*customer\.metafields\.[^.()\s]+\.([^.()\s]+)\s*\)\s*$", re.IGNORECASE)
_NUMBER = "{n}"


class HeaderError(ValueError):
    """The header cannot be read as customers (the reader adds the file's name)."""


def header_key(name: str) -> str:
    """A header as compared: accents dropped, case folded, spaces and punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", name)
    return re.sub(r"[\W_]+", "", "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold())


def _alias_pattern(alias: str) -> re.Pattern:
    return re.compile(r"(\d+)".join(re.escape(header_key(part)) for part in alias.split(_NUMBER)))


_EXACT: dict[str, tuple[str, int]] = {}
_NUMBERED: list[tuple[re.Pattern, str, int]] = []
for _field, _aliases in HEADERS.items():
    for _rank, _alias in enumerate(_aliases):
        if _NUMBER in _alias:
            _NUMBERED.append((_alias_pattern(_alias), _field, _rank))
        else:
            _EXACT.setdefault(header_key(_alias), (_field, _rank))  # "Téléphone" is "Telephone": first wins
for _name in FIELDS:  # the canonical names themselves (email, first_name, ...) are accepted too
    _EXACT.setdefault(header_key(_name), (_name, -1))


def _recognise(header: str) -> tuple[str, tuple] | None:
    """(field, rank) of one header name, or None; a lower rank is preferred."""
    key = header_key(header)
    if key in _EXACT:
        name, rank = _EXACT[key]
        return name, (0, rank, 0)
    for pattern, name, rank in _NUMBERED:
        match = pattern.fullmatch(key)
        if match:
            return name, (0, rank, int(match.group(1)))
    metafield = _METAFIELD.search(header)
    if metafield and header_key(metafield.group(1)) in _EXACT:
        name, rank = _EXACT[header_key(metafield.group(1))]
        return name, (1, rank, 0)  # after the columns named plainly
    return None


def normalize_header(name: str) -> str:
    """The field a header name stands for, else its comparison key."""
    recognised = _recognise(name)
    return recognised[0] if recognised else header_key(name)


@dataclass(frozen=True)
class ColumnMatch:
    """Which columns of a header feed which field, in preference order."""

    header: list[str]
    sources: dict[str, list[int]]  # field (or full_name) -> column indexes, most preferred first
    ignored: list[str] = field(default_factory=list)

    @property
    def used(self) -> list[int]:
        return sorted({index for indexes in self.sources.values() for index in indexes})

    def fed_by(self) -> dict[str, list[str]]:
        """field -> the header names feeding it, for the run metadata (email ← "E-mail 1 - Value")."""
        return {name: [self.header[i].strip() for i in indexes] for name, indexes in self.sources.items()}


_LISTING_LENGTH = 300


def _quoted(name: str) -> str:
    """A client's header name inside a one-line message: whitespace (newlines too) collapsed, cut short."""
    flat = " ".join(name.split())
    return f'"{flat[:80]}…"' if len(flat) > 80 else f'"{flat}"'


def _listing(header: Sequence[str]) -> str:
    listing = ", ".join(_quoted(name) for name in header if name.strip()) or "nothing"
    return listing if len(listing) <= _LISTING_LENGTH else listing[:_LISTING_LENGTH] + "…"


def match_header(header: Sequence[str], mapping: Mapping[str, Sequence[str]] | None = None) -> ColumnMatch:
    """The columns feeding each field. `mapping` (a program's csv_columns: field -> header names)
    decides for the fields it names; the table decides for the others, from the remaining columns."""
    header = list(header)
    keys = [header_key(name) for name in header]
    sources: dict[str, list[int]] = {}
    claimed: set[int] = set()
    for name, wanted in (mapping or {}).items():
        indexes = []
        for wanted_header in wanted:
            found = [i for i, key in enumerate(keys) if key == header_key(wanted_header) and i not in claimed]
            if not found:
                raise HeaderError(
                    f"csv_columns maps {name} to {_quoted(wanted_header)}, but the file has no such "
                    f"column (found: {_listing(header)})"
                )
            indexes += found
            claimed.update(found)
        sources[name] = indexes

    ranked: dict[str, list[tuple[tuple, int]]] = {}
    for index, name in enumerate(header):
        if index in claimed or not keys[index]:
            continue
        recognised = _recognise(name)
        if recognised and recognised[0] not in sources:
            ranked.setdefault(recognised[0], []).append((recognised[1], index))
    for name, candidates in ranked.items():
        sources[name] = [index for _, index in sorted(candidates)]
    if "full_name" in sources and (sources.get("first_name") or sources.get("last_name")):
        del sources["full_name"]  # plain first/last columns say more than a name to split

    for name, indexes in sources.items():
        seen = [keys[i] for i in indexes]
        if len(set(seen)) < len(seen):
            raise HeaderError(
                f"duplicate column names in the header: {name} ({_listing([header[i] for i in indexes])})"
            )
    if not sources.get("email"):
        raise HeaderError(f"no email column in the header (found: {_listing(header)})")
    sources = {name: sources[name] for name in HEADERS if name in sources}  # the table's order, for people
    used = {i for indexes in sources.values() for i in indexes}
    ignored = [name.strip() for i, name in enumerate(header) if i not in used and name.strip()]
    return ColumnMatch(header=header, sources=sources, ignored=ignored)


def column_name(index: int) -> str:
    """The name a reader gives the frame column of header column `index`."""
    return f"c{index}"


def _cell(name: str, cells: pl.Series, alone: bool) -> pl.Expr:
    """One source column's values for `name`. Each convention is applied only to a column that
    has it (two quick scans), so a million plain cells cost no rewrite; validation trims them."""
    value = pl.col(cells.name)
    if name in _MARKED_FIELDS:
        if cells.str.contains(_MULTI_VALUE, literal=True).any():
            first = value.str.split(_MULTI_VALUE).list.first().str.strip_chars().str.strip_prefix("* ")
            value = pl.when(value.str.contains(_MULTI_VALUE, literal=True)).then(first).otherwise(value)
        if cells.str.contains("'", literal=True).any():
            value = value.str.strip_chars_start().str.strip_prefix("'")
    if alone:
        return value
    value = value.str.strip_chars()
    return pl.when(value != "").then(value)  # several sources: the first non-empty one wins


def assemble(frame: pl.DataFrame, match: ColumnMatch) -> pl.DataFrame:
    """line + FIELDS from a reader's frame of line + c<index> text columns: the first non-empty
    source per row, export conventions removed, a full name split at its first space."""
    values: dict[str, pl.Expr] = {}
    for name, indexes in match.sources.items():
        alone = len(indexes) == 1 and name != "full_name"
        cells = [_cell(name, frame[column_name(i)], alone) for i in indexes]
        values[name] = cells[0] if len(cells) == 1 else pl.coalesce(cells)
    if "full_name" in values:
        full = values.pop("full_name")
        values["first_name"] = full.str.extract(r"^(\S+)", 1)
        values["last_name"] = full.str.extract(r"^\S+\s+(.+)$", 1)
    return frame.select(
        "line", *(values.get(name, pl.lit(None, dtype=pl.Utf8)).cast(pl.Utf8).alias(name) for name in FIELDS)
    )


def markdown_table() -> str:
    """The README's table of accepted header names (checked by tests/test_fields.py)."""
    lines = ["| field | accepted header names, most preferred first |", "|---|---|"]
    for name, aliases in HEADERS.items():
        lines.append(f"| `{name}` | " + ", ".join(f"`{alias}`" for alias in aliases) + " |")
    return "\n".join(lines)
