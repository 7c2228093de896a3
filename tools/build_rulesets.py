"""Vendor the frailty measure tables from ../shared/data/risk into profiles/rulesets/measures/.

Run by hand when the published tables change (the server never reads ../shared):

    .venv/bin/python tools/build_rulesets.py --shared ../shared

Outputs (deterministic, sorted):
- `hfrs-points.tsv`: the Hospital Frailty Risk Score points per 3-character ICD-10 category
  (Gilbert et al., Lancet 2018), columns icd10_3char, description, points.
- `efi-deficits.json`: the electronic Frailty Index deficit code lists (Clegg et al., Age Ageing 2016,
  as published by the Greater Manchester Secure Data Environment): for each of the 35 coded deficits,
  its SNOMED CT, Read v2 and CTV3 codes. The 36th deficit, polypharmacy, is computed from medicines.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "profiles" / "rulesets" / "measures"
SYSTEMS = {"snomed": "snomed", "readv2": "readv2", "ctv3": "ctv3"}
EFI_FILE = re.compile(r"^efi-(?P<deficit>[a-z0-9-]+)\.(?P<system>snomed|readv2|ctv3)\.txt$")
CATEGORY = re.compile(r"^[A-Z][0-9]{2}$")


def build_hfrs(source: Path) -> str:
    """The HFRS table as TSV text, checked: 3-character categories, positive points, no duplicates."""
    rows = []
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        for row in reader:
            code, points = row["icd10_3char"].strip(), float(row["points"])
            if not CATEGORY.match(code) or points <= 0:
                raise SystemExit(f"{source}: unexpected row {row}")
            rows.append((code, row["description"].strip(), points))
    codes = [code for code, _d, _p in rows]
    if len(set(codes)) != len(codes):
        raise SystemExit(f"{source}: duplicate codes")
    lines = ["icd10_3char\tdescription\tpoints"]
    lines += [f"{code}\t{description}\t{points:g}" for code, description, points in sorted(rows)]
    return "\n".join(lines) + "\n"


def build_efi(folder: Path) -> dict[str, dict[str, list[str]]]:
    """Deficit -> code system -> sorted codes, from efi-<deficit>.<system>.txt files (code<TAB>term)."""
    deficits: dict[str, dict[str, list[str]]] = {}
    for path in sorted(folder.iterdir()):
        match = EFI_FILE.match(path.name)
        if match is None:
            continue
        codes = []
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.split("\t", 1)[0].strip()
            if code:
                codes.append(code)
        entry = deficits.setdefault(match["deficit"], {name: [] for name in SYSTEMS})
        entry[SYSTEMS[match["system"]]] = sorted(set(codes))
    if len(deficits) != 35:
        raise SystemExit(f"{folder}: expected 35 eFI deficits, found {len(deficits)}")
    return dict(sorted(deficits.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = parser.parse_args()
    risk = args.shared / "data" / "risk"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hfrs-points.tsv").write_text(build_hfrs(risk / "hfrs-points.tsv"), encoding="utf-8")
    deficits = build_efi(risk / "efi")
    document = {
        "source": "Clegg A et al., Age Ageing 2016, doi 10.1093/ageing/afw039; code lists of the Greater "
                  "Manchester Secure Data Environment (UoM-Data-Science-Platforms/gm-sde, "
                  "shared/clinical-code-sets/*/efi-*/1/)",
        "generated_by": "tools/build_rulesets.py",
        "deficits": deficits,
    }
    text = json.dumps(document, indent=1, sort_keys=False) + "\n"
    (OUT / "efi-deficits.json").write_text(text, encoding="utf-8")
    total = sum(len(codes) for entry in deficits.values() for codes in entry.values())
    print(f"wrote {OUT / 'hfrs-points.tsv'} and {OUT / 'efi-deficits.json'} ({len(deficits)} deficits, {total} codes)")


if __name__ == "__main__":
    main()
