"""The files customers really have: one export per platform in tests/data/exports/ (documented
headers and value conventions, fake people), the German Excel ";" file, a .tsv, a pipe .txt and an
.xlsx workbook. Each lands exactly these users, birthdays and phones, on SQLite and PostgreSQL."""

import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from loyalty_pipeline.csv_reader import read_upload
from loyalty_pipeline.ingest import load_upload
from loyalty_pipeline.programs import csv_column_mapping, get_program
from loyalty_pipeline.validation import validate_upload
from tests.factories import make_program, write_contacts_sheet, write_contacts_workbook

EXPORTS = Path(__file__).parent / "data" / "exports"
US = {"date_order": "MDY", "default_phone_region": "US"}
TODAY = date(2026, 1, 1)

# file -> (program settings, users as (email, first, last, birthday, phone), issues as (line, column, severity, reason part))
CASES = {
    "square.csv": (
        US,
        [
            ("ava.thompson@example.com", "Ava", "Thompson", "1990-03-14", "+14155550134"),  # '+1… phone
            ("ben.okafor@example.com", "Ben", "Okafor", "--07-04", "+14155550178"),  # 0000-07-04: no year
            ("chloe.martin@example.com", "Chloé", "Martin", "--03-21", "+14155550199"),  # MM-DD
        ],
        [(5, "email", "error", "email is missing")],
    ),
    "mailchimp.csv": (
        US,
        [
            ("dana.kim@example.com", "Dana", "Kim", "--05-09", "+12175550142"),
            ("eli.moreau@example.com", "Eli", "Moreau", "--12-25", None),
            ("fay.nguyen@example.com", "Fay", "Nguyen", None, "+12125550187"),
        ],
        [],
    ),
    "shopify.csv": (
        US,
        [
            (
                "gus.ferreira@example.com",
                "Gus",
                "Ferreira",
                "1990-03-14",
                "+17755550100",
            ),  # Phone before Default Address Phone
            ("hana.sato@example.com", "Hana", "Sato", None, "+17755550161"),  # only Default Address Phone
            ("ivan.petrov@example.com", "Ivan", "Petrov", "1985-11-30", None),  # metafield '1985-11-30
        ],
        [],
    ),
    "google.csv": (
        US,
        [
            ("jana.novak@example.com", "Jana", "Novak", "1985-06-12", "+13125550123"),
            ("karl.berg@example.com", "Karl", "Berg", "--03-01", "+16505550111"),  # "a ::: b" cells
            ("lena.ortiz@example.com", "Lena", "Ortiz", None, "+13125550166"),  # E-mail 2, Phone 2
        ],
        [],
    ),
    "google-outlook.csv": (
        US,
        [
            ("mia.rossi@example.com", "Mia", "Rossi", "1992-08-20", "+13125550102"),  # mobile before home
            ("noah.fischer@example.com", "Noah", "Fischer", None, "+16505550133"),  # primary before business
        ],
        [],
    ),
    "outlook.csv": (
        US,
        [
            ("olivia.brown@example.com", "Olivia", "Brown", "1990-03-14", "+13125550151"),
            ("paul.meyer@example.com", "Paul", "Meyer", None, "+16505550160"),
        ],
        [(3, "birth_date", "warning", "placeholder '0/0/00'"), (4, "email", "error", "email is missing")],
    ),
    "outlook-com.csv": (
        US,
        [
            ("rita.alvarez@example.com", "Rita", "Alvarez", "1988-02-29", "+14155550171"),
            ("sam.wu@example.com", "Sam", "Wu", None, "+14155550180"),
        ],
        [],
    ),
    "klaviyo.csv": (
        US,
        [
            ("tara.jones@example.com", "Tara", "Jones", "1992-06-21", "+14155550190"),
            ("uma.singh@example.com", "Uma", "Singh", None, None),
        ],
        [(4, "email", "error", "email is not a valid address")],
    ),
    "hubspot.csv": (
        US,
        [
            ("victor.hugo@example.com", "Victor", "Hugo", "1979-10-02", "+16175550111"),  # mobile phone number first
            ("wendy.clark@example.com", "Wendy", "Clark", None, "+16175550120"),
        ],
        [],
    ),
    "eventbrite.csv": (
        US,
        [
            ("xena.lopez@example.com", "Xena", "Lopez", "1991-07-04", "+16465550133"),
            ("yusuf.ali@example.com", "Yusuf", "Ali", None, "+16465550144"),
        ],
        [(4, "email", "warning", "duplicate email (first on line 3)")],
    ),
    "stripe.csv": (
        US,
        [
            ("cher@example.com", "Cher", None, None, None),
            ("jean.luc@example.com", "Jean", "Luc Picard", None, None),  # Name: first word / rest
            ("zoe.adams@example.com", "Zoe", "Adams", None, "+14155550155"),
        ],
        [],
    ),
    "german-excel.csv": (
        {"date_order": "DMY", "default_phone_region": "DE"},
        [
            ("anna.schmidt@example.de", "Anna", "Schmidt", "1985-12-01", "+493098765432"),
            ("juergen.mueller@example.de", "Jürgen", "Müller", "1990-03-14", "+4915123456789"),  # Handy before Telefon
            ("lukas.becker@example.de", "Lukas", "Becker", "1979-12-31", None),
            ("marie.wagner@example.de", "Marie", "Wagner", None, "+491605551234"),
        ],
        [
            (
                5,
                "birth_date",
                "warning",
                "month 31 does not exist; this program reads slash dates day-first (date_order DMY)",
            )
        ],
    ),
    "customers-es.tsv": (
        {"date_order": "DMY", "default_phone_region": "ES"},
        [
            ("lucia.garcia@example.es", "Lucía", "García López", "1990-03-14", "+34612345678"),
            ("mateo.fernandez@example.es", "Mateo", "Fernández", None, "+34917654321"),
        ],
        [],
    ),
    "contacts-fr.txt": (
        {"date_order": "DMY", "default_phone_region": "FR"},
        [
            ("camille.dubois@example.fr", "Camille", "Dubois", "1990-03-14", "+33612345678"),
            ("hugo.leroy@example.fr", "Hugo", "Leroy", "--05-24", "+33198765432"),  # 1604-05-24: no year
        ],
        [],
    ),
    "contacts.xlsx": (
        US,
        [
            ("ann.lee@example.com", "Ann", "Lee", "1990-03-14", "+14155550134"),  # number phone, date cell
            ("bo.chan@example.com", "Bo", "Chan", "1990-03-14", "+14155550178"),  # serial 32946
            ("cy.diaz@example.com", "Cy", "Diaz", "--03-21", "+14155550199"),
        ],
        [(7, "email", "error", "email is not a valid address")],
    ),  # the sheet's row 7
    # legacy Excel and LibreOffice: a title row above the header, a phone stored as a number
    **{
        f"contacts.{kind}": (
            US,
            [
                ("ann.lee@example.com", "Ann", "Lee", "1990-03-14", "+14155550134"),
                ("bo.chan@example.com", "Bo", "Chan", "--03-21", "+14155550178"),
            ],
            [(5, "email", "error", "email is not a valid address")],
        )
        for kind in ("xls", "ods")
    },
    "thunderbird.csv": (
        US,
        [
            ("ada.lovelace@example.com", "Ada", "Lovelace", "1990-03-15", "+14155550134"),  # year, month, day
            ("bob.stone@example.com", "Bob", "Stone", "--05-24", "+14155550178"),  # no year; Display Name; Work Phone
            ("cy.ray@example.com", "Cy", "Ray", None, None),
        ],
        [(4, "birth_date", "warning", "'1985': missing day and month")],  # a year alone is no birthday
    ),
    "thunderbird-ja.csv": (  # Shift-JIS; 誕生日 is the day beside 誕生年 and 誕生月
        {"date_order": "DMY", "default_phone_region": "JP"},
        [
            ("hanako.sato@example.jp", "花子", "佐藤", "--12-01", "+81312345678"),
            ("taro.yamada@example.jp", "太郎", "山田", "1990-03-14", "+819012345678"),
        ],
        [],
    ),
    "prestashop.csv": (
        US,
        [
            ("dana.kovac@example.com", "Dana", "Kovac", "1990-03-14", None),  # "Birthday (yyyy-mm-dd)", "Email *"
            ("emil.novak@example.com", "Emil", "Novak", None, None),
        ],
        [
            (1, "Partner birthday", "warning", 'column "Partner birthday" looks like a customer field'),
            (3, "birth_date", "warning", "placeholder '0000-00-00'"),
        ],
    ),
    "magento.csv": (
        US,
        [
            (
                "gina.ross@example.com",
                "Gina",
                "Ross",
                "1985-12-01",
                "+15125550101",
            ),  # her second address row is not her
            ("hal.berg@example.com", "Hal", "Berg", None, "+16175550103"),  # the phone of his address row
        ],
        [],
    ),
    "woocommerce.csv": (
        US,
        [
            ("ivy.chen@example.com", "Ivy", "Chen", None, "+12065550111"),
            ("jon.park@example.com", "Jon", "Park", None, "+12065550122"),  # billing_email, shipping_phone
        ],
        [],
    ),
    "linkedin.csv": (  # three lines of notes and a blank line above the header (line 4)
        US,
        [("kim.lee@example.com", "Kim", "Lee", None, None)],
        [(6, "email", "error", "email is missing")],
    ),
    "outlook-exchange.csv": (
        US,
        [
            ("max.weber@example.com", "Max", "Weber", "1990-03-14", "+14155550190"),
            ("nia.ford@example.com", None, None, None, "+14155550191"),  # an extension is no letter
        ],
        [
            (2, "email", "warning", 'email taken from "E-mail 2 Address": "E-mail Address" holds no valid address'),
            (2, "phone_number", "warning", 'taken from "Home Phone": "Mobile Phone" holds no valid phone number'),
            (3, "birth_date", "warning", "placeholder '0/0/00'"),
            (3, "first_name", "warning", "first_name is an email address or a domain, not a name"),
        ],
    ),
    "outlook-zh.csv": (  # GB18030
        {"date_order": "MDY", "default_phone_region": "CN"},
        [
            ("fang.li@example.cn", "芳", "李", None, "+861065529988"),
            ("wei.wang@example.cn", "伟", "王", "1990-03-14", "+8613800138000"),
        ],
        [(3, "birth_date", "warning", "placeholder '0/0/00'")],
    ),
    # The row's own country steers a national phone (issue 19, point 12); without one, the program's region.
    "shopify-chile.csv": (  # a Chilean shop: Default Address Country Code
        {"date_order": "DMY", "default_phone_region": "CL"},
        [
            ("ana.soto@example.cl", "Ana", "Soto", None, "+56961234568"),  # no country: the program's CL
            ("diego.rojas@example.cl", "Diego", "Rojas", None, "+56961234567"),
            ("priya.nair@example.in", "Priya", "Nair", None, "+919876543210"),  # IN: an Indian number
            ("tomas.vale@example.com", "Tomas", "Vale", None, None),
        ],
        [
            (5, "country", "warning", "country is not one we know, so the phone was read in region CL"),
            (5, "phone_number", "warning", "invalid phone_number '98765 43211' for region CL"),
        ],
    ),
    "google-countries.csv": (  # Address 1 - Country, a name
        US,
        [
            ("jake.miller@example.com", "Jake", "Miller", None, "+13125550123"),
            ("meera.iyer@example.in", "Meera", "Iyer", None, "+919876543212"),  # India
            ("oliver.hughes@example.co.uk", "Oliver", "Hughes", None, "+442079460018"),  # United Kingdom
        ],
        [],
    ),
    "outlook-de-countries.csv": (  # German Outlook: Land/Region privat, a German name
        {"date_order": "DMY", "default_phone_region": "DE"},
        [
            ("arjun.rao@example.in", "Arjun", "Rao", None, "+919876543210"),  # Indien
            ("jonas.weber@example.de", "Jonas", "Weber", None, "+4915123456789"),
            ("lena.huber@example.at", "Lena", "Huber", "1990-03-14", "+436641234567"),  # Österreich, not +49 664...
        ],
        [],
    ),
    "magento-countries.csv": (  # _address_country_id, on the customer row or its address row
        US,
        [
            ("nora.blake@example.co.uk", "Nora", "Blake", None, "+442079460019"),  # GB on the continuation row
            ("sanjay.das@example.in", "Sanjay", "Das", None, "+919876543214"),
        ],
        [],
    ),
    "apple-contacts.vcf": (  # line = the card's number
        US,
        [
            (
                "pia.olsen@example.com",
                "Pia",
                "Olsen",
                "--05-24",
                "+14155550141",
            ),  # X-APPLE-OMIT-YEAR; the pref email; CELL first
            ("raj.quinn@example.com", "Raj", "Quinn", "1985-12-01", None),
            ("sol.tan@example.com", "Sol", "Tan", "--03-14", "+14155550142"),  # --0314; FN split
        ],
        [(4, "email", "error", "email is missing")],
    ),
}


def stored_users(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT email, first_name, last_name, birth_date, birth_month, birth_day, phone_number FROM users ORDER BY email"
            )
        ).all()
    return [
        (email, first, last, str(born)[:10] if born else (f"--{month:02d}-{day:02d}" if month else None), phone)
        for email, first, last, born, month, day, phone in rows
    ]


def stored_issues(engine, key: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text(
                'SELECT line, "column", severity, reason FROM upload_issues WHERE upload_key = :k '
                'ORDER BY line, "column"'
            ),
            {"k": key},
        ).all()


def ingest(engine, program, path: Path, now):
    key = f"{program.slug}/{path.name}"
    with engine.connect() as conn:
        columns = csv_column_mapping(get_program(conn, program.slug))
    raw = read_upload(path, file_label=key, columns=columns)
    validated = validate_upload(
        raw, date_order=program.date_order, phone_region=program.default_phone_region, today=now.date()
    )
    load_upload(engine, key=key, file_name=path.name, sha256=raw.sha256, program=program, validated=validated, now=now)
    return key, raw


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_export_lands_exactly_its_users_birthdays_and_phones(name, engine, now, tmp_path):
    settings, users, issues = CASES[name]
    program = make_program(engine, "shop", **settings)
    path = tmp_path / "shop" / name
    path.parent.mkdir(parents=True)
    if name.endswith(".xlsx"):
        write_contacts_workbook(path)
    elif name.endswith((".xls", ".ods")):
        write_contacts_sheet(path)
    else:
        shutil.copyfile(EXPORTS / name, path)

    key, _ = ingest(engine, program, path, now)

    assert stored_users(engine) == sorted(users)
    found = stored_issues(engine, key)
    assert [(line, column, severity) for line, column, severity, _ in found] == [i[:3] for i in issues]
    for (*_, reason), (*_, part) in zip(found, issues, strict=True):
        assert part in reason


def test_every_platform_file_is_there():
    assert {p.name for p in EXPORTS.iterdir()} | {"contacts.xlsx", "contacts.xls", "contacts.ods"} == set(CASES)


def test_a_legacy_encoding_is_detected_and_its_confidence_kept():
    raw = read_upload(EXPORTS / "thunderbird-ja.csv")
    assert (raw.encoding, raw.encoding_confidence) == ("cp932", 1.0)
    assert read_upload(EXPORTS / "outlook-zh.csv").encoding == "gb18030"
    assert read_upload(EXPORTS / "shopify.csv").encoding == "utf-8"


def test_the_columns_that_fed_each_value_are_counted():
    raw = read_upload(EXPORTS / "outlook-exchange.csv")
    validated = validate_upload(raw, date_order="MDY", phone_region="US", today=TODAY)
    assert validated.value_sources == {
        "email": {"E-mail Address": 1, "E-mail 2 Address": 1},
        "phone_number": {"Mobile Phone": 1, "Home Phone": 1},
    }
    prestashop = validate_upload(
        read_upload(EXPORTS / "prestashop.csv"), date_order="MDY", phone_region="US", today=TODAY
    )
    assert prestashop.file_warnings == [
        'column "Partner birthday" looks like a customer field but matches none, so its 1 value was not read '
        "(map it in csv_columns)"
    ]
