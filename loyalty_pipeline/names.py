"""Program slugs, upload file names and the upload keys built from them.

Both come from outside (a tenant's slug, a customer's file name) and become paths under
LOYALTY_UPLOADS_DIR and Dagster partition keys, so they are checked against strict patterns
instead of being cleaned up: a name that needs cleaning is rejected with the reason."""

from __future__ import annotations

import re
from pathlib import Path

SLUG_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
# The file kinds an upload may be (by its name's suffix): text files, workbooks (Excel, legacy
# Excel, LibreOffice) and vCard address books (Apple Contacts, Google, Outlook).
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".ods", ".vcf")
# re.ASCII: with IGNORECASE alone, [A-Za-z] also matches the Kelvin sign, long s and dotless i.
FILE_NAME_PATTERN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.(?:" + "|".join(s[1:] for s in UPLOAD_SUFFIXES) + ")",
    re.IGNORECASE | re.ASCII,
)


class InvalidName(ValueError):
    pass


def check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not SLUG_PATTERN.fullmatch(slug):
        raise InvalidName(f"invalid program slug {slug!r}: use 1-64 lower-case letters, digits and inner hyphens")
    return slug


def check_file_name(name: str) -> str:
    if not isinstance(name, str) or not FILE_NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidName(
            f"invalid upload file name {name!r}: use letters, digits, '.', '_' or '-' "
            "(no spaces, slashes or control characters), ending in " + ", ".join(UPLOAD_SUFFIXES)
        )
    return name


def file_kind(name: str) -> str:
    """csv, tsv, txt, xlsx, xls, ods or vcf: what an upload is, from its name."""
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidName(f"invalid upload file name {name!r}: not one of {', '.join(UPLOAD_SUFFIXES)}")
    return suffix[1:]


def upload_key(slug: str, file_name: str) -> str:
    return f"{check_slug(slug)}/{check_file_name(file_name)}"


def split_upload_key(key: str) -> tuple[str, str]:
    slug, sep, file_name = key.partition("/")
    if not sep:
        raise InvalidName(f"invalid upload key {key!r}: expected <program_slug>/<file name>")
    return check_slug(slug), check_file_name(file_name)


def upload_path(uploads_dir: Path, key: str) -> Path:
    """The file behind an upload key; the checks above already forbid escaping, and the
    resolved-path test keeps that true even if a pattern is loosened one day."""
    slug, file_name = split_upload_key(key)
    root = Path(uploads_dir).resolve()
    path = (root / slug / file_name).resolve()
    if root not in path.parents:
        raise InvalidName(f"upload key {key!r} points outside the uploads directory")
    return path
