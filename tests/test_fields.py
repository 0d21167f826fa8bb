"""THE field table: header names recognised in every export and language, compared loosely, one
field per name, and the README's table generated from it."""

import re
from pathlib import Path

import pytest

from loyalty_pipeline.fields import FIELDS, HEADERS, HeaderError, header_key, markdown_table, match_header
from loyalty_pipeline.programs import InvalidProgramConfig, csv_column_mapping
from tests.factories import program_record


@pytest.mark.parametrize(
    "header, field",
    [
        # platforms
        ("Email Address", "email"),
        ("E-mail 1 - Value", "email"),
        ("E-mail 2 Address", "email"),
        ("E-mail Address", "email"),
        ("Phone Number", "phone_number"),
        ("Default Address Phone", "phone_number"),
        ("Phone 3 - Value", "phone_number"),
        ("Mobile Phone", "phone_number"),
        ("Cell Phone", "phone_number"),
        ("Mobile Phone Number", "phone_number"),
        ("Surname", "last_name"),
        ("Given Name", "first_name"),
        ("Family Name", "last_name"),
        ("Name", "full_name"),
        ("Birth date (customer.metafields.facts.birth_date)", "birth_date"),
        ("Birthday (customer.metafields.custom.birthday)", "birth_date"),
        ("Date of birth", "birth_date"),
        # the canonical names and the old aliases
        ("email", "email"),
        ("first_name", "first_name"),
        ("phone_number", "phone_number"),
        ("DOB", "birth_date"),
        ("date-of-birth", "birth_date"),
        ("FirstName", "first_name"),
        ("e_mail", "email"),
        ("mobile", "phone_number"),
        # German, French, Spanish, Italian, Dutch, Portuguese
        ("E-Mail", "email"),
        ("Vorname", "first_name"),
        ("Nachname", "last_name"),
        ("Geburtsdatum", "birth_date"),
        ("Geburtstag", "birth_date"),
        ("Telefon", "phone_number"),
        ("Handy", "phone_number"),
        ("Courriel", "email"),
        ("Prénom", "first_name"),
        ("Nom", "last_name"),
        ("Date de naissance", "birth_date"),
        ("Téléphone", "phone_number"),
        ("Portable", "phone_number"),
        ("Correo electrónico", "email"),
        ("Nombre", "first_name"),
        ("Apellidos", "last_name"),
        ("Fecha de nacimiento", "birth_date"),
        ("Teléfono", "phone_number"),
        ("Móvil", "phone_number"),
        ("Indirizzo email", "email"),
        ("Nome", "first_name"),
        ("Cognome", "last_name"),
        ("Data di nascita", "birth_date"),
        ("Cellulare", "phone_number"),
        ("E-mailadres", "email"),
        ("Voornaam", "first_name"),
        ("Achternaam", "last_name"),
        ("Geboortedatum", "birth_date"),
        ("Mobiel", "phone_number"),
        ("Sobrenome", "last_name"),
        ("Data de nascimento", "birth_date"),
        ("Telemóvel", "phone_number"),
        ("Telefone", "phone_number"),
        # the same five fields in localised Outlook exports (French, Italian, Dutch, Brazilian Portuguese)
        ("Adresse de messagerie", "email"),
        ("Tél. mobile", "phone_number"),
        ("Indirizzo posta elettronica", "email"),
        ("Telefono cellulare", "phone_number"),
        ("Mobiele telefoon", "phone_number"),
        ("Telefone celular", "phone_number"),
        # Thunderbird, shop platforms (Magento 2, WooCommerce, any snake_case *_phone / *_email)
        ("Primary Email", "email"),
        ("Secondary Email", "email"),
        ("Work Phone", "phone_number"),
        ("Mobile Number", "phone_number"),
        ("Display Name", "full_name"),
        ("firstname", "first_name"),
        ("_address_telephone", "phone_number"),
        ("billing_email", "email"),
        ("billing_phone", "phone_number"),
        ("shipping_phone", "phone_number"),
        ("contact_mobile", "phone_number"),
        ("customer_email", "email"),
        # Outlook and Thunderbird in Chinese, Japanese, Korean, Russian, Greek, Polish, Turkish
        ("电子邮件地址", "email"),
        ("电子邮件 2 地址", "email"),
        ("移动电话", "phone_number"),
        ("生日", "birth_date"),
        ("姓", "last_name"),
        ("名", "first_name"),
        ("電子郵件地址", "email"),
        ("行動電話", "phone_number"),
        ("電子メール アドレス", "email"),
        ("携帯電話", "phone_number"),
        ("誕生日", "birth_date"),
        ("전자 메일 주소", "email"),
        ("휴대폰", "phone_number"),
        ("Адрес эл. почты", "email"),
        ("Телефон переносной", "phone_number"),
        ("Фамилия", "last_name"),
        ("Διεύθυνση ηλεκτρονικού ταχυδρομείου", "email"),
        ("Κινητό τηλέφωνο", "phone_number"),
        ("Adres e-mail", "email"),
        ("Telefon komórkowy", "phone_number"),
        ("Nazwisko", "last_name"),
        ("E-posta Adresi", "email"),
        ("Cep Telefonu", "phone_number"),
        ("Soyadı", "last_name"),
        # hints and markers: PrestaShop's required "*" and format "(yyyy-mm-dd)"
        ("Email *", "email"),
        ("Last Name *", "last_name"),
        ("Birthday (yyyy-mm-dd)", "birth_date"),
        ("* Phone [optional]", "phone_number"),
        # case, accents, spaces and punctuation do not matter
        ("  PRENOM ", "first_name"),
        ("telephone-portable", "phone_number"),
        ("FECHA_DE_NACIMIENTO", "birth_date"),
    ],
)
def test_headers_of_every_export_and_language_are_recognised(header, field):
    match = match_header(["Email" if field != "email" else "Notes", header])
    assert match.sources[field] == [1]


IGNORED = [
    "E-mail Display Name",
    "Anniversary",
    "Surname Yomi",
    "Home Fax",
    "Note (customer.metafields.custom.note)",
    "Buyer Email Address2",
]


def test_columns_that_name_no_field_are_ignored_not_guessed():
    match = match_header(["Email", *IGNORED])
    assert match.sources == {"email": [0]}
    assert match.ignored == IGNORED


@pytest.mark.parametrize(
    "header, watched",
    [
        ("Partner birthday", True),
        ("Geburtstag Partner", True),
        ("Car Phone", True),
        ("Home Tel", True),
        ("Buyer Email Address2", True),
        ("E-mail Type", False),  # describes a used column's value
        ("Accepts Email Marketing", False),
        ("Phone 1 - Label", False),
        ("Postal Code", False),  # "posta" is a whole word only
        ("Hotel", False),  # "tel" too
        ("Notes", False),
    ],
)
def test_an_ignored_column_that_looks_like_a_field_is_watched(header, watched):
    match = match_header(["Email", header])
    assert match.ignored == [header]
    assert match.watched == ([1] if watched else [])


@pytest.mark.parametrize(
    "header, parts",
    [
        (["Birth Year", "Birth Month", "Birth Day"], ["birth_year", "birth_month", "birth_day"]),
        (["Geburtsjahr", "Geburtsmonat", "Geburtstag"], ["birth_year", "birth_month", "birth_day"]),
        (["誕生年", "誕生月", "誕生日"], ["birth_year", "birth_month", "birth_day"]),
        (["Месяц рождения", "День рождения"], ["birth_month", "birth_day"]),  # the year is optional
    ],
)
def test_a_birthday_split_over_columns_takes_its_day_column_back_from_birth_date(header, parts):
    match = match_header(["Email", *header])
    assert {name: indexes for name, indexes in match.sources.items() if name != "email"} == {
        name: [i] for i, name in enumerate(parts, start=1)
    }


def test_a_day_column_alone_is_a_birthday():
    assert match_header(["Email", "Birth Day"]).sources == {"email": [0], "birth_date": [1]}
    assert match_header(["Email", "Geburtstag"]).sources == {"email": [0], "birth_date": [1]}


def test_magento_address_columns_mark_continuation_rows():
    assert match_header(["email", "firstname", "_address_telephone"]).continuation_rows
    assert not match_header(["email", "firstname", "phone"]).continuation_rows


def test_several_columns_of_a_field_are_ordered_by_the_table_not_the_file():
    match = match_header(
        [
            "Business Phone",
            "Home Phone",
            "E-mail 2 Address",
            "Mobile Phone",
            "E-mail Address",
            "Phone 2 - Value",
            "Phone 1 - Value",
            "Primary Phone",
        ]
    )
    assert match.fed_by() == {
        "email": ["E-mail Address", "E-mail 2 Address"],
        "phone_number": [
            "Mobile Phone",
            "Primary Phone",
            "Phone 1 - Value",
            "Phone 2 - Value",
            "Home Phone",
            "Business Phone",
        ],
    }


def test_a_full_name_beside_first_and_last_names_only_fills_rows_without_them():
    assert "full_name" in match_header(["Email", "Name"]).sources
    match = match_header(["Email", "Name", "Vorname"])  # German "Name" beside "Vorname" is a surname
    assert "full_name" not in match.sources and match.ignored == ["Name"]
    assert match_header(["Email", "Display Name", "First Name"]).sources["full_name"] == [1]


def test_the_same_name_twice_for_a_field_is_ambiguous():
    with pytest.raises(HeaderError, match='duplicate column names in the header: email \\("email", "E-Mail"\\)'):
        match_header(["email", "E-Mail"])


def test_no_email_column_names_what_was_found():
    with pytest.raises(HeaderError, match='no email column in the header \\(found: "Name", "Phone"\\)'):
        match_header(["Name", "Phone", ""])


def test_a_program_mapping_decides_for_its_fields_and_the_table_for_the_rest():
    match = match_header(
        ["Email", "Work Email", "Tel", "Mobile", "Born"],
        {"email": ["Work Email", "email"], "phone_number": ["TEL"], "birth_date": ["born"]},
    )
    assert match.sources == {"email": [1, 0], "birth_date": [4], "phone_number": [2]}
    assert match.ignored == ["Mobile"]  # the mapping replaced the table for phone_number


def test_a_mapping_naming_a_missing_header_names_the_field_and_the_header():
    with pytest.raises(HeaderError, match='csv_columns maps phone_number to "Tel", but the file has no such column'):
        match_header(["Email", "Phone"], {"phone_number": ["Tel"]})


def test_each_header_name_belongs_to_one_field():
    """Except a birthday's name that is also a split birthday's day ("Birth Day" is "Birthday" once
    spaces go): the day only when the header also has a month column."""
    owners: dict[str, set[str]] = {}
    for field, aliases in HEADERS.items():
        for alias in aliases:
            owners.setdefault(header_key(alias), set()).add(field)
    shared = {key: fields for key, fields in owners.items() if len(fields) > 1}
    assert {frozenset(fields) for fields in shared.values()} <= {frozenset({"birth_date", "birth_day"})}
    assert set(FIELDS) - {"first_name", "last_name"} <= set(HEADERS)


def test_the_readme_lists_the_field_table():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "README.md: paste loyalty_pipeline.fields.markdown_table() into the CSV section"


def test_header_names_in_messages_stay_on_one_line():
    with pytest.raises(HeaderError) as error:
        match_header(["first\nname", "x" * 500, "phone"])
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


@pytest.mark.parametrize(
    "stored, mapping",
    [
        (None, None),
        ("", None),
        ("{}", None),
        ({}, None),
        ("null", None),
        (" null ", None),  # JSON null: no mapping
        ('{"email": "Work Email"}', {"email": ["Work Email"]}),  # text, as SQLite returns it
        ({"phone_number": ["Tel", "Fax"]}, {"phone_number": ["Tel", "Fax"]}),  # a dict, as jsonb returns it
    ],
)
def test_a_programs_csv_columns_is_read_as_field_to_header_names(stored, mapping):
    assert csv_column_mapping(_program(stored)) == mapping


@pytest.mark.parametrize(
    "stored, reason",
    [
        ("{not json", "csv_columns is not valid JSON"),
        ('"email"', "csv_columns must be a JSON object"),
        ('{"email": []}', "csv_columns['email'] must be a header name or a non-empty list"),
        ('{"email": [1]}', "csv_columns['email'] must be a header name or a non-empty list"),
        ('{"Email Address": "E-mail"}', "csv_columns maps an unknown field 'Email Address' (to 'E-mail')"),
    ],
)
def test_a_csv_columns_value_that_cannot_be_used_says_why(stored, reason):
    with pytest.raises(InvalidProgramConfig, match=re.escape(f"program 'shop': {reason}")):
        csv_column_mapping(_program(stored))


def _program(csv_columns):
    return program_record("shop", csv_columns=csv_columns)


@pytest.mark.parametrize(
    "header",
    [
        "Default Address Country Code",  # Shopify
        "Address 1 - Country",  # Google
        "Address 2 - Country",
        "Home Country/Region",  # Outlook, then its languages
        "Land/Region privat",
        "Pays/Région (domicile)",
        "住宅地址 国家/地区",
        "国 (自宅)/地域",
        "Страна или регион (дом. адрес)",
        "_address_country_id",  # Magento
        "billing_country",  # WooCommerce
        "Country",  # Thunderbird, a vCard's ADR
    ],
)
def test_the_rows_country_is_a_field_of_the_table(header):
    match = match_header(["Email", header])
    assert match.sources == {"email": [0], "country": [1]}


def test_outlooks_home_country_is_taken_before_its_business_and_other_ones():
    header = ["E-mail Address", "Business Country/Region", "Home Country/Region", "Other Country/Region"]
    assert match_header(header).sources["country"] == [2]
    assert match_header(header).ignored == ["Business Country/Region", "Other Country/Region"]
