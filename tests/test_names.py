"""Slugs and file names come from outside and must never escape the uploads folder."""

import pytest

from loyalty_pipeline.names import (
    InvalidName,
    check_file_name,
    check_slug,
    file_kind,
    split_upload_key,
    upload_key,
    upload_path,
)


@pytest.mark.parametrize("slug", ["../etc", "joes pizza", "Joes", "a/b", "-x", "x\x00y", "", "a\nb", "..", "é"])
def test_bad_slugs_are_rejected_with_a_reason(slug):
    with pytest.raises(InvalidName, match="invalid program slug"):
        check_slug(slug)


@pytest.mark.parametrize(
    "name",
    [
        "../x.csv",
        "a/b.csv",
        "a b.csv",
        ".hidden.csv",
        "x.pdf",
        ".x.csv.part",
        "x.xlsx.zip",
        "x\r.csv",
        "..csv",
        "a\\b.csv",
    ],
)
def test_bad_file_names_are_rejected_with_a_reason(name):
    with pytest.raises(InvalidName, match="invalid upload file name"):
        check_file_name(name)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("march.csv", "csv"),
        ("March.CSV", "csv"),
        ("tabs.tsv", "tsv"),
        ("export.txt", "txt"),
        ("Customers.xlsx", "xlsx"),
        ("old.xls", "xls"),
    ],
)
def test_uploads_may_be_text_files_or_workbooks(name, kind):
    assert check_file_name(name) == name
    assert file_kind(name) == kind


def test_upload_keys_round_trip_and_stay_inside_the_uploads_dir(tmp_path):
    key = upload_key("joes-pizza", "march_2026.csv")
    assert key == "joes-pizza/march_2026.csv"
    assert split_upload_key(key) == ("joes-pizza", "march_2026.csv")
    assert upload_path(tmp_path, key) == (tmp_path / "joes-pizza" / "march_2026.csv").resolve()
    with pytest.raises(InvalidName):
        upload_path(tmp_path, "../../etc/passwd.csv")
    with pytest.raises(InvalidName):
        upload_path(tmp_path, "joes-pizza/../../x.csv")
