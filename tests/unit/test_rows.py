from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from rosterflow.report import VALID_ROWS_SCHEMA
from services.validator.duplicates import (
    duplicate_issues,
    find_duplicates,
    row_fingerprint,
)
from services.validator.errors import FileCode
from services.validator.identity import IdentityError
from services.validator.messages import MESSAGES, RowCode, message
from services.validator.rows import (
    ISSUE_SCHEMA,
    RowIssue,
    Rules,
    clean_text,
    formula_like,
    validate_batch,
)

TODAY = date(2026, 3, 15)
RULES = Rules(today=TODAY)
# Skatteverket test numbers.
ANNA = "199001212399"
BO = "201503162396"
CE = "189001019802"

COLUMNS = ("identity", "given_name", "family_name", "grade", "class")


def table(*rows: tuple[str | None, ...], columns: tuple[str, ...] = COLUMNS) -> pa.Table:
    return pa.table(
        {name: pa.array([row[i] for row in rows], pa.string()) for i, name in enumerate(columns)}
    )


def test_valid_row_is_normalised() -> None:
    result = validate_batch(
        table(("900121-2399", "  Anna \u00a0 Maria ", "Svensson\t", " 7 ", " 7A ")), 2, RULES
    )
    assert result.valid.schema == VALID_ROWS_SCHEMA
    assert result.valid.to_pylist() == [
        {
            "line": 2,
            "identity_number": ANNA,
            "identity_kind": "personnummer",
            "given_name": "Anna Maria",
            "family_name": "Svensson",
            "school_form": "compulsory",
            "grade_year": 7,
            "class_name": "7A",
            "protected_identity": False,
        }
        # Contact data and guardians: none in the file, none in the row.
        | dict.fromkeys(
            (
                n
                for n in VALID_ROWS_SCHEMA.names
                if n.startswith(("guardian", "phone", "email"))
                or n in ("street", "postcode", "city")
            ),
        )
    ]
    assert result.issue_list() == []


def test_empty_rows_are_counted_not_reported() -> None:
    result = validate_batch(
        table(
            (ANNA, "Anna", "Svensson", "7", "7A"),
            ("", " ", None, "", "\u00a0"),
            (BO, "Bo", "Ek", "5", "5B"),
        ),
        10,
        RULES,
    )
    assert result.empty_rows == 1
    assert result.valid.column("line").to_pylist() == [10, 12]
    assert result.issues.num_rows == 0


def test_missing_names_are_errors_and_the_row_is_skipped() -> None:
    result = validate_batch(
        table((ANNA, " ", "Svensson", "7", "7A"), (BO, "Bo", None, "5", "5B")), 2, RULES
    )
    assert result.valid.num_rows == 0
    assert result.issue_list() == [
        RowIssue(2, "given_name", RowCode.GIVEN_NAME_MISSING, "error", None, ANNA),
        RowIssue(3, "family_name", RowCode.FAMILY_NAME_MISSING, "error", None, BO),
    ]


def test_every_problem_of_a_row_is_reported_in_line_order() -> None:
    bad_check = ANNA[:11] + "0"
    result = validate_batch(
        table(
            (BO, "Bo", "Ek", "5", "5B"),
            (bad_check, "", "Svensson", "7", "7A"),
            ("", "C", "D", "", ""),
        ),
        2,
        RULES,
    )
    assert result.valid.column("identity_number").to_pylist() == [BO]
    assert result.issue_list() == [
        RowIssue(3, "identity", IdentityError.BAD_CHECK_DIGIT, "error", bad_check),
        RowIssue(3, "given_name", RowCode.GIVEN_NAME_MISSING, "error", None),
        RowIssue(4, "identity", IdentityError.MISSING, "error", ""),
        RowIssue(4, "grade", RowCode.GRADE_MISSING, "warning", None),
    ]


def test_temporary_number_imports_with_a_warning() -> None:
    result = validate_batch(table(("150312-tf10", "Bo", "Ek", "F", "FA")), 2, RULES)
    assert result.valid.column("identity_number").to_pylist() == ["20150312TF10"]
    assert result.valid.column("identity_kind").to_pylist() == ["temporary"]
    assert result.issue_list() == [
        RowIssue(
            2, "identity", RowCode.IDENTITY_TEMPORARY, "warning", "20150312TF10", "20150312TF10"
        )
    ]


@pytest.mark.parametrize(
    "cell",
    ["=SUM(A1:A3)", "=1+1", "= A1", "+A1", "-B12", "@SUM(1)", "+HYPERLINK(\"x\")",
     "=cmd|' /C calc'!A0", "-2+3|x", "+=1", '-1+HYPERLINK("http://evil.example","x")',
     "-1+1", "+1+1", "@anna", "=", "-A1*2", "+1*2", "-2/3"],
)  # fmt: skip
def test_formula_like_cells_warn_and_are_kept_as_text(cell: str) -> None:
    result = validate_batch(table((ANNA, cell, "Svensson", "7", "7A")), 2, RULES)
    assert result.valid.column("given_name").to_pylist() == [cell]
    assert result.issue_list() == [
        RowIssue(2, "given_name", RowCode.CELL_FORMULA_LIKE, "warning", cell, ANNA)
    ]


@pytest.mark.parametrize(
    "cell", ["Anna-Lena", "+46 70 123 45 67", "+46 (0)70-123 45 67", "-", "-1,5", "Ann=Marie"]
)
def test_ordinary_cells_do_not_look_like_formulas(cell: str) -> None:
    result = validate_batch(table((ANNA, "Anna", cell, "7", "7A")), 2, RULES)
    assert result.valid.num_rows == 1
    assert result.issue_list() == []


def test_formula_check_finds_a_formula_among_many_ordinary_cells() -> None:
    values = pa.array(["Anna"] * 1000 + ["=1+1"] + ["Bo"] * 1000, pa.string())
    assert formula_like(values).to_pylist() == [False] * 1000 + [True] + [False] * 1000


def test_line_numbers_may_be_given_per_row() -> None:
    result = validate_batch(
        table((ANNA, "Anna", "Svensson", "7", "7A"), (BO, "", "Ek", "5", "5B")),
        pa.array([2, 5]),
        RULES,
    )
    assert result.valid.column("line").to_pylist() == [2]
    assert [issue.line for issue in result.issue_list()] == [5]
    with pytest.raises(ValueError, match="line numbers"):
        validate_batch(table((ANNA, "Anna", "Svensson", "7", "7A")), pa.array([1, 2]), RULES)


def test_optional_columns_may_be_absent_but_the_required_ones_may_not() -> None:
    names_only = table(
        (ANNA, "Anna", "Svensson"), columns=("identity", "given_name", "family_name")
    )
    result = validate_batch(names_only, 2, RULES)
    # No grade or class column: no grade is looked for, and none is warned about.
    assert result.valid.column("school_form").to_pylist() == [None]
    assert result.issue_list() == []
    with pytest.raises(ValueError, match="given_name"):
        validate_batch(names_only.drop_columns(["given_name"]), 2, RULES)


def test_issue_table_has_the_report_schema() -> None:
    result = validate_batch(table(("x", "Anna", "Svensson", "7", "7A")), 2, RULES)
    assert result.issues.schema == ISSUE_SCHEMA
    assert result.issues.to_pylist() == [
        {"line": 2, "column": "identity", "code": "identity_format", "severity": "error",
         "value": "x", "identity_number": None}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "cleaned"),
    [
        ([" a  b ", "\u00a0", None, "c\u202f\td"], ["a b", None, None, "c d"]),
        (["Anna", "Bo"], ["Anna", "Bo"]),
        (["x\u2007y", "\ufeffz"], ["x y", "z"]),
        (["", "   "], [None, None]),
        ([None, None], [None, None]),
    ],
)
def test_clean_text_trims_collapses_and_nulls_blanks(
    values: list[str | None], cleaned: list[str | None]
) -> None:
    assert clean_text(pa.array(values, pa.string())).to_pylist() == cleaned


def test_clean_text_finds_one_untidy_value_among_many() -> None:
    values = pa.array(["Anna"] * 1000 + ["Anna  Maria"] + ["Bo"] * 1000, pa.string())
    assert clean_text(values).to_pylist()[1000] == "Anna Maria"


def test_every_code_has_an_actionable_message_in_both_languages() -> None:
    codes = [*IdentityError, *RowCode]
    assert set(MESSAGES) == set(codes)
    for code in codes:
        sv, en = message(code, "sv"), message(code, "en")
        assert sv != en, code
        # Each says what is wrong, a dash, then what to do about it.
        assert "—" in sv, code
        assert "—" in en, code


def test_row_and_file_codes_never_collide() -> None:
    assert not {str(c) for c in FileCode} & {str(c) for c in MESSAGES}


def test_message_language() -> None:
    assert message("identity_bad_check_digit", "sv") == (
        "Personnumret har fel kontrollsiffra — kontrollera de sista fyra siffrorna."
    )
    assert message("identity_bad_check_digit", "en") == (
        "The identity number's check digit is wrong — check the last four digits."
    )
    assert MESSAGES[RowCode.DUPLICATE_EXACT].severity == "warning"


def test_find_duplicates_tells_conflicts_from_exact_copies() -> None:
    identity = pa.array(["a", "a", "b", "b", "b", "c", None, None, "a"])
    fingerprint = pa.array(["x", "x", "x", "y", "x", "z", "q", "q", "x"])
    found = find_duplicates(identity, fingerprint)
    # Same data: later copies only. Different data: every row of that number.
    assert found.exact.to_pylist() == [False, True, False, False, False, False, False, False, True]
    assert found.conflict.to_pylist() == [False, False, True, True, True] + [False] * 4

    issues = duplicate_issues(pa.arange(2, 11), identity, found)
    assert [(row["line"], row["code"], row["severity"]) for row in issues.to_pylist()] == [
        (3, "duplicate_exact", "warning"),
        (4, "duplicate_conflict", "error"),
        (5, "duplicate_conflict", "error"),
        (6, "duplicate_conflict", "error"),
        (10, "duplicate_exact", "warning"),
    ]
    assert issues.column("identity_number").to_pylist() == ["a", "b", "b", "b", "a"]


def test_duplicates_compare_normalised_rows() -> None:
    result = validate_batch(
        table(
            (ANNA, "Anna", "Svensson", "7", "7A"),
            ("900121-2399", " Anna ", "Svensson", "07", "7A"),
            (CE, "Ce", "Berg", "9", "9A"),
            (CE, "Ce", "Berg", "9", "9B"),
        ),
        2,
        RULES,
    )
    valid = result.valid
    found = find_duplicates(valid.column("identity_number"), row_fingerprint(valid))
    assert found.exact.to_pylist() == [False, True, False, False]
    assert found.conflict.to_pylist() == [False, False, True, True]
