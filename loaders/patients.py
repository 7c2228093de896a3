"""Patient matching and merging across sources: one Patient per person, found by NHS number.

Each source contributes its own identifier (GP patient id per practice, SWIFT person id per council) and,
when it is the authority for the person, the demographics. A SWIFT client without an NHS number is held
as a Patient with only the SWIFT identifier, tagged for tracing; when the number arrives the held Patient
either gains it or, if another Patient already has it, is merged into that one (``link`` replaced-by /
replaces, references re-pointed) in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from mappings import Mapped

from .fhir import EntryResult, FhirClient, version_of
from .plan import Plan, Planned, for_write, left_as_is, post_conditional, put_by_id, same
from .resolver import Resolver, replaced_by

NHS = "https://fhir.nhs.uk/Id/nhs-number"
#: resource types (and their patient search parameter) re-pointed when a held Patient is merged
REFERRERS = ("EpisodeOfCare", "Encounter", "Observation", "Condition", "MedicationRequest", "MedicationStatement",
             "Flag", "CarePlan", "CareTeam", "RiskAssessment", "AllergyIntolerance", "Procedure")
TRACE_CODE = "nhs-number-trace-required"


@dataclass
class Working:
    """A Patient as this batch rewrites it."""

    body: dict[str, Any]
    original: dict[str, Any] | None
    full_url: str
    rows: list[int] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.body.get("id")

    def nhs(self) -> str | None:
        return next((i.get("value") for i in self.body.get("identifier", []) if i.get("system") == NHS), None)


def identifier_order(identifier: dict[str, Any]) -> tuple[int, str, str]:
    return (0 if identifier.get("system") == NHS else 1, str(identifier.get("system")), str(identifier.get("value")))


def registration_rank(identifier: dict[str, Any]) -> tuple[int, str]:
    """Open registrations outrank ended ones; then the later start wins."""
    period = identifier.get("period") or {}
    return (0 if period.get("end") else 1, str(period.get("start", "")))


class PatientPlanner:
    """Plans the Patient writes of one batch of patients.csv or clients.csv rows."""

    def __init__(self, client: FhirClient | None, resolver: Resolver, write: dict[str, Any], systems: dict[str, str],
                 authority_prefix: str, trace_tag: dict[str, str], provenance: str | None) -> None:
        self.client = client
        self.resolver = resolver
        self.local_system = systems[str(write["local"])]
        self.authority_prefix = authority_prefix
        self.demographics = [str(d) for d in write.get("demographics", [])]
        self.trace_tag = trace_tag
        self.provenance = provenance

    # ----------------------------------------------------------------- lookups

    def fetch(self, items: list[tuple[int, Mapped, str | None]]) -> tuple[dict[str, list[dict[str, Any]]],
                                                                       dict[str, list[dict[str, Any]]]]:
        """Current Patients by NHS number and by this source's local identifier."""
        if self.client is None:
            return {}, {}
        numbers = sorted({nhs for _, _, nhs in items if nhs})
        locals_ = sorted({self.local_value(m) for _, m, _ in items})
        by_nhs = self.client.by_identifier("Patient", NHS, numbers) if numbers else {}
        by_local = self.client.by_identifier("Patient", self.local_system, locals_) if locals_ else {}
        return by_nhs, by_local

    def local_value(self, mapped: Mapped) -> str:
        for identifier in mapped.resource.get("identifier", []):
            if identifier.get("system") == self.local_system:
                return str(identifier["value"])
        raise ValueError(f"the Patient mapping carries no {self.local_system} identifier")

    # -------------------------------------------------------------------- plan

    def plan(self, items: list[tuple[int, Mapped, str | None]]) -> Plan:
        """items: (row index, mapped Patient, NHS number or None), in file order."""
        plan = Plan()
        by_nhs, by_local = self.fetch(items)
        working: dict[str, Working] = {}  # by id, or by fullUrl for new Patients
        new_by_nhs: dict[str, Working] = {}
        new_by_local: dict[str, Working] = {}
        merges: list[tuple[Working, Working]] = []  # (held, survivor)
        extra: dict[str, dict[str, Any]] = {}

        def load(resource: dict[str, Any] | None) -> Working | None:
            if resource is None:
                return None
            if resource["id"] not in working:
                working[resource["id"]] = Working(_copy(resource), resource, f"urn:uuid:{uuid.uuid4()}")
            return working[resource["id"]]

        def live(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
            alive = [r for r in candidates if replaced_by(r) is None]
            if len(alive) == 1:
                return alive[0]
            if not alive and candidates:
                target = replaced_by(candidates[0])
                if target:
                    if target in working:
                        return working[target].body
                    if target not in extra and self.client is not None:
                        extra.update(self.client.read_many("Patient", [target]))
                    return extra.get(target)
            if len(alive) > 1:
                raise Ambiguous(f"{len(alive)} Patients match; resolve the duplicate first")
            return None

        for index, mapped, nhs in items:
            local = self.local_value(mapped)
            try:
                by_number = new_by_nhs.get(nhs) if nhs else None
                if by_number is None and nhs:
                    by_number = load(live(by_nhs.get(nhs, [])))
                by_id = new_by_local.get(local) or load(live(by_local.get(local, [])))
            except Ambiguous as exc:
                plan.rejected[index] = ("", str(exc))
                continue
            target: Working | None
            if by_number is not None and by_id is not None and by_number is not by_id:
                held_nhs = by_id.nhs()
                if held_nhs and held_nhs != nhs:
                    plan.rejected[index] = ("", f"{self.local_system}|{local} is the Patient with NHS number "
                                                f"{held_nhs}, not {nhs}")
                    continue
                merges.append((by_id, by_number))
                target = by_number
            elif by_id is not None and nhs and by_id.nhs() not in (None, nhs):
                plan.rejected[index] = ("", f"{self.local_system}|{local} is the Patient with NHS number "
                                            f"{by_id.nhs()}, not {nhs}")
                continue
            else:
                target = by_number or by_id
            if target is None:
                target = Working({"resourceType": "Patient"}, None, mapped.full_url)
                working[mapped.full_url] = target
            self.contribute(target, mapped.resource)
            target.rows.append(index)
            if target.original is None:
                new_by_local[local] = target
                if nhs:
                    new_by_nhs[nhs] = target
            plan.aliases[mapped.full_url] = f"Patient/{target.id}" if target.id else target.full_url
        for held, survivor in merges:
            self.merge(held, survivor)
        for patient in working.values():
            plan.planned.append(self.write(patient))
            if patient.id and replaced_by(patient.body) is None:  # later files find these without a search
                for identifier in patient.body.get("identifier", []):
                    self.resolver.remember(("Patient", identifier["system"], identifier["value"]), patient.id)
        if merges:
            plan.planned.extend(self.repoint(merges))
        return plan

    # ------------------------------------------------------------------- merge

    def contribute(self, patient: Working, contribution: dict[str, Any]) -> None:
        """Add this source's identifiers and, when it is the authority, its demographics."""
        body = patient.body
        keyed = {(i.get("system"), i.get("value")): i for i in body.get("identifier", [])}
        mine = [i for i in contribution.get("identifier", []) if i.get("system") == self.local_system]
        for identifier in contribution.get("identifier", []):
            keyed[(identifier.get("system"), identifier.get("value"))] = identifier
        authority = [(k, i) for k, i in keyed.items() if str(k[0]).startswith(self.authority_prefix)]
        if self.local_system.startswith(self.authority_prefix):
            own = {(i.get("system"), i.get("value")) for i in mine}
            others = [registration_rank(i) for k, i in authority if k not in own]
            wins = not others or max(registration_rank(i) for i in mine) >= max(others)
        else:
            wins = not authority
        body["identifier"] = sorted(keyed.values(), key=identifier_order)
        if wins:
            for element in self.demographics:
                if element in contribution:
                    body[element] = contribution[element]
                else:
                    body.pop(element, None)
        meta = dict(body.get("meta") or {})
        if "meta" in contribution and "profile" in contribution["meta"]:
            meta["profile"] = contribution["meta"]["profile"]
        body["meta"] = meta
        self.tag(patient)

    def tag(self, patient: Working) -> None:
        """The trace tag is present exactly while a live Patient has no NHS number."""
        body = patient.body
        meta = dict(body.get("meta") or {})
        tags = [t for t in meta.get("tag", []) if t.get("code") != TRACE_CODE]
        if patient.nhs() is None and body.get("active") is not False:
            tags.append(dict(self.trace_tag))
        if tags:
            meta["tag"] = tags
        else:
            meta.pop("tag", None)
        body["meta"] = meta

    def merge(self, held: Working, survivor: Working) -> None:
        """The held Patient is replaced by the survivor; both carry the link."""
        held_ref = f"Patient/{held.id}" if held.id else held.full_url
        survivor_ref = f"Patient/{survivor.id}" if survivor.id else survivor.full_url
        links = [link for link in survivor.body.get("link", []) if (link.get("other") or {}).get("reference")
                 != held_ref]
        survivor.body["link"] = [*links, {"other": {"reference": held_ref}, "type": "replaces"}]
        held.body["active"] = False
        held.body["link"] = [{"other": {"reference": survivor_ref}, "type": "replaced-by"}]
        self.tag(held)
        self.tag(survivor)

    def write(self, patient: Working) -> Planned:
        rows = patient.rows
        body = patient.body
        if patient.original is not None and same(patient.original, body):
            return left_as_is("Patient", rows, patient.original)
        resource = for_write(body, self.provenance)
        if patient.original is not None:
            entry = put_by_id(resource, patient.full_url, (patient.original.get("meta") or {}).get("versionId"))
        else:
            # a conditional create: if another load created this person meanwhile, the server answers 200
            # with that Patient, and the rows are planned again against it (see Planned.race)
            number = patient.nhs()
            system, value = (NHS, number) if number else (self.local_system, next(
                i["value"] for i in body["identifier"] if i.get("system") == self.local_system))
            entry = post_conditional(resource, system, value, patient.full_url)

        def remember(result: EntryResult, patient: Working = patient) -> None:
            if result.id and result.status in (200, 201) and replaced_by(patient.body) is None:
                for identifier in patient.body.get("identifier", []):
                    self.resolver.remember(("Patient", identifier["system"], identifier["value"]), result.id)

        return Planned("Patient", rows, entry, remember, race=patient.original is None)

    def repoint(self, merges: list[tuple[Working, Working]]) -> list[Planned]:
        """Updates moving every resource that refers to a held Patient over to its survivor."""
        if self.client is None:
            return []
        searches = [(kind, [("patient", f"Patient/{held.id}")]) for held, _ in merges if held.id
                    for kind in REFERRERS]
        targets = [(held, survivor) for held, survivor in merges if held.id for _ in REFERRERS]
        planned = []
        for (held, survivor), found in zip(targets, self.client.search_many(searches), strict=True):
            old = f"Patient/{held.id}"
            new = f"Patient/{survivor.id}" if survivor.id else survivor.full_url
            for resource in found:
                moved = _replace_references(_copy(resource), old, new)
                entry = put_by_id(for_write(moved, self.provenance), None, version_of(resource))
                planned.append(Planned(resource["resourceType"], [], entry))
            for identifier in held.body.get("identifier", []):
                self.resolver.forget(("Patient", identifier["system"], identifier["value"]))
        return planned


class Ambiguous(Exception):
    """More than one live Patient carries the same identifier."""


def _copy(resource: dict[str, Any]) -> dict[str, Any]:
    import orjson

    return orjson.loads(orjson.dumps(resource))


def _replace_references(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and (value == old or value.endswith("/" + old)):
                node[key] = new
            else:
                _replace_references(value, old, new)
    elif isinstance(node, list):
        for item in node:
            _replace_references(item, old, new)
    return node
