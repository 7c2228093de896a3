"""Sink: writes one extract file as RFC 4180 CSV with its formatting noise and injected invalid rows."""

from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from .dates import month_end, parse_month
from .faults import PLAUSIBILITY_KINDS, spoil
from .layout import DMY_HM, INVALID_KINDS, ISO, ISO_HM, FileSpec
from .nhs import corrupt, spaced, spare_number
from .noise import NoiseRates
from .rng import make_rng
from .summary import FileInfo, InvalidRow


def bad_date(style: str, original: str, rng: random.Random) -> str:
    """An impossible date in the column's own style (Feb 30th, month 13, ...)."""
    if style in (ISO, ISO_HM):
        year = original[:4] if original[:4].isdigit() else "2026"
        text = rng.choice((f"{year}-02-30", f"{year}-13-01", f"{year}-00-10", f"{year}-04-31", f"{year}-06-31"))
        return text + "T10:15" if style == ISO_HM else text
    year = original[6:10] if original[6:10].isdigit() else "2026"
    text = rng.choice((f"30/02/{year}", f"31/04/{year}", f"15/13/{year}", f"00/05/{year}", f"31/06/{year}"))
    return text + " 10:15" if style == DMY_HM else text


class Sink:
    """One output file. Every injected invalid row is recorded with its physical line number."""

    def __init__(self, out: Path, rel: str, spec: FileSpec, org: str, month: str, noise: NoiseRates,
                 seed: int, invalid_log: list[InvalidRow]) -> None:
        rng = make_rng(seed, "noise", rel)
        self.rng = rng
        self.rel = rel
        self.spec = spec
        self.org = org
        self.month = month
        self.extract = date.fromordinal(month_end(parse_month(month)))  # the loaders' extract date
        u_enc, u_bom, u_crlf = rng.random(), rng.random(), rng.random()
        if spec.names and u_enc < noise.cp1252_files:
            self.encoding = "cp1252"
        elif u_bom < noise.utf8_bom_files:
            self.encoding = "utf-8-sig"
        else:
            self.encoding = "utf-8"
        self.crlf = u_crlf < noise.crlf_files
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "w", encoding=self.encoding, newline="", buffering=1 << 17)  # noqa: SIM115
        self._csv = csv.writer(self._fh, lineterminator="\r\n" if self.crlf else "\n")
        self._csv.writerow(spec.header)
        self.line = 1
        self.rows = 0
        self.invalid = 0
        self.non_ascii = False
        self._nhs = spec.col(spec.nhs_col) if spec.nhs_col else -1
        self._id = spec.col(spec.id_col)
        self._names = (spec.col("family_name"), spec.col("given_name")) if spec.name == "patients.csv" else (
            (spec.col("Family_Name"), spec.col("Given_Name")) if spec.name == "clients.csv" else None)
        self._spaces = noise.nhs_spaces if self._nhs >= 0 else 0.0
        self._rates = noise.invalid_rates()
        self._invalid_total = noise.invalid_total()
        self._fresh = 0
        self._log = invalid_log

    def write(self, row: list[str]) -> None:
        rng = self.rng
        if self._spaces and row[self._nhs] and rng.random() < self._spaces:
            row[self._nhs] = spaced(row[self._nhs])
        names = self._names
        if names is not None and not self.non_ascii and not (row[names[0]].isascii() and row[names[1]].isascii()):
            self.non_ascii = True
        self._csv.writerow(row)
        self.line += 1
        self.rows += 1
        if self._invalid_total and rng.random() < self._invalid_total:
            self._inject(row)

    def _kind(self) -> str:
        u = self.rng.random() * self._invalid_total
        acc = 0.0
        for kind, rate in zip(INVALID_KINDS, self._rates, strict=True):
            acc += rate
            if u < acc:
                return kind
        return INVALID_KINDS[-1]

    def _inject(self, row: list[str]) -> None:
        rng = self.rng
        spec = self.spec
        kind = self._kind()
        if kind == "bad_nhs_check_digit" and self._nhs < 0:
            kind = "bad_date"  # SWIFT services and events carry no NHS number
        bad = list(row)
        if kind == "duplicate_id":
            col, value = spec.dup_change
            ci = spec.col(col)
            bad[ci] = value if row[ci] != value else value + " 2"
            detail = f"{spec.id_col} {row[self._id]} already on line {self.line}"
        else:
            self._fresh += 1
            bad[self._id] = f"{row[self._id]}X{self._fresh}"
            if self._nhs >= 0 and spec.names:
                bad[self._nhs] = spare_number(rng)  # so the row does not also repeat a person's NHS number
            if kind == "bad_nhs_check_digit":
                bad[self._nhs] = corrupt(bad[self._nhs].replace(" ", "") or spare_number(rng))
                detail = f"{spec.nhs_col}={bad[self._nhs]}"
            elif kind == "bad_date":
                col, style = spec.dates[rng.randrange(len(spec.dates))]
                ci = spec.col(col)
                bad[ci] = bad_date(style, row[ci], rng)
                detail = f"{col}={bad[ci]}"
            elif kind in PLAUSIBILITY_KINDS:
                kind, detail = spoil(kind, spec, bad, self.extract, rng)
            elif kind == "unknown_code":
                col, value = spec.unknown[rng.randrange(len(spec.unknown))]
                bad[spec.col(col)] = value
                detail = f"{col}={value}"
            else:
                cols = [c for c in spec.required if c != spec.id_col]
                col = cols[rng.randrange(len(cols))]
                bad[spec.col(col)] = ""
                detail = f"{col} blank"
        self._csv.writerow(bad)
        self.line += 1
        self.rows += 1
        self.invalid += 1
        self._log.append(InvalidRow(self.rel, self.line, kind, bad[self._id], detail))

    def close(self) -> FileInfo:
        self._fh.close()
        return FileInfo(self.rel, self.spec.source, self.spec.name, self.org, self.month, self.rows, self.invalid,
                        self.encoding, "CRLF" if self.crlf else "LF", self.non_ascii)
