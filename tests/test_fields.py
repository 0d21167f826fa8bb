"""THE field table: header names recognised in every export and language, compared loosely, one
field per name, and the README's table generated from it."""

import re
from pathlib import Path

import pytest

from loyalty_pipeline.fields import FIELDS, HEADERS, HeaderError, header_key, markdown_table, match_header
from loyalty_pipeline.programs import InvalidProgramConfig, Program, csv_column_mapping


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
        # case, accents, spaces and punctuation do not matter
        ("  PRENOM ", "first_name"),
        ("telephone-portable", "phone_number"),
        ("FECHA_DE_NACIMIENTO", "birth_date"),
    ],
)
def test_headers_of_every_export_and_language_are_recognised(header, field):
    match = match_header(["Email" if field != "email" else "Notes", header])
    assert match.sources[field] == [1]


def test_columns_that_name_no_field_are_ignored_not_guessed():
    match = match_header(
        [
            "Email",
            "E-mail Display Name",
            "Anniversary",
            "Surname Yomi",
            "Home Fax",
            "Note (customer.metafields.custom.note)",
            "Buyer Email Address2",
        ]
    )
    assert match.sources == {"email": [0]}
    assert match.ignored == [
        "E-mail Display Name",
        "Anniversary",
        "Surname Yomi",
        "Home Fax",
        "Note (customer.metafields.custom.note)",
        "Buyer Email Address2",
    ]


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


def test_a_full_name_is_used_only_without_first_and_last_name_columns():
    assert "full_name" in match_header(["Email", "Name"]).sources
    match = match_header(["Email", "Name", "Vorname"])  # German "Name" beside "Vorname" is a surname
    assert "full_name" not in match.sources and match.ignored == ["Name"]


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
    owners: dict[str, set[str]] = {}
    for field, aliases in HEADERS.items():
        for alias in aliases:
            owners.setdefault(header_key(alias), set()).add(field)
    assert {key: fields for key, fields in owners.items() if len(fields) > 1} == {}
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


def _program(csv_columns) -> Program:
    return Program(
        id="1",
        slug="shop",
        name="Shop",
        birthday_bot_enabled=True,
        birthday_reward_points=1,
        birthday_message="Hi",
        default_phone_region="US",
        date_order="MDY",
        timezone=None,
        birthday_min_notice_days=0,
        birthday_max_delay_days=30,
        birthday_send_hour=9,
        csv_columns=csv_columns,
    )
