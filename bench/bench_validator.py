"""The validator against the parse floor and the typical per-row implementation.

    .venv/bin/python bench/bench_validator.py [--rows 1000000 100000] [--baseline-rows 100000]

For each generated file (seeded, the columns of a real export) it reports, in
one table, each time the best of ``--repeat`` runs:
- the validator's check_file (parse, every rule, the report written as Parquet
  to a local object store);
- the floor: pyarrow.csv.read_csv of the same file, parse only;
- reading and writing without any rule: pyarrow's streaming reader, every
  value a string, the rows written as Parquet with the report's settings;
- the typical implementation: csv.DictReader, a pydantic model per row,
  python-stdnum's personnummer check, timed on the first ``--baseline-rows``
  rows and extrapolated when the file is larger;
- the validator's peak RSS, measured in a fresh process.

Skatteverket publishes 41,493 test identity numbers; files larger than that
get numbers generated with a valid check digit from a fixed seed (see
libs/rosterflow/testdata/README.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError, field_validator
from stdnum.se import personnummer

from rosterflow.events import ImportRequest
from rosterflow.storage import ObjectStore
from rosterflow.testing import FAMILY, GIVEN
from services.validator.check import CheckResult, Limits, check_file
from services.validator.reading import BLOCK_BYTES
from services.validator.report import ReportWriter
from services.validator.rows import Rules
from services.validator.source import Upload

TODAY = date(2026, 11, 28)
HEADER = "Personnummer;Förnamn;Efternamn;Årskurs;Klass;E-post;Telefon;Postnummer"
_GUARDIAN = ("namn", "personnummer", "e-post", "telefon", "telefon 2", "gatuadress", "postnummer",
             "postort")  # fmt: skip
# The same students with their contact data in full, the protected identity
# mark and two guardians: the template's every column.
HOUSEHOLD_HEADER = ";".join(
    [
        HEADER,
        "Telefon 2;Telefon 3;Gatuadress;Postort;Skyddad identitet",
        *(f"Vårdnadshavare {n} {field}" for n in (1, 2) for field in _GUARDIAN),
    ]
)
STREETS = ("Storgatan", "Kyrkvägen", "Skolgatan", "Björkvägen", "Ängsvägen", "Åsgatan")
CITIES = ("Umeå", "Luleå", "Skellefteå", "Piteå", "Örnsköldsvik")
ROOT = Path(__file__).resolve().parent


def _luhn(nine: str) -> str:
    total = 0
    for position, char in enumerate(nine):
        product = int(char) * (2 - position % 2)
        total += product - 9 if product > 9 else product
    return str(-total % 10)


def identity_numbers(count: int, rng: random.Random) -> list[str]:
    """Unique school-age numbers with a valid check digit, as 12 digits."""
    first = date(2006, 7, 1)
    days = (date(2022, 6, 30) - first).days
    seen: set[str] = set()
    while len(seen) < count:
        born = first + timedelta(days=rng.randrange(days))
        ten = f"{born:%y%m%d}{rng.randrange(1, 1000):03d}"
        seen.add(f"{born:%Y}{ten[2:]}{_luhn(ten)}")
    numbers = sorted(seen)
    rng.shuffle(numbers)
    return numbers


_ASCII = str.maketrans("åäöéü", "aaoeu")


def adult_numbers(count: int, rng: random.Random) -> list[str]:
    """Guardians' numbers (born 1965–1995), valid check digit, not necessarily unique."""
    first = date(1965, 1, 1)
    days = (date(1995, 12, 31) - first).days
    numbers = []
    for _ in range(count):
        born = first + timedelta(days=rng.randrange(days))
        ten = f"{born:%y%m%d}{rng.randrange(1, 1000):03d}"
        numbers.append(f"{born:%Y%m%d}-{ten[6:]}{_luhn(ten)}")
    return numbers


def _household(row: list[str], rng: random.Random, guardians: list[str], postcode: str) -> None:
    """The columns HOUSEHOLD_HEADER adds, appended to a row of HEADER's."""
    family = row[2]
    street = f"{rng.choice(STREETS)} {rng.randrange(1, 120)}"
    city = rng.choice(CITIES)
    protected = "ja" if rng.random() < 0.002 else ""
    row += [f"08-{rng.randrange(100_000, 999_999)}", "", street, city, protected]
    for number in guardians:
        given = rng.choice(GIVEN)
        row += [
            f"{given} {family}",
            number,
            f"{given}.{family}@hem.se".lower().translate(_ASCII),
            f"073-{rng.randrange(1_000_000, 9_999_999)}",
            "",
            street,
            postcode,
            city,
        ]


def generate(rows: int, seed: int = 20261128, household: bool = False) -> bytes:
    """A roster as Excel on Swedish Windows saves it: ';', CRLF, a few broken rows.

    Like a municipality's export: unique identity numbers, e-mail addresses as
    school IT issues them (ASCII), postcodes of one region, about 0.6 % of rows
    with an error or a warning. ``household``: the same rows (the same seed)
    with HOUSEHOLD_HEADER's columns too, 0.2 % of students protected.
    """
    rng = random.Random(seed)
    extra = random.Random(seed + 1)  # the plain columns stay those of the plain file
    postcodes = [f"{rng.randrange(100, 999)} {rng.randrange(10, 99)}" for _ in range(500)]
    lines = [HOUSEHOLD_HEADER if household else HEADER]
    for i, number in enumerate(identity_numbers(rows, rng)):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        grade = rng.randint(1, 9)
        shown = f"{number[2:8]}-{number[8:]}" if rng.random() < 0.7 else number
        email = f"{given}.{family}{i % 100}@skolan.se".lower().translate(_ASCII)
        phone = f"070-{rng.randrange(1_000_000, 9_999_999)}"
        row = [shown, given, family, str(grade), f"{grade}{rng.choice('ABC')}", email, phone]
        row.append(rng.choice(postcodes))
        broken = rng.random()
        if broken < 0.002:
            row[0] = number[:-1] + str((int(number[-1]) + 1) % 10)
        elif broken < 0.004:
            row[1] = ""
        elif broken < 0.006:
            row[5] = row[5].replace("@", " at ")
        if household:
            _household(row, extra, adult_numbers(2, extra), row[7])
        lines.append(";".join(row))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def request() -> ImportRequest:
    return ImportRequest(organisation_id=UUID(int=1), unit_id=UUID(int=2), school_year="2026/2027")


def validate(path: Path, workdir: Path) -> CheckResult:
    store = ObjectStore(pafs.LocalFileSystem(), str(workdir))
    return check_file(
        Upload(lambda: pa.OSFile(str(path)), path.stat().st_size),
        request(),
        Rules(today=TODAY, level="compulsory"),
        limits=Limits(max_rows=2_000_000, max_bytes=1 << 30),
        report=ReportWriter(store, "report/valid.parquet", "report/invalid.parquet"),
        stop=lambda: False,
    )


def read_and_write(path: Path, workdir: Path) -> int:
    """No rule at all: stream the file in the validator's blocks, write it as the report is written.

    The part of the check that any design reading the file a block at a time
    and writing a Parquet report pays (the settings are report.py's).
    """
    with path.open(encoding="utf-8") as f:
        names = [f"c{i}" for i in range(len(f.readline().split(";")))]
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=";", newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    workdir.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pq.ParquetWriter(
        workdir / "rows.parquet",
        reader.schema,
        compression="lz4",
        use_dictionary=names[1:5],
        write_statistics=False,
    ) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


class Row(BaseModel):
    """The typical implementation: one model per row, python-stdnum for the number."""

    identity: str
    given_name: str
    family_name: str
    grade: int | None
    class_name: str | None
    email: str | None
    phone: str | None
    postcode: str | None

    @field_validator("identity")
    @classmethod
    def _personnummer(cls, value: str) -> str:
        return str(personnummer.compact(personnummer.validate(value)))

    @field_validator("given_name", "family_name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("missing")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and ("@" not in value or " " in value):
            raise ValueError("invalid email")
        return value


class HouseholdRow(Row):
    """The typical implementation of the template's every column: guardians as fields."""

    phone_2: str | None
    phone_3: str | None
    street: str | None
    city: str | None
    protected: bool
    guardians: list[Guardian]

    @field_validator("protected", mode="before")
    @classmethod
    def _mark(cls, value: str) -> bool:
        return value.strip().lower() in ("ja", "j", "x", "1", "true", "yes")


class Guardian(BaseModel):
    name: str | None
    identity: str | None
    email: str | None
    phone: str | None
    phone_2: str | None
    street: str | None
    postcode: str | None
    city: str | None

    @field_validator("identity")
    @classmethod
    def _personnummer(cls, value: str | None) -> str | None:
        return None if not value else str(personnummer.compact(personnummer.validate(value)))

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and ("@" not in value or " " in value):
            raise ValueError("invalid email")
        return value


HouseholdRow.model_rebuild()


def _household_row(record: dict[str, str], common: dict[str, object]) -> Row:
    guardians = [
        Guardian(
            **{
                key: record[f"Vårdnadshavare {n} {field}"] or None
                for key, field in zip(Guardian.model_fields, _GUARDIAN, strict=True)
            }
        )
        for n in (1, 2)
    ]
    return HouseholdRow(
        **common,
        phone_2=record["Telefon 2"] or None,
        phone_3=record["Telefon 3"] or None,
        street=record["Gatuadress"] or None,
        city=record["Postort"] or None,
        protected=record["Skyddad identitet"],
        guardians=guardians,
    )


def per_row_baseline(data: bytes, rows: int) -> tuple[int, int]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=";")
    valid: dict[str, Row] = {}
    invalid = 0
    for index, record in enumerate(reader):
        if index == rows:
            break
        common: dict[str, object] = {
            "identity": record["Personnummer"],
            "given_name": record["Förnamn"],
            "family_name": record["Efternamn"],
            "grade": record["Årskurs"] or None,
            "class_name": record["Klass"] or None,
            "email": record["E-post"] or None,
            "phone": record["Telefon"] or None,
            "postcode": record["Postnummer"] or None,
        }
        try:
            household = "Skyddad identitet" in record
            row = _household_row(record, common) if household else Row(**common)
        except ValidationError:
            invalid += 1
            continue
        valid.setdefault(row.identity, row)
    return len(valid), invalid


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_mb(path: Path) -> float:
    """The validator on this file in a fresh process: its peak resident set size."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-of", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT.parent,
    )
    return float(json.loads(out.stdout)["peak_rss_mb"])


def _peak_rss_kib() -> int:
    """This process's peak resident set size.

    ru_maxrss survives exec: a child started by a large parent would report
    the parent's peak. VmHWM belongs to the process's own address space.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_child(path: Path) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        validate(path, Path(workdir))
    print(json.dumps({"peak_rss_mb": _peak_rss_kib() / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 100_000])
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--files",
        nargs="+",
        choices=("plain", "household"),
        default=["plain", "household"],
        help="plain: HEADER's columns; household: with contact data in full and two guardians",
    )
    parser.add_argument("--rss-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of:
        _rss_child(args.rss_of)
        return
    print(f"pyarrow {pa.__version__}, {pa.cpu_count()} CPUs; best of {args.repeat}")
    header = (
        f"{'file':>9} {'rows':>9} {'MB':>6} | {'validator s':>11} {'rows/s':>10} | {'floor s':>7} "
        f"{'÷floor':>6} | {'read+write s':>12} {'÷floor':>6} | {'per-row s':>9} {'×faster':>7} | "
        f"{'peak RSS MB':>11}"
    )
    table = [header, "-" * len(header)]
    with tempfile.TemporaryDirectory() as tmp:
        for rows, kind in ((r, k) for r in args.rows for k in args.files):
            path = Path(tmp) / f"roster-{kind}-{rows}.csv"
            data = generate(rows, household=kind == "household")
            path.write_bytes(data)
            workdir = Path(tmp) / f"work-{kind}-{rows}"
            result = validate(path, workdir)
            assert result.counts.rows == rows, result.counts
            t_validator = best_of(args.repeat, lambda: validate(path, workdir))  # noqa: B023
            parse = pacsv.ParseOptions(delimiter=";")
            t_floor = best_of(args.repeat, lambda: pacsv.read_csv(path, parse_options=parse))  # noqa: B023
            t_io = best_of(args.repeat, lambda: read_and_write(path, workdir / "io"))  # noqa: B023
            sample = min(rows, args.baseline_rows)
            # Timed on the sample's own bytes: decoding the rest would be charged to it.
            head = b"\r\n".join(data.split(b"\r\n", sample + 1)[: sample + 1]) + b"\r\n"
            t_sample = best_of(args.repeat, lambda: per_row_baseline(head, sample))  # noqa: B023
            t_baseline = t_sample * rows / sample
            note = "" if sample == rows else f"  (per-row timed on {sample:,} rows, extrapolated)"
            rss = peak_rss_mb(path)
            size = len(data)
            table.append(
                f"{kind:>9} {rows:>9,} {size / 1e6:>6.1f} | {t_validator:>11.2f} "
                f"{rows / t_validator:>10,.0f} | {t_floor:>7.2f} {t_validator / t_floor:>6.1f} | "
                f"{t_io:>12.2f} {t_io / t_floor:>6.1f} | "
                f"{t_baseline:>9.1f} {t_baseline / t_validator:>7.0f} | {rss:>11.0f}{note}"
            )
            print(f"{rows:,} rows: {result.counts}", flush=True)
    print("\n".join(table))


if __name__ == "__main__":
    main()
