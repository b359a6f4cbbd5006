"""Suggestions for a file's unmatched columns, the presets as data, a remembered mapping."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rosterflow.events import FileFormat
from services.ingest.views import ColumnMappingRequest
from services.validator.errors import FileError
from services.validator.header import CANONICAL
from services.validator.mapping import Remembered, header_key, presets
from tests.support.checks import NUMBERS, TODAY, run_check, valid_identities


def _failed(data: bytes, fmt: FileFormat = FileFormat.ROSTERFLOW_CSV) -> FileError:
    with pytest.raises(FileError) as raised:
        run_check(data, fmt=fmt)
    assert raised.value.columns is not None
    return raised.value


def _suggested(error: FileError) -> dict[str, tuple[str | None, str | None]]:
    assert error.columns is not None
    return {c["name"]: (c["suggestion"], c["reason"]) for c in error.columns["unmatched"]}


def test_every_system_of_the_presets_names_only_canonical_columns() -> None:
    systems = {p.system for p in presets()}
    assert systems == {"ist_extens", "tersus_adela", "procapita"}
    for preset in presets():
        assert set(preset.aliases.values()) <= set(CANONICAL)
        assert {"identity", "given_name", "family_name"} <= set(preset.aliases.values())


def test_the_api_accepts_only_the_canonical_columns() -> None:
    assert ColumnMappingRequest(columns={"a": CANONICAL[-1], "b": None}).columns["b"] is None
    with pytest.raises(ValidationError):
        ColumnMappingRequest(columns={"a": "shoe_size"})


def test_an_identity_column_is_recognised_by_its_values_and_names_by_likeness() -> None:
    rows = [f"{n};Märta;Åberg;x{i}@skola.example" for i, n in enumerate(NUMBERS[:5])]
    data = ("ID;Förnamnet;Efternamn;Kontakt\r\n" + "\r\n".join(rows) + "\r\n").encode()

    error = _failed(data)

    assert error.code == "file_missing_column"
    assert _suggested(error) == {
        "ID": ("identity", "values"),
        "Förnamnet": ("given_name", "name_likeness"),
        "Kontakt": ("email", "values"),
    }
    assert error.columns is not None
    assert error.columns["missing"] == ["identity", "given_name"]
    assert error.columns["header_key"] == header_key(["ID", "Förnamnet", "Efternamn", "Kontakt"])


def test_a_column_nothing_suggests_is_listed_without_a_suggestion() -> None:
    data = f"Nummer;Förnamn;Efternamn;Skostorlek\r\n{NUMBERS[0]}x;Bo;Ek;42\r\n".encode()
    assert _suggested(_failed(data)) == {"Nummer": (None, None), "Skostorlek": (None, None)}


def test_a_remembered_mapping_reads_the_file_with_the_same_header() -> None:
    header = "ID;Förnamnet;Efternamn;Skostorlek"
    data = f"{header}\r\n{NUMBERS[0]};Märta;Åberg;38\r\n".encode()
    mapping = Remembered({"ID": "identity", "Förnamnet": "given_name", "Skostorlek": None})

    result = run_check(data, mappings={header_key(header.split(";")): mapping})

    assert valid_identities(result) == [NUMBERS[0]]
    assert result.detected.columns == {
        "identity": "ID", "given_name": "Förnamnet", "family_name": "Efternamn"
    }  # fmt: skip


def test_a_remembered_mapping_finds_the_header_below_a_title() -> None:
    header = ["ID", "Namn1", "Namn2"]
    data = f"Elever ht 2026\r\n\r\n{';'.join(header)}\r\n{NUMBERS[0]};Märta;Åberg\r\n".encode()
    mapping = Remembered({"ID": "identity", "Namn1": "given_name", "Namn2": "family_name"})

    result = run_check(data, mappings={header_key(header): mapping})

    assert result.detected.header_line == 3
    assert valid_identities(result) == [NUMBERS[0]]


def test_a_preset_header_below_a_title_is_found_for_the_suggestions() -> None:
    data = (
        f"Export från Procapita {TODAY}\r\nPnr;Tilltalsnamn;Efternamn;Klasskod\r\n"
        f"{NUMBERS[0]};Märta;Åberg;7A\r\n"
    ).encode()
    error = _failed(data, FileFormat.SCHOOLSOFT)
    assert error.columns is not None
    assert error.columns["header"] == ["Pnr", "Tilltalsnamn", "Efternamn", "Klasskod"]


REPEATED = "Personnummer;Förnamn;Efternamn;Telefon;telefon;Mobil"


def test_a_repeated_column_fails_the_check_with_each_of_its_columns_listed() -> None:
    data = f"{REPEATED}\r\n{NUMBERS[0]};Bo;Ek;070-111 22 33;08-123 45 67;\r\n".encode()

    error = _failed(data)

    assert error.code == "file_repeated_column"
    assert error.columns is not None
    assert error.columns["missing"] == []
    assert error.columns["unmatched"] == [
        {"name": "Telefon", "position": 3, "suggestion": "phone", "reason": "repeated"},
        {"name": "telefon", "position": 4, "suggestion": None, "reason": "repeated"},
        {"name": "Mobil", "position": 5, "suggestion": None, "reason": "repeated"},
    ]  # Mobil is another of the template's names for the phone


def test_a_remembered_mapping_says_which_of_the_repeated_columns_is_read_as_what() -> None:
    data = f"{REPEATED}\r\n{NUMBERS[0]};Bo;Ek;070-111 22 33;08-123 45 67;\r\n".encode()
    mapping = Remembered({"Telefon": [None, "phone_2"], "Mobil": "phone"})

    result = run_check(data, mappings={header_key(REPEATED.split(";")): mapping})

    assert valid_identities(result) == [NUMBERS[0]]
    assert result.detected.columns["phone_2"] == "telefon"
    assert result.detected.columns["phone"] == "Mobil"
    assert result.valid.column("phone_2").to_pylist() == ["08-123 45 67"]
    assert result.valid.column("phone").to_pylist() == [None]


def test_a_repeated_required_column_is_read_from_the_column_the_mapping_names() -> None:
    header = "Personnummer;Förnamn;Efternamn;Personnummer"
    data = f"{header}\r\n{NUMBERS[0]}x;Bo;Ek;{NUMBERS[1]}\r\n".encode()
    error = _failed(data)
    assert error.code == "file_repeated_column"
    assert error.columns is not None
    assert [(c["position"], c["suggestion"]) for c in error.columns["unmatched"]] == [
        (0, "identity"),
        (3, None),
    ]
    mapping = Remembered({"Personnummer": [None, "identity"]})

    result = run_check(data, mappings={header_key(header.split(";")): mapping})

    assert valid_identities(result) == [NUMBERS[1]]


def test_the_api_maps_a_repeated_name_by_a_list_of_canonical_columns() -> None:
    body = ColumnMappingRequest(columns={"Telefon": ["phone", None]})
    assert body.columns["Telefon"] == ["phone", None]
    with pytest.raises(ValidationError):
        ColumnMappingRequest(columns={"Telefon": ["phone", "shoe_size"]})
