"""SynthSummary: what a generate() run wrote (files, row counts, encodings, injected invalid rows)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FileInfo:
    """One written file. ``path`` is relative to the output folder, with forward slashes."""

    path: str
    source: str  # gp | swift | hospital
    name: str  # e.g. patients.csv
    org: str  # practice ODS, council code or provider ODS
    month: str  # YYYY-MM of the extract
    rows: int  # data rows, injected invalid rows included
    invalid_rows: int
    encoding: str  # utf-8 | utf-8-sig | cp1252
    line_ending: str  # LF | CRLF
    non_ascii: bool  # holds characters outside ASCII (so cp1252 and UTF-8 bytes differ)


@dataclass(frozen=True)
class InvalidRow:
    """An injected invalid row: the loader must reject exactly this line (the header is line 1)."""

    path: str
    line: int
    kind: str  # one of layout.INVALID_KINDS
    row_id: str  # value in the file's id column
    detail: str  # column and value that make it invalid


@dataclass
class SynthSummary:
    out: Path
    seed: int
    patients: int
    practices: list[str]
    council: str
    providers: list[str]
    months: list[str]
    files: list[FileInfo] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    people: dict[str, int] = field(default_factory=dict)

    def file(self, path: str) -> FileInfo:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    def rows_by_name(self, month: str | None = None) -> dict[str, int]:
        """Total data rows per file name (e.g. 'patients.csv'), optionally for one month."""
        out: Counter[str] = Counter()
        for f in self.files:
            if month is None or f.month == month:
                out[f.name] += f.rows
        return dict(out)

    @property
    def cp1252_files(self) -> list[str]:
        return [f.path for f in self.files if f.encoding == "cp1252"]

    @property
    def crlf_files(self) -> list[str]:
        return [f.path for f in self.files if f.line_ending == "CRLF"]

    def invalid_by_kind(self) -> dict[str, int]:
        return dict(Counter(r.kind for r in self.invalid))

    def invalid_in(self, path: str) -> list[InvalidRow]:
        return [r for r in self.invalid if r.path == path]

    def to_dict(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "seed": self.seed,
            "patients": self.patients,
            "practices": self.practices,
            "council": self.council,
            "providers": self.providers,
            "months": self.months,
            "people": self.people,
            "rows_by_name": self.rows_by_name(),
            "invalid_by_kind": self.invalid_by_kind(),
            "files": [asdict(f) for f in self.files],
            "invalid": [asdict(r) for r in self.invalid],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
