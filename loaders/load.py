"""Loading extracts: read and check rows, map them, write them in transaction batches, end what disappeared."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mappings import FileMapper, Mapped, Mappings, RefKey
from mappings.terminology import DEFAULT_BASE

from .extracts import Extract, check_extract, find_extracts, is_changes
from .fhir import EntryResult, FhirClient, version_of
from .ledger import RowEntry, RowSkipper, file_fingerprint, mappings_digest, refers_of
from .patients import PatientPlanner
from .plan import Plan, Planned, for_write, put_by_id
from .provenance import file_digest, provenance, provenance_id
from .reader import ExtractReader, FileFault, Record, resolve_encoding
from .report import FileReport, LoadReport, RowLog
from .resolver import Lookup, Resolver
from .sinks import Sink, SinkError
from .snapshot import ACTIONS, Gone, candidates, protected
from .strategies import Writer

log = logging.getLogger(__name__)
TARGET_RESOURCES = 300  # per transaction
CONFIRM_ROWS = 2000  # rows the ledger shows unchanged, confirmed against the server together
RETRIES = 3
INDEXED_WIDTH = 255  # identifier values longer than this are cut in the search index
ORG_SYSTEMS = {"gp": "ods", "swift": "council-code", "hospital": "ods"}
ORG_NAMES = {"gp": "GP practice {org}", "swift": "Council {org}", "hospital": "NHS trust {org}"}


@dataclass
class LoadOptions:
    """How to load: encoding, batch size, where rejects go, whether to write at all."""

    encoding: str = "utf-8-sig"
    rejects: Path | None = None  # folder for rejects/held files (default: next to the input)
    dry_run: bool = False
    progress: bool = True
    org: str | None = None
    extract_date: str | None = None
    batch_resources: int = TARGET_RESOURCES
    snapshot: bool = True  # end what a full snapshot no longer holds
    skip_unchanged: bool = True  # skip rows the server's load ledger shows unchanged (in-process loads only)


@dataclass
class Row:
    """A checked row waiting for its batch."""

    index: int
    line: int
    raw: str
    key: str | None
    values: dict[str, Any]
    digest: str | None = None  # for the load ledger
    refers: dict[Lookup, str] = field(default_factory=dict)  # resolved references ("" when not found)


@dataclass
class FileState:
    """What one file load has seen so far."""

    report: FileReport
    rows: RowLog = field(default_factory=RowLog)
    produced: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    keys: set[str] = field(default_factory=set)
    protected: set[str] = field(default_factory=set)
    clock: int = 0
    skipper: RowSkipper | None = None
    skipped: set[tuple[str, str]] = field(default_factory=set)  # resources of rows the ledger showed unchanged
    writers: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))  # resource -> rows


class Loader:
    """Loads extracts of one source through a Sink (or, dry run, without one)."""

    def __init__(self, sink: Sink | None, options: LoadOptions | None = None, mappings: Mappings | None = None,
                 base: str | None = None) -> None:
        self.options = options or LoadOptions()
        self.sink = sink
        self.client = FhirClient(sink) if sink is not None and not self.options.dry_run else None
        self.mappings = mappings if mappings is not None else Mappings.load(base or DEFAULT_BASE)
        self.resolver = Resolver(self.client)
        self.base_digest: str | None = None  # of the code and terminology the mappings map with

    # ------------------------------------------------------------------ extracts

    def load(self, source: str, path: Path) -> LoadReport:
        """Load every extract under ``path`` (a file, an extract folder, or a folder of them), oldest first."""
        known = self.mappings.files(source)
        report = LoadReport()
        for extract in find_extracts(source, Path(path), known, self.options.org, self.options.extract_date):
            report.files.extend(self.load_extract(extract))
        return report

    def load_extract(self, extract: Extract) -> list[FileReport]:
        """Check every file of the extract first (file-level faults), then load the good ones in order."""
        problem = check_extract(extract)
        reports: list[FileReport] = []
        readers: list[tuple[Path, ExtractReader | None, FileReport]] = []
        for path in extract.files:
            report = FileReport(extract.source, extract.org, extract.label, path.name, str(path))
            reports.append(report)
            spec = self.mappings.spec(extract.source, path.name)
            if spec is None:
                report.warnings.append(f"no mapping for {path.name}: the file is not loaded")
                continue
            if problem:
                report.fault = problem
                continue
            try:
                reader = ExtractReader(path, self.options.encoding, spec.required_columns, spec.column_names)
                report.warnings.extend(reader.check())
            except FileFault as exc:
                report.fault = str(exc)
                continue
            readers.append((path, reader, report))
        for path, reader, report in readers:
            assert reader is not None
            self.load_file(extract, path, reader, report)
        return reports

    # --------------------------------------------------------------------- files

    def load_file(self, extract: Extract, path: Path, reader: ExtractReader, report: FileReport) -> None:
        started = time.perf_counter()
        state = FileState(report)
        encoding = resolve_encoding(self.options.encoding)
        digest = file_digest(reader.data)
        pid = provenance_id(extract.source, extract.org, extract.label, path.name, encoding, digest)
        env = {"org": extract.org, "extract_date": extract.label, "source": extract.source}
        if self.client is not None:
            env["provenance"] = report.provenance = f"Provenance/{pid}"
        mapper = self.mappings.mapper(extract.source, path.name, env)
        if self.client is not None:
            self.ensure_provenance(extract, path.name, pid, digest, mapper.systems[ORG_SYSTEMS[extract.source]])
            state.clock = self.client.sink.clock()
            state.skipper = self.skipper(extract, mapper)
        key_column = mapper.mapping.key
        per_row = sum(3 if spec.each else 1 for spec in mapper.mapping.resources)
        batch_rows = max(10, self.options.batch_resources // per_row)
        batch: list[Row] = []
        waiting: dict[str, tuple[int, Record, str, RowEntry]] = {}  # rows the ledger may show unchanged
        first_line: dict[str, int] = {}

        def take(index: int, record: Record, digest: str | None) -> None:
            row = self.check(record, index, mapper, state)
            if row is None:
                return
            row.digest = digest
            batch.append(row)
            if len(batch) >= batch_rows:
                self.process(batch, mapper, state)
                batch.clear()

        def settle_waiting() -> None:
            assert state.skipper is not None
            entries = {key: entry for key, (_i, _r, _d, entry) in waiting.items()}
            unchanged = state.skipper.confirm(entries)
            for key, (index, record, digest, entry) in waiting.items():
                if key in unchanged:
                    self.skip(key, entry, state)
                else:
                    take(index, record, digest)
            waiting.clear()

        with tqdm(total=reader.rows_estimate(), unit="row", disable=not self.options.progress,
                  desc=f"{extract.source} {extract.org} {extract.label} {path.name}", leave=False) as bar:
            for index, record in enumerate(reader):
                report.rows += 1
                bar.update(1)
                admitted, key = self.admit(record, key_column, state, first_line)
                if not admitted:
                    continue
                digest = state.skipper.digest(record.values) if state.skipper is not None else None
                entry = state.skipper.candidate(key, digest) if state.skipper is not None and digest else None
                if entry is not None and key and mapper.still_plausible(record.values):
                    waiting[key] = (index, record, digest, entry)
                    if len(waiting) >= CONFIRM_ROWS:
                        settle_waiting()
                    continue
                take(index, record, digest)
            if waiting:
                settle_waiting()
            if batch:
                self.process(batch, mapper, state)
        if state.skipper is not None:
            # rows writing one resource together (a Patient on two rows) are applied in file order: never skipped
            state.skipper.exclude({key for keys in state.writers.values() if len(keys) > 1 for key in keys})
            state.skipper.flush()
            if not is_changes(path):
                state.skipper.prune(state.keys)
        if self.client is not None and self.options.snapshot and not is_changes(path):
            self.disappear(extract, mapper, state)
        folder = self.options.rejects or path.parent
        stem = f"{extract.source}-{extract.org}-{extract.label}-{path.stem}" if self.options.rejects else path.stem
        try:
            report.rejects_file = RowLog.write(Path(folder) / f"{stem}.rejects.csv", state.rows.rejected)
            report.held_file = RowLog.write(Path(folder) / f"{stem}.held.csv", state.rows.held)
        except OSError as exc:
            report.warnings.append(f"could not write the rejects file in {folder}: {exc}; use --rejects DIR")
        report.rejected = len(state.rows.rejected)
        report.held = len(state.rows.held)
        report.seconds = time.perf_counter() - started

    def skipper(self, extract: Extract, mapper: FileMapper) -> RowSkipper | None:
        """The file's load ledger, when loading in-process with skipping on."""
        assert self.client is not None
        ledger = self.client.sink.ledger() if self.options.skip_unchanged else None
        if ledger is None:
            return None
        if self.base_digest is None:
            self.base_digest = mappings_digest(self.mappings)
        stream = f"{extract.source}/{extract.org}/{mapper.mapping.files[0]}"
        return RowSkipper(ledger, stream, file_fingerprint(self.base_digest, mapper))

    def skip(self, key: str, entry: RowEntry, state: FileState) -> None:
        """Account for a row the ledger confirmed unchanged, as if it had been loaded."""
        for kind, rid, _version in entry.wrote:
            state.writers[(kind, rid)].add(key)
        for kind, system, value in entry.identities:
            state.produced[(kind, system)].add(value)
        for kind, rid, _version in entry.wrote:
            if (kind, rid) not in state.skipped:  # several rows of a file may write one resource
                state.skipped.add((kind, rid))
                state.report.count(kind, "unchanged")
        state.report.loaded += 1
        state.report.skipped += 1

    def admit(self, record: Record, key_column: str, state: FileState,
              first_line: dict[str, int]) -> tuple[bool, str | None]:
        """(admitted, the row's id or None): a row undecodable, of the wrong width or with a duplicate id is
        rejected."""
        if record.fault is not None:
            state.rows.reject(record.line, record.fault[0], record.fault[1], record.raw)
            return False, None
        key = record.values.get(key_column) or None
        if key is not None:
            state.keys.add(key)
            if key in first_line:
                state.rows.reject(record.line, key_column,
                                  f"duplicate id: {key_column} {key} already on line {first_line[key]}", record.raw)
                return False, key
            first_line[key] = record.line
        return True, key

    def check(self, record: Record, index: int, mapper: FileMapper, state: FileState) -> Row | None:
        """Row checks: the file's marshmallow schema (column types and codes, cross-column checks, plausibility
        rules)."""
        key = record.values.get(mapper.mapping.key) or None
        values, errors = mapper.check(record.values)
        if values is None:
            if key is not None:
                state.protected.add(key)
            column = ", ".join(errors)
            reason = "; ".join(f"{c}: {m}" if c else m for c, ms in errors.items() for m in ms)
            state.rows.reject(record.line, column, reason, record.raw)
            return None
        return Row(index, record.line, record.raw, key, values)

    # -------------------------------------------------------------------- batches

    def process(self, rows: list[Row], mapper: FileMapper, state: FileState, attempt: int = 0) -> None:
        """Map, plan and write a batch; a refused batch is split until the bad row is found."""
        by_index = {row.index: row for row in rows}
        mapped = self.map_rows(rows, mapper, state)
        rows = [row for row in rows if row.index in mapped]
        plan = self.plan(mapped, by_index, mapper)
        for index, (column, reason) in plan.rejected.items():
            row = by_index[index]
            state.rows.reject(row.line, column, reason, row.raw)
            if row.key:
                state.protected.add(row.key)
        good = [index for index in mapped if index not in plan.rejected]
        for index in good:
            for item in mapped[index]:
                if item.identity is not None:
                    state.produced[(item.type, item.identity[0])].add(item.identity[1])
        if self.client is None:
            self.dry_run(plan, by_index, state, good)
            return
        entries = [p.entry for p in plan.planned if p.entry is not None]
        substitute([e["resource"] for e in entries], plan.aliases)
        try:
            results = self.client.transaction(entries)
        except SinkError as exc:
            self.refused(exc, rows, plan, mapper, state, attempt)
            return
        race: set[int] = set()
        wrote: dict[int, list[tuple[str, str, int] | None]] = defaultdict(list)
        outcomes = iter(results)
        for planned in plan.planned:
            if planned.entry is None:
                state.report.count(planned.type, "unchanged")
                version = planned.kept
                for index in planned.rows:
                    wrote[index].append((planned.type, version[0], int(version[1]))
                                        if version and version[1].isdigit() else None)
                continue
            result = next(outcomes)
            if planned.on_result is not None:
                planned.on_result(result)
            if planned.race and result.status == 200:
                race.update(planned.rows)  # someone else created this person meanwhile: plan these again
                continue
            state.report.count(planned.type, result.outcome(state.clock))
            for index in planned.rows:
                wrote[index].append((planned.type, result.id, result.version)
                                    if result.id and result.version else None)
        loaded = [i for i in good if i not in race]
        state.report.loaded += len(loaded)
        if state.skipper is not None:
            self.record(state.skipper, [by_index[i] for i in loaded], mapped, wrote, state.writers)
        if race and attempt < RETRIES:
            self.process([by_index[i] for i in sorted(race)], mapper, state, attempt + 1)

    def record(self, skipper: RowSkipper, rows: list[Row], mapped: dict[int, list[Mapped]],
               wrote: dict[int, list[tuple[str, str, int] | None]],
               writers: dict[tuple[str, str], set[str]]) -> None:
        """Keep in the ledger what each loaded row wrote, so an unchanged row is skipped next time."""
        for row in rows:
            written = wrote.get(row.index, [])
            if row.digest is None or any(w is None for w in written):
                continue
            identities = [(m.type, *m.identity) for m in mapped[row.index] if m.identity is not None]
            identities += [(m.type, str(i["system"]), str(i["value"])) for m in mapped[row.index]
                           if m.spec.strategy == "patient" for i in m.resource.get("identifier", [])
                           if i.get("system") and i.get("value")]
            entry = RowEntry([w for w in written if w is not None], refers_of(row.refers), identities)
            skipper.remember(row.key, row.digest, entry)
            if row.key is not None:
                for kind, rid, _version in entry.wrote:
                    writers[(kind, rid)].add(row.key)

    def refused(self, exc: SinkError, rows: list[Row], plan: Plan, mapper: FileMapper, state: FileState,
                attempt: int) -> None:
        remaining = [row for row in rows if row.index not in plan.rejected]
        if exc.status in (409, 412) and "multiple-matches" not in exc.codes and attempt < RETRIES:
            log.info("version conflict, planning the batch again: %s", exc.diagnostics)
            self.process(remaining, mapper, state, attempt + 1)
            return
        if len(remaining) <= 1:
            for row in remaining:
                state.rows.reject(row.line, "", f"refused by the server: {exc.diagnostics}", row.raw)
                if row.key:
                    state.protected.add(row.key)
            return
        half = len(remaining) // 2
        self.process(remaining[:half], mapper, state, attempt)
        self.process(remaining[half:], mapper, state, attempt)

    def map_rows(self, rows: list[Row], mapper: FileMapper, state: FileState) -> dict[int, list[Mapped]]:
        """Resolve each row's references (holding rows whose person is not in the record) and map it."""
        needs: list[tuple[Row, list[tuple[RefKey, bool]]]] = [(row, mapper.references(row.values)) for row in rows]
        keys = list({key.lookup: key for _, refs in needs for key, _ in refs}.values())
        resolved = self.resolver.resolve(keys)
        mapped: dict[int, list[Mapped]] = {}
        for row, refs in needs:
            found: dict[str, dict[str, Any] | None] = {}
            missing = None
            for key, required in refs:
                resource_id, why = resolved[key.lookup]
                row.refers[key.lookup] = resource_id or ""
                if resource_id is None:
                    if required:
                        missing = (key, why)
                        break
                    continue
                found[key.name] = key.reference(resource_id)
            if missing is not None:
                key, why = missing
                column = next((c for c in mapper.mapping.column_names if row.values.get(c) == key.value), "")
                state.rows.hold(row.line, column, f"no {key.type} with {key.system}|{key.value} in the record "
                                                  f"({why}); the row loads once it is known", row.raw)
                if row.key:
                    state.protected.add(row.key)
                continue
            try:
                mapped[row.index] = mapper.map(row.values, found)
            except ValueError as exc:
                state.rows.reject(row.line, "", str(exc), row.raw)
        return mapped

    def plan(self, mapped: dict[int, list[Mapped]], rows: dict[int, Row], mapper: FileMapper) -> Plan:
        plan = Plan()
        provenance_ref = mapper.env.get("provenance")
        patients = [(i, m) for i, items in mapped.items() for m in items if m.spec.strategy == "patient"]
        if patients:
            spec = patients[0][1].spec
            planner = PatientPlanner(self.client, self.resolver, spec.write, mapper.systems,
                                     self.authority_prefix(mapper), self.trace_tag(mapper), provenance_ref)
            nhs = str(spec.write.get("nhs", ""))
            items = [(i, m, rows[i].values.get(nhs[1:]) if nhs.startswith("$") else None) for i, m in patients]
            plan.extend(planner.plan(items))
        others = [(i, m, rows[i].values) for i, items in mapped.items() for m in items
                  if m.spec.strategy != "patient" and i not in plan.rejected]
        substitute([m.resource for _, m, _ in others], plan.aliases)  # so unchanged resources compare equal
        plan.extend(Writer(self.client, provenance_ref).plan(others))
        written = {p.entry["request"]["url"] for p in plan.planned if p.entry is not None and p.rows}
        plan.planned = [p for p in plan.planned  # a re-pointing already done by a row's own update
                        if p.rows or p.entry is None or p.entry["request"]["url"] not in written]
        return plan

    def authority_prefix(self, mapper: FileMapper) -> str:
        """The system prefix of the identifiers that make a source the authority for demographics."""
        template = mapper.mapping.systems["gp-patient-id"]
        return template.replace("{base}", str(mapper.env["base"])).replace("{org}", "")

    def trace_tag(self, mapper: FileMapper) -> dict[str, str]:
        return {"system": f"{mapper.env['base']}/CodeSystem/record-tag", "code": "nhs-number-trace-required",
                "display": "NHS number trace required"}

    def dry_run(self, plan: Plan, rows: dict[int, Row], state: FileState, good: list[int]) -> None:
        """Validate the planned resources with fhir.resources (R4B) instead of writing them."""
        from fhir.resources.R4B import get_fhir_model_class

        bad: dict[int, str] = {}
        for planned in plan.planned:
            if planned.entry is None:
                continue
            resource = planned.entry["resource"]
            try:
                get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            except Exception as exc:  # pydantic reports every structural problem
                for index in planned.rows:
                    bad[index] = f"{resource['resourceType']}: {str(exc).splitlines()[0]}"
                continue
            state.report.count(planned.type, "created")
        for index, reason in bad.items():
            state.rows.reject(rows[index].line, "", reason, rows[index].raw)
        state.report.loaded += len([i for i in good if i not in bad])

    # ---------------------------------------------------------------- provenance

    def ensure_provenance(self, extract: Extract, name: str, pid: str, digest: str, system: str) -> None:
        """Write the file's Provenance unless this very file was loaded before."""
        assert self.client is not None
        [(status, _found)] = self.client.batch_get([f"Provenance/{pid}"])
        if status == 200:
            return
        key = RefKey("sender", "Organization", system, extract.org,
                     {"resourceType": "Organization",
                      "meta": {"profile": [f"{self.mappings.terminology.base}/StructureDefinition/SCR-Organization"]},
                      "identifier": [{"system": system, "value": extract.org}],
                      "name": ORG_NAMES[extract.source].format(org=extract.org)}, True)
        resource_id, _why = self.resolver.resolve([key])[key.lookup]
        sender = key.reference(resource_id) if resource_id else None
        resource = provenance(pid, extract.source, extract.org, extract.label, name, digest, sender)
        self.client.transaction([{"resource": resource, "request": {"method": "PUT", "url": f"Provenance/{pid}"}}])

    # ---------------------------------------------------------------- disappear

    def disappear(self, extract: Extract, mapper: FileMapper, state: FileState) -> None:
        """End or inactivate what this full snapshot no longer holds (never delete)."""
        assert self.client is not None
        keys = frozenset(state.keys)
        shield = frozenset(state.protected)
        for spec in mapper.mapping.resources:
            action = str(spec.disappear.get("action", "keep"))
            if action == "keep":
                continue
            function, narrowing = ACTIONS[action]
            if spec.strategy == "patient":
                system = mapper.systems[str(spec.write["local"])]
            else:
                assert spec.identity_system is not None
                system = mapper.systems[spec.identity_system]
            produced = state.keys if spec.strategy == "patient" else state.produced.get((spec.type, system), set())
            options = {**spec.disappear, "practice": extract.org}
            ledger = state.skipper.ledger if state.skipper is not None else None
            found = ledger.identified(spec.type, system) if ledger is not None else \
                candidates(self.client, spec.type, system, action)

            # index values may be cut: only whole ones are judged before reading the resource itself
            ids = sorted({rid for rid, value in found if len(value) >= INDEXED_WIDTH or left(value, produced, shield)})
            for start in range(0, len(ids), 100):
                current = self.client.read_many(spec.type, ids[start:start + 100], narrowing)
                planned = []
                for resource in current.values():
                    changed = None
                    for identifier in resource.get("identifier", []):
                        value = identifier.get("value")
                        if identifier.get("system") == system and value and left(str(value), produced, shield):
                            ended = function(changed or resource, Gone(system, str(value), extract.label, keys,
                                                                       options))
                            changed = ended or changed
                    if changed is not None:
                        entry = put_by_id(for_write(changed, state.report.provenance), None, version_of(resource))
                        planned.append(Planned(spec.type, [], entry))
                self.write_ended(planned, state)

    def write_ended(self, planned: list[Planned], state: FileState) -> None:
        assert self.client is not None
        if not planned:
            return
        try:
            results: list[EntryResult] = self.client.transaction([p.entry for p in planned if p.entry])
        except SinkError as exc:
            if len(planned) == 1:
                state.report.warnings.append(f"could not end {planned[0].entry['request']['url']}: "  # type: ignore[index]
                                             f"{exc.diagnostics}")
                return
            half = len(planned) // 2
            self.write_ended(planned[:half], state)
            self.write_ended(planned[half:], state)
            return
        for p, result in zip(planned, results, strict=True):
            if result.outcome(state.clock) == "updated":
                state.report.count(p.type, "ended")


def left(value: str, produced: set[str], shield: frozenset[str]) -> bool:
    """Whether an identity value is no longer in the snapshot (and no rejected or held row stands for it)."""
    return value not in produced and not protected(value, shield)


def substitute(resources: list[dict[str, Any]], aliases: dict[str, str]) -> None:
    """Point references to resources of the same rows that already exist at their literal ids."""
    if not aliases:
        return
    stack: list[Any] = list(resources)
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, str):
                if key == "reference" and value in aliases:
                    node[key] = aliases[value]
            elif isinstance(value, (dict, list)):
                stack.append(value)
