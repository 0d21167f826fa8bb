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
# The row's own country: not stored, it only steers phone parsing (validation.py, regions.py).
COUNTRY = "country"
# A birthday split over columns (Thunderbird): joined into birth_date by assemble().
BIRTH_PARTS = ("birth_year", "birth_month", "birth_day")

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
        # Thunderbird's address book export (English, then its other languages)
        "Primary Email",
        "Secondary Email",
        "Primäre E-Mail-Adresse",
        "Sekundäre E-Mail-Adresse",
        "Adresse e-mail principale",
        "Adresse e-mail secondaire",
        "Dirección de correo electrónico principal",
        "Dirección de correo electrónico secundaria",
        "Email primaria",
        "Email secondaria",
        "Primair e-mailadres",
        "Secundair e-mailadres",
        "Email principal",
        "Email secundário",
        "Email primário",
        # Outlook and Thunderbird in Chinese, Japanese, Korean, Russian, Greek, Polish, Turkish
        "电子邮件地址",
        "电子邮件 {n} 地址",
        "主要电子邮件",
        "备用电子邮件",
        "電子郵件地址",
        "電子郵件 {n} 地址",
        "主要 Email",
        "次要 Email",
        "電子メール アドレス",
        "電子メール {n} アドレス",
        "メールアドレス",
        "別のメールアドレス",
        "전자 메일 주소",
        "전자 메일 {n} 주소",
        "기본 메일",
        "추가 메일",
        "Адрес эл. почты",
        "Адрес {n} эл. почты",
        "Адрес электронной почты",
        "Альтернативный адрес электронной почты",
        "Электронная почта",
        "Διεύθυνση ηλεκτρονικού ταχυδρομείου",
        "Διεύθυνση ηλεκτρονικού ταχυδρομείου {n}",
        "Κύριο email",
        "Δευτερεύον email",
        "Adres e-mail",
        "Adres e-mail {n}",
        "Podstawowy e-mail",
        "Dodatkowy e-mail",
        "E-posta Adresi",
        "E-posta {n} Adresi",
        "E-posta",
        "Birinci e-posta",
        "İkinci e-posta",
        # shop platforms' field names (WooCommerce, Magento 2, ...), then any snake_case *_email
        "billing_email",
        "customer_email",
        "*_email",
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
        "名",
        "名字",
        "이름",
        "Имя",
        "Όνομα",
        "Imię",
        "Ad",
        "Adı",
        "billing_first_name",
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
        "姓",
        "姓氏",
        "성",
        "Фамилия",
        "Επώνυμο",
        "Nazwisko",
        "Soyadı",
        "Soyad",
        "billing_last_name",
    ),
    # A full name, split at the first space: for every row when the file has no first or last name
    # column, else for the rows whose first and last name cells are both empty. "Name" and "Naam"
    # beside a first-name column are surnames (German, Dutch), so they are not used then.
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
        "Display Name",
        "Anzeigename",
        "Nom à afficher",
        "Nombre mostrado",
        "Nome visualizzato",
        "Weergavenaam",
        "Nome de exibição",
        "Nome exibido",
        "姓名",
        "显示名称",
        "顯示名稱",
        "表示名",
        "氏名",
        "표시명",
        "Отображаемое имя",
        "ФИО",
        "Εμφανιζόμενο όνομα",
        "Ονοματεπώνυμο",
        "Imię i nazwisko",
        "Wyświetlana nazwa",
        "Ad Soyad",
        "Görüntülenecek ad",
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
        "生日",
        "出生日期",
        "誕生日",
        "生年月日",
        "생일",
        "생년월일",
        "День рождения",
        "Дата рождения",
        "Γενέθλια",
        "Ημερομηνία γέννησης",
        "Urodziny",
        "Data urodzenia",
        "Doğum Günü",
        "Doğum tarihi",
    ),
    # A birthday split over year / month / day columns (Thunderbird, in each of its languages). The
    # parts are read only when the header has both a month and a day column; a day column's name may
    # then be a birthday's ("Birth Day" is "Birthday" once spaces go, German "Geburtstag", Japanese
    # 誕生日, Russian "День рождения"), and it is the day. The year is optional: no year, no year.
    "birth_year": (
        "Birth Year",
        "Year of Birth",
        "Geburtsjahr",
        "Année de naissance",
        "Año de nacimiento",
        "Anno di nascita",
        "Geboortejaar",
        "Ano de nascimento",
        "出生年份",
        "出生年",
        "誕生年",
        "태어난 해",
        "Год рождения",
        "Έτος γέννησης",
        "Urodziny – Rok",
        "Rok urodzenia",
        "Doğum yılı",
    ),
    "birth_month": (
        "Birth Month",
        "Month of Birth",
        "Geburtsmonat",
        "Mois de naissance",
        "Mois",
        "Mes de nacimiento",
        "Mese di nascita",
        "Geboortemaand",
        "Mês de nascimento",
        "出生月份",
        "出生月",
        "誕生月",
        "태어난 달",
        "Месяц рождения",
        "Μήνας γέννησης",
        "Urodziny – Miesiąc",
        "Miesiąc urodzenia",
        "Doğum ayı",
    ),
    "birth_day": (
        "Birth Day",
        "Day of Birth",
        "Geburtstag",
        "Jour de naissance",
        "Jour",
        "Día de nacimiento",
        "Giorno di nascita",
        "Geboortedag",
        "Dia de nascimento",
        "Data de nascimento",
        "出生日",
        "誕生日",
        "생일",
        "День рождения",
        "Ημέρα γέννησης",
        "Urodziny – Dzień",
        "Dzień urodzenia",
        "Doğum günü",
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
        "Mobil-Tel.-Nr.",
        "Numero cellulare",
        "Número do celular",
        "Número de telemóvel",
        "移动电话",
        "移动电话号码",
        "手机",
        "手机号码",
        "行動電話",
        "手機號碼",
        "携帯電話",
        "携帯電話番号",
        "휴대폰",
        "휴대 전화",
        "Телефон переносной",
        "Мобильный телефон",
        "Номер мобильного телефона",
        "Κινητό τηλέφωνο",
        "Αριθμός κινητού",
        "Telefon komórkowy",
        "Numer telefonu komórkowego",
        "Cep Telefonu",
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
        "Work Phone",
        "Default Address Phone",
        "billing_phone",
        "shipping_phone",
        "_address_telephone",
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
        "Tel. privat",
        "Tel. dienstlich",
        "Tél. personnel",
        "Tél. professionnel",
        "Teléfono particular",
        "Teléfono (Trabajo)",
        "Telefono casa",
        "Telefono lavoro",
        "Telefoon thuis",
        "Telefoon werk",
        "Telefone residencial",
        "Telefone comercial",
        "Telefone de casa",
        "Telefone profissional",
        "电话",
        "住宅电话",
        "家庭电话",
        "商务电话",
        "工作电话",
        "電話",
        "住家電話",
        "商務電話",
        "電話番号",
        "自宅電話",
        "自宅の電話番号",
        "会社電話",
        "勤務先の電話番号",
        "전화",
        "전화 번호",
        "집 전화 번호",
        "자택 전화",
        "회사 전화",
        "직장 전화",
        "Телефон",
        "Домашний телефон",
        "Рабочий телефон",
        "Τηλέφωνο",
        "Τηλέφωνο οικίας",
        "Τηλέφωνο εργασίας",
        "Telefon domowy",
        "Telefon służbowy",
        "Telefonu służbowy",
        "Ev Telefonu",
        "İş Telefonu",
        "*_phone",
        "*_telephone",
        "*_mobile",
    ),
    # The customer's country (an ISO code or a name in the file's language): a national phone
    # number is read in it, else in the program's default_phone_region. Outlook's home country in
    # its languages (as Exchange's Outlook CSV import names them), then the platforms' columns.
    "country": (
        "Country",
        "Country Code",
        "Home Country/Region",
        "Home Country",
        "Land/Region privat",
        "Pays/Région (domicile)",
        "Paese (ab.)",
        "Land/regio (thuis)",
        "País/Região de Residência",
        "País da Residência/Região",
        "住宅地址 国家/地区",
        "住家 - 國家/地區",
        "国 (自宅)/地域",
        "집 주소 국가/지역",
        "Страна или регион (дом. адрес)",
        "Χώρα/Περιοχή οικίας",
        "Adres domowy - kraj/region",
        "Land",
        "Pays",
        "País",
        "Paese",
        "Default Address Country Code",
        "Address {n} - Country",
        "billing_country",
        "shipping_country",
        "_address_country_id",
    ),
}

# Cells where exports put spreadsheet conventions: Square and Shopify write "'+14155550134" and
# "'1990-03-14" (a leading apostrophe marks text), Google joins several values with " ::: " and
# marks the primary one with "* ".
_MARKED_FIELDS = ("email", "birth_date", "phone_number", *BIRTH_PARTS)
_MULTI_VALUE = " ::: "
# Fields whose every candidate column is kept for validation: when the first non-empty one is not
# valid (Outlook's Exchange "/o=ExchangeLabs/..." in "E-mail Address"), the next valid one is taken.
CANDIDATE_FIELDS = ("email", "phone_number")

# Shopify exports metafields as "<label> (customer.metafields.<namespace>.<key>)"; the key names the field.
_METAFIELD = re.compile(r"\(\s*customer\.metafields\.[^.()\s]+\.([^.()\s]+)\s*\)\s*$", re.IGNORECASE)
# Hints and markers around a header name: PrestaShop's "Email *" (required) and
# "Birthday (yyyy-mm-dd)" (the format), "[optional]", a leading "* ".
_HINTS = re.compile(r"^\s*\*+\s*|(?:\s*(?:\*+|\([^()]*\)|\[[^\[\]]*\]))+\s*$")
_NUMBER = "{n}"
_SNAKE_PREFIX = "*_"


class HeaderError(ValueError):
    """The header cannot be read as customers (the reader adds the file's name)."""


def header_key(name: str) -> str:
    """A header as compared: accents dropped, case folded, spaces and punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", name)
    return re.sub(r"[\W_]+", "", "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold())


def _alias_pattern(alias: str) -> re.Pattern:
    return re.compile(r"(\d+)".join(re.escape(header_key(part)) for part in alias.split(_NUMBER)))


def _snake_pattern(suffix: str) -> re.Pattern:
    """A shop platform's snake_case field name ending in `suffix` (billing_phone, _address_telephone)."""
    return re.compile(rf"_*[a-z0-9]+(?:_[a-z0-9]+)*_{re.escape(suffix)}", re.IGNORECASE | re.ASCII)


class _Aliases:
    """The aliases of some fields of HEADERS, ready to be looked up."""

    def __init__(self, fields: Sequence[str]):
        self.exact: dict[str, tuple[str, int]] = {}
        self.numbered: list[tuple[re.Pattern, str, int]] = []
        self.snake: list[tuple[re.Pattern, str, int]] = []
        for name in fields:
            for rank, alias in enumerate(HEADERS[name]):
                if alias.startswith(_SNAKE_PREFIX):
                    self.snake.append((_snake_pattern(alias[len(_SNAKE_PREFIX) :]), name, rank))
                elif _NUMBER in alias:
                    self.numbered.append((_alias_pattern(alias), name, rank))
                else:
                    self.exact.setdefault(header_key(alias), (name, rank))  # "Téléphone" is "Telephone": first wins

    def by_key(self, key: str) -> tuple[str, tuple] | None:
        if key in self.exact:
            name, rank = self.exact[key]
            return name, (0, rank, 0)
        for pattern, name, rank in self.numbered:
            match = pattern.fullmatch(key)
            if match:
                return name, (0, rank, int(match.group(1)))
        return None

    def recognise(self, header: str) -> tuple[str, tuple] | None:
        """(field, rank) of one header name, or None; a lower rank is preferred."""
        found = self.by_key(header_key(header))
        if found:
            return found
        metafield = _METAFIELD.search(header)
        if metafield:
            found = self.by_key(header_key(metafield.group(1)))
            return (found[0], (1, *found[1][1:])) if found else None  # after the columns named plainly
        bare = _HINTS.sub("", header)
        if bare != header and header_key(bare):
            found = self.by_key(header_key(bare))
            if found:
                return found
        for pattern, name, rank in self.snake:
            if pattern.fullmatch(header.strip()):
                return name, (2, rank, 0)  # a platform's generic *_phone after every named column
        return None


_MAIN = _Aliases([name for name in HEADERS if name not in BIRTH_PARTS])
_PARTS = _Aliases(BIRTH_PARTS)
for _name in (*FIELDS, COUNTRY):  # the canonical names themselves (email, first_name, ...) are accepted too
    _MAIN.exact.setdefault(header_key(_name), (_name, -1))
# Beside a first-name column these are surnames (German, Dutch), not full names.
_SURNAME_BESIDE_FIRST_NAME = frozenset(header_key(name) for name in ("Name", "Naam"))


def _recognise(header: str) -> tuple[str, tuple] | None:
    return _MAIN.recognise(header)


def normalize_header(name: str) -> str:
    """The field a header name stands for, else its comparison key."""
    recognised = _recognise(name)
    return recognised[0] if recognised else header_key(name)


# --- columns that look like a field but feed none (said in a file warning when they hold values) ---
# Word stems of the fields in the table's languages: short Latin ones are whole words ("tel" is not
# "hotel", "posta" not "postal"), a few start a word, the others may stand anywhere in the name.
_FIELD_WORDS = frozenset(("tel", "dob", "cell", "cep", "posta", "eposta"))
_FIELD_WORD_STARTS = ("mail", "email", "mobil", "phone", "birth", "cellphone")
_FIELD_STEMS = (
    *("geburt", "naissance", "nacimiento", "nascita", "geboorte", "nascimento", "urodz", "dogum", "birthday"),
    *("cumpleanos", "compleanno", "aniversario", "verjaardag", "anniversaire", "courriel", "correo", "handy"),
    *("portable", "movil", "celular", "telefon", "telephon", "telefoon", "mobiel", "telemovel", "komork"),
    *("生日", "出生", "誕生", "생일", "생년", "рожд", "γενν", "γενεθ"),
    *("почт", "メール", "邮件", "郵件", "메일", "ταχυδρομ", "email"),
    *("电话", "電話", "手机", "手機", "携帯", "전화", "휴대", "телефон", "τηλεφ", "κινητ"),
)
# Words of a column that describes a field's value rather than holding one (Outlook's "E-mail
# Type", Shopify's "Accepts Email Marketing", Google's "Phone 1 - Label").
_COMPANION_WORDS = frozenset(
    "type label display consent marketing subscription subscribed status optin opt verified accepts "
    "confirmed confirm format typ tipo kind".split()
)
_COMPANION_STEMS = ("类型", "類型", "显示", "顯示", "表示", "種類", "유형", "표시", "тип", "отображ")


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)  # camelCase: homePhone
    return re.findall(r"[^\W_]+", header_key_words(spaced))


def header_key_words(name: str) -> str:
    """Like header_key, but keeping the word breaks as spaces."""
    decomposed = unicodedata.normalize("NFKD", name)
    return re.sub(r"[\W_]+", " ", "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold())


def looks_like_a_field(name: str) -> bool:
    """Whether an ignored column's name holds a field word (birth, dob, mail, phone, mobile, tel, ...
    in the table's languages) and is not a description of one (a type, a label, a consent)."""
    words = _words(name)
    key = header_key(name)
    if any(word in _COMPANION_WORDS for word in words) or any(stem in key for stem in _COMPANION_STEMS):
        return False
    return any(word in _FIELD_WORDS or word.startswith(_FIELD_WORD_STARTS) for word in words) or any(
        stem in key for stem in _FIELD_STEMS
    )


@dataclass(frozen=True)
class ColumnMatch:
    """Which columns of a header feed which field, in preference order."""

    header: list[str]
    sources: dict[str, list[int]]  # field (or full_name, a birth part) -> column indexes, most preferred first
    ignored: list[str] = field(default_factory=list)
    watched: list[int] = field(default_factory=list)  # ignored columns that look like a field
    continuation_rows: bool = False  # Magento: rows without an email continue the customer above

    @property
    def used(self) -> list[int]:
        return sorted({index for indexes in self.sources.values() for index in indexes})

    @property
    def read(self) -> list[int]:
        """The columns a reader keeps: the used ones and the watched ones (counted, then dropped)."""
        return sorted({*self.used, *self.watched})

    def fed_by(self) -> dict[str, list[str]]:
        """field -> the header names feeding it, for the run metadata (email ← "E-mail 1 - Value")."""
        return {name: [self.header[i].strip() for i in indexes] for name, indexes in self.sources.items()}


_LISTING_LENGTH = 300
# Magento 2's customer export: "_address_*" columns; an extra address of a customer is a row of its own
# with an empty email.
_CONTINUATION_MARK = re.compile(r"^_address_", re.ASCII)


def _quoted(name: str) -> str:
    """A client's header name inside a one-line message: whitespace (newlines too) collapsed, cut short."""
    flat = " ".join(name.split())
    return f'"{flat[:80]}…"' if len(flat) > 80 else f'"{flat}"'


def _listing(header: Sequence[str]) -> str:
    listing = ", ".join(_quoted(name) for name in header if name.strip()) or "nothing"
    return listing if len(listing) <= _LISTING_LENGTH else listing[:_LISTING_LENGTH] + "…"


def _ranked(header: list[str], keys: list[str], claimed: set[int], aliases: _Aliases) -> dict[str, list[tuple]]:
    ranked: dict[str, list[tuple[tuple, int]]] = {}
    for index, name in enumerate(header):
        if index in claimed or not keys[index]:
            continue
        recognised = aliases.recognise(name)
        if recognised:
            ranked.setdefault(recognised[0], []).append((recognised[1], index))
    return ranked


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

    if "birth_date" not in sources:
        parts = _ranked(header, keys, claimed, _PARTS)
        if parts.get("birth_month") and parts.get("birth_day"):  # a split birthday: the parts win their columns
            for name, candidates in parts.items():
                sources[name] = [index for _, index in sorted(candidates)]
                claimed.update(sources[name])
    for name, candidates in _ranked(header, keys, claimed, _MAIN).items():
        if name not in sources:
            sources[name] = [index for _, index in sorted(candidates)]
    if "full_name" in sources and (sources.get("first_name") or sources.get("last_name")):
        # beside first/last names a full name only fills the rows that have neither; "Name" is a surname there
        sources["full_name"] = [i for i in sources["full_name"] if keys[i] not in _SURNAME_BESIDE_FIRST_NAME]
        if not sources["full_name"]:
            del sources["full_name"]

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
    unused = [i for i, name in enumerate(header) if i not in used and name.strip()]
    return ColumnMatch(
        header=header,
        sources=sources,
        ignored=[header[i].strip() for i in unused],
        watched=[i for i in unused if looks_like_a_field(header[i])],
        continuation_rows=any(_CONTINUATION_MARK.match(name.strip()) for name in header),
    )


def column_name(index: int) -> str:
    """The name a reader gives the frame column of header column `index`."""
    return f"c{index}"


def candidate_column(name: str, position: int) -> str:
    """The rows column holding the `position`-th source column's value of a CANDIDATE_FIELDS field."""
    return f"{name}@{position}"


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


def _two_digits(part: pl.Expr) -> pl.Expr:
    return pl.when(part.str.contains(r"^\d$")).then(pl.lit("0") + part).otherwise(part)


def _split_birthday(values: dict[str, pl.Expr]) -> pl.Expr:
    """A birthday from year / month / day cells, as the text the date parser reads: 1990-03-14, or
    --03-14 without a year (never a made-up one); a lone part is passed on so its warning says so."""
    year, month, day = (values.pop(name, pl.lit(None, dtype=pl.Utf8)) for name in BIRTH_PARTS)
    month, day = _two_digits(month), _two_digits(day)
    full = pl.when(year.is_not_null()).then(pl.concat_str([year, month, day], separator="-"))
    return (
        pl.when(month.is_not_null() & day.is_not_null())
        .then(full.otherwise(pl.concat_str([pl.lit("--"), month, pl.lit("-"), day])))
        .otherwise(pl.concat_str([year, month, day], separator="-", ignore_nulls=True))
    )


def assemble(frame: pl.DataFrame, match: ColumnMatch) -> pl.DataFrame:
    """line + FIELDS from a reader's frame of line + c<index> text columns: the first non-empty
    source per row, export conventions removed, a full name split at its first space, a split
    birthday joined; plus `country` when a column feeds it, and `<field>@<k>`, each candidate of an
    email or phone with several columns."""
    values: dict[str, pl.Expr] = {}
    candidates: list[pl.Expr] = []
    for name, indexes in match.sources.items():
        alone = len(indexes) == 1 and name not in ("full_name", *BIRTH_PARTS)
        cells = [_cell(name, frame[column_name(i)], alone) for i in indexes]
        values[name] = cells[0] if len(cells) == 1 else pl.coalesce(cells)
        if name in CANDIDATE_FIELDS and len(cells) > 1:
            candidates += [cell.alias(candidate_column(name, k)) for k, cell in enumerate(cells)]
    if any(name in values for name in BIRTH_PARTS):
        split = _split_birthday(values)
        values["birth_date"] = pl.coalesce(values["birth_date"], split) if "birth_date" in values else split
    if "full_name" in values:
        full = values.pop("full_name")
        first, last = full.str.extract(r"^(\S+)", 1), full.str.extract(r"^\S+\s+(.+)$", 1)
        if "first_name" in values or "last_name" in values:  # only the rows without either
            own_first, own_last = (values.get(n, pl.lit(None, dtype=pl.Utf8)) for n in ("first_name", "last_name"))
            neither = own_first.str.strip_chars().fill_null("").eq("") & own_last.str.strip_chars().fill_null("").eq("")
            first = pl.when(neither).then(first).otherwise(own_first)
            last = pl.when(neither).then(last).otherwise(own_last)
        values["first_name"], values["last_name"] = first, last
    rows = frame.select(
        "line",
        *(values.get(name, pl.lit(None, dtype=pl.Utf8)).cast(pl.Utf8).alias(name) for name in FIELDS),
        *([values[COUNTRY].cast(pl.Utf8).alias(COUNTRY)] if COUNTRY in values else []),
        *candidates,
    )
    return _join_continuations(rows) if match.continuation_rows else rows


def _join_continuations(rows: pl.DataFrame) -> pl.DataFrame:
    """Magento's extra-address rows (no email, no name) fill what the customer row above left empty."""
    blank = [pl.col(name).str.strip_chars().fill_null("") == "" for name in ("email", "first_name", "last_name")]
    rows = rows.with_columns(_continuation=blank[0] & blank[1] & blank[2])
    rows = rows.with_columns(_customer=(~pl.col("_continuation")).cum_sum())

    def filled(name: str) -> pl.Expr:
        value = pl.when(pl.col(name).str.strip_chars() != "").then(pl.col(name))
        return value.fill_null(value.drop_nulls().first().over("_customer")).alias(name)

    columns = [name for name in rows.columns if name not in ("line", "_continuation", "_customer")]
    return (
        rows.with_columns(filled(name) for name in columns)
        .filter(~pl.col("_continuation") | (pl.col("_customer") == 0))
        .drop("_continuation", "_customer")
    )


def ignored_field_warnings(frame: pl.DataFrame, match: ColumnMatch, header_line: int) -> pl.DataFrame:
    """A header warning (line = the header's) for each ignored column that looks like a field and
    holds values: a lost column is never silent. Columns: line, column, value, severity, reason."""
    rows = []
    for index in match.watched:
        filled = frame.select((pl.col(column_name(index)).str.strip_chars().fill_null("") != "").sum()).item()
        if filled:
            name = " ".join(match.header[index].split())[:200]
            rows.append(
                (
                    header_line,
                    name,
                    None,
                    "warning",
                    f"column {_quoted(name)} looks like a customer field but matches none, so its "
                    f"{filled} value{'s were' if filled != 1 else ' was'} not read (map it in csv_columns)",
                )
            )
    return pl.DataFrame(
        rows,
        schema={"line": pl.Int64, "column": pl.Utf8, "value": pl.Utf8, "severity": pl.Utf8, "reason": pl.Utf8},
        orient="row",
    )


def markdown_table() -> str:
    """The README's table of accepted header names (checked by tests/test_fields.py)."""
    lines = ["| field | accepted header names, most preferred first |", "|---|---|"]
    for name, aliases in HEADERS.items():
        lines.append(f"| `{name}` | " + ", ".join(f"`{alias}`" for alias in aliases) + " |")
    return "\n".join(lines)
