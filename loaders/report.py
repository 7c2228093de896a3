"""What a load did: per file rows read, loaded, rejected and held; per resource type created, updated,
unchanged and ended; the rejects and held-rows files."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("created", "updated", "unchanged", "ended")
LOG_HEADER = ("line", "column", "reason", "row")


@dataclass
class RowLog:
    """Rows of one file that were rejected (bad) or held (good, waiting for the person they are about)."""

    rejected: list[tuple[int, str, str, str]] = field(default_factory=list)
    held: list[tuple[int, str, str, str]] = field(default_factory=list)

    def reject(self, line: int, column: str, reason: str, raw: str) -> None:
        self.rejected.append((line, column, reason, raw))

    def hold(self, line: int, column: str, reason: str, raw: str) -> None:
        self.held.append((line, column, reason, raw))

    @staticmethod
    def write(path: Path, rows: list[tuple[int, str, str, str]]) -> Path | None:
        """Write rows as CSV (line, column, reason, row); an empty list removes a stale file instead."""
        if not rows:
            if path.exists():
                path.unlink()
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(LOG_HEADER)
            writer.writerows(sorted(rows, key=lambda r: r[0]))
        return path


@dataclass
class FileReport:
    """The outcome of loading one extract file."""

    source: str
    org: str
    label: str
    name: str
    path: str
    provenance: str | None = None
    rows: int = 0
    loaded: int = 0
    skipped: int = 0  # of the loaded: rows the load ledger showed unchanged, not mapped or written again
    rejected: int = 0
    held: int = 0
    fault: str | None = None
    warnings: list[str] = field(default_factory=list)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    rejects_file: Path | None = None
    held_file: Path | None = None
    seconds: float = 0.0

    def count(self, resource_type: str, outcome: str, n: int = 1) -> None:
        self.outcomes.setdefault(resource_type, Counter())[outcome] += n

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.outcomes.values())

    @property
    def resources(self) -> int:
        return sum(self.total(o) for o in ("created", "updated", "unchanged"))


@dataclass
class LoadReport:
    """Every file of a load command."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def faults(self) -> list[FileReport]:
        return [f for f in self.files if f.fault]

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def exit_code(self) -> int:
        """0 clean, 1 rows were rejected, 2 a file-level fault stopped a file."""
        if self.faults:
            return 2
        return 1 if self.rejected else 0

    def by_type(self) -> dict[str, Counter[str]]:
        merged: dict[str, Counter[str]] = {}
        for report in self.files:
            for kind, counts in report.outcomes.items():
                merged.setdefault(kind, Counter()).update(counts)
        return merged

    def render(self) -> str:
        lines = []
        for f in self.files:
            where = f"{f.source} {f.org} {f.label} {f.name}"
            if f.fault:
                lines.append(f"{where}: FILE REFUSED, nothing loaded: {f.fault}")
                continue
            skipped = f" ({f.skipped} unchanged since their last load)" if f.skipped else ""
            lines.append(f"{where}: {f.rows} rows read, {f.loaded} loaded{skipped}, {f.rejected} rejected, "
                         f"{f.held} held ({f.seconds:.1f} s)")
            lines += [f"  warning: {w}" for w in f.warnings]
            if f.rejects_file:
                lines.append(f"  rejected rows: {f.rejects_file}")
            if f.held_file:
                lines.append(f"  held rows: {f.held_file}")
        kinds = self.by_type()
        if kinds:
            width = max(len(k) for k in kinds) + 2
            lines.append("resource".ljust(width) + "".join(o.rjust(11) for o in OUTCOMES))
            for kind in sorted(kinds):
                lines.append(kind.ljust(width) + "".join(str(kinds[kind][o]).rjust(11) for o in OUTCOMES))
        rows = sum(f.rows for f in self.files)
        lines.append(f"total: {rows} rows read, {sum(f.loaded for f in self.files)} loaded, {self.rejected} "
                     f"rejected, {sum(f.held for f in self.files)} held, {len(self.faults)} files refused")
        return "\n".join(lines)
