"""Finding extracts on disk: ``<source>/<organisation>/<date>/`` folders (extracts.md) and their files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mappings.rules import extract_day

LABELS = {"gp": re.compile(r"^[0-9]{4}-[0-9]{2}$"), "hospital": re.compile(r"^[0-9]{4}-[0-9]{2}$"),
          "swift": re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")}
ORG = re.compile(r"^[A-Z0-9]{3,10}$")


@dataclass(frozen=True)
class Extract:
    """One extract: a source's files for one organisation and one extract date."""

    source: str
    org: str
    label: str  # YYYY-MM (GP, hospital) or YYYY-MM-DD (SWIFT): the extract date
    files: tuple[Path, ...]

    @property
    def where(self) -> str:
        return f"{self.source}/{self.org}/{self.label}"


def is_changes(path: Path) -> bool:
    return path.name.endswith("_changes.csv")


def order_files(files: list[Path], known: list[str]) -> list[Path]:
    """Files in the order their mappings are listed (patients before what refers to them), snapshots
    before their ``_changes`` files, unknown names last."""
    rank = {name: i for i, name in enumerate(known)}
    return sorted(files, key=lambda p: (rank.get(p.name, len(rank)), p.name))


def find_extracts(source: str, path: Path, known: list[str], org: str | None = None,
                  label: str | None = None) -> list[Extract]:
    """The extracts under ``path``: a file, an extract folder, an organisation folder or a source folder.
    Organisation and date come from the folder names unless given."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_file():
        folder = path.parent
        return [Extract(source, org or folder.parent.name, label or folder.name, (path,))]
    csvs = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if csvs:
        return [Extract(source, org or path.parent.name, label or path.name, tuple(order_files(csvs, known)))]
    found: list[Extract] = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        found.extend(find_extracts(source, child, known, org, label))
    if not found:
        raise FileNotFoundError(f"no extract files (*.csv) under {path}")
    return sorted(found, key=lambda e: (e.label, e.org))


def check_extract(extract: Extract) -> str | None:
    """Why an extract's organisation or date cannot be used (None when they can)."""
    if not ORG.match(extract.org):
        return (f"{extract.org!r} is not an organisation code: put the files under {extract.source}/<code>/<date>/ "
                "or pass --org")
    form = "YYYY-MM-DD" if extract.source == "swift" else "YYYY-MM"
    if not LABELS[extract.source].match(extract.label):
        return f"{extract.label!r} is not an extract date ({form}): use the folder layout or pass --extract-date"
    try:
        extract_day(extract.label)
    except ValueError:
        return f"{extract.label!r} is not a real date ({form}): use the folder layout or pass --extract-date"
    return None
