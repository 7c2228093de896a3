"""The evidence of one patient, reduced from the record's resources to the facts rule sets look at.

What counts as what follows profiles/README.md: an emergency admission is a hospital spell Encounter whose
UK Core admission method starts with 2, with its diagnoses as Conditions (ICD-10); GP problems are
Conditions in category problem-list-item; findings are Observations; repeat medicines are MedicationRequest
authorisations (intent plan) with a UK Core prescription type; packages of care are social care service
EpisodeOfCare; a GP nomination is a ServiceRequest for the case-management programme.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .calendar import parse_day
from .codes import icd_key
from .names import ADMISSION_METHOD, CODE_SYSTEMS, ICD10, PRESCRIPTION_TYPE, Names

Json = dict[str, Any]
SYSTEM_KEYS = {uri: key for key, uri in CODE_SYSTEMS.items()}
VOID_STATUSES = frozenset({"entered-in-error", "cancelled"})
ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
VOID_VERIFICATION = frozenset({"entered-in-error", "refuted"})
OPEN_SERVICE = frozenset({"active", "onhold"})
EVIDENCE_TYPES = ("Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "EpisodeOfCare",
                  "ServiceRequest")


@dataclass(slots=True)
class Admission:
    """A hospital spell."""

    id: str
    start: date
    end: date | None
    method: str
    status: str
    diagnoses: list[tuple[str, str, bool]] = field(default_factory=list)  # (Condition id, ICD-10 code, primary)

    @property
    def emergency(self) -> bool:
        return self.method.startswith("2")


@dataclass(slots=True)
class Coded:
    """A GP problem (Condition) or a coded finding (Observation)."""

    type: str
    id: str
    codes: tuple[tuple[str, str], ...]  # (snomed | readv2 | ctv3, code)
    day: date | None
    active: bool


@dataclass(slots=True)
class Medicine:
    """A medication authorisation."""

    id: str
    key: str
    prescription_type: str
    status: str
    authored: date | None
    ended: date | None = None


@dataclass(slots=True)
class Accommodation:
    """A SWIFT accommodation status (CLD value and any SNOMED CT residence finding mapped from it)."""

    id: str
    day: date | None
    values: frozenset[str]
    snomed: frozenset[str]


@dataclass(slots=True)
class Service:
    """A social care service (package of care)."""

    id: str
    service_type: str
    component: str
    status: str
    start: date | None
    end: date | None
    units: float | None = None
    unit: str = ""
    weekly_cost: float | None = None
    provider: str = ""

    @property
    def open(self) -> bool:
        return self.status in OPEN_SERVICE


@dataclass(slots=True)
class PatientFacts:
    """Everything the rule sets and measures need about one patient."""

    id: str
    birth: date | None = None
    deceased: bool = False
    name: str = ""
    practice: str = ""
    admissions: list[Admission] = field(default_factory=list)
    attendances: list[tuple[str, date]] = field(default_factory=list)
    diagnoses: dict[str, list[tuple[str, str, bool]]] = field(default_factory=dict)  # by encounter id
    problems: list[Coded] = field(default_factory=list)
    findings: list[Coded] = field(default_factory=list)
    accommodation: list[Accommodation] = field(default_factory=list)
    medicines: list[Medicine] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    nominations: list[tuple[str, date | None]] = field(default_factory=list)
    known: bool = False

    def link_diagnoses(self) -> None:
        """Attach diagnosis Conditions to their admissions (once all resources are read)."""
        for admission in self.admissions:
            found = self.diagnoses.get(admission.id)
            if found:
                admission.diagnoses = sorted(set(found))


def patient_of(resource: Json, *keys: str) -> str | None:
    """The id of the Patient a resource is about (`subject`/`patient`/`for` as a literal reference)."""
    for key in keys or ("subject", "patient"):
        reference = resource.get(key)
        if isinstance(reference, dict):
            literal = reference.get("reference")
            if isinstance(literal, str):
                parts = literal.split("/")
                if len(parts) >= 2 and parts[-2] == "Patient":
                    return parts[-1]
    return None


def reference_id(reference: Any, resource_type: str) -> str | None:
    if isinstance(reference, dict):
        literal = reference.get("reference")
        if isinstance(literal, str):
            parts = literal.split("/")
            if len(parts) >= 2 and parts[-2] == resource_type:
                return parts[-1]
    return None


def codings(concept: Any) -> list[Json]:
    if isinstance(concept, dict):
        found = concept.get("coding")
        if isinstance(found, list):
            return [c for c in found if isinstance(c, dict)]
    return []


def extension_value(resource: Json, url: str, kind: str) -> Any:
    for extension in resource.get("extension") or ():
        if isinstance(extension, dict) and extension.get("url") == url:
            return extension.get(kind)
    return None


def gp_codes(concept: Any) -> tuple[tuple[str, str], ...]:
    return tuple((SYSTEM_KEYS[c["system"]], str(c.get("code", ""))) for c in codings(concept)
                 if c.get("system") in SYSTEM_KEYS and c.get("code"))


def profiles_of(resource: Json) -> list[str]:
    meta = resource.get("meta")
    found = meta.get("profile") if isinstance(meta, dict) else None
    return [p.split("|", 1)[0] for p in found] if isinstance(found, list) else []


class FactReader:
    """Turns resource bodies into PatientFacts (one reader per run: it holds the facts it has built)."""

    def __init__(self, names: Names, as_of: date | None = None) -> None:
        self.names = names
        self.as_of = as_of
        self.facts: dict[str, PatientFacts] = {}
        self.hospital_diagnoses: list[tuple[str, str, str | None, list[str]]] = []
        self.diagnosis_links: dict[str, tuple[str, bool]] = {}  # condition id -> (encounter id, primary)
        self.programme_system = names.programme_system
        self.accommodation_code = (names.social_observation_system, "accommodation-status")
        self.accommodation_system = names.accommodation_system
        self.service_profile = names.service_episode
        self.programme_profile = names.programme_episode
        self.service_type_url = names.service_type_extension
        self.readers = {
            "Patient": self.patient, "Encounter": self.encounter, "Condition": self.condition,
            "Observation": self.observation, "MedicationRequest": self.medication,
            "EpisodeOfCare": self.episode, "ServiceRequest": self.nomination,
        }

    def of(self, patient_id: str) -> PatientFacts:
        found = self.facts.get(patient_id)
        if found is None:
            found = self.facts[patient_id] = PatientFacts(patient_id)
        return found

    def add(self, resource_type: str, resource_id: str, resource: Json) -> None:
        reader = self.readers.get(resource_type)
        if reader is not None and resource.get("status") not in VOID_STATUSES:
            reader(resource_id, resource)

    def finish(self) -> dict[str, PatientFacts]:
        for patient, condition, encounter, codes in self.hospital_diagnoses:
            linked, primary = self.diagnosis_links.get(condition, (None, False))
            encounter = encounter or linked
            if encounter is not None:
                found = self.of(patient).diagnoses.setdefault(encounter, [])
                found.extend((condition, code, primary and linked == encounter) for code in codes)
        self.hospital_diagnoses = []
        for facts in self.facts.values():
            facts.link_diagnoses()
        return self.facts

    # ------------------------------------------------------------- by type

    def patient(self, resource_id: str, resource: Json) -> None:
        facts = self.of(resource_id)
        facts.known = True
        facts.birth = parse_day(resource.get("birthDate"))
        facts.deceased = bool(resource.get("deceasedDateTime") or resource.get("deceasedBoolean"))
        for name in resource.get("name") or ():
            if isinstance(name, dict):
                given = " ".join(str(g) for g in name.get("given") or ())
                facts.name = name.get("text") or " ".join(p for p in (given, name.get("family", "")) if p)
                break
        for reference in resource.get("generalPractitioner") or ():
            identifier = reference.get("identifier") if isinstance(reference, dict) else None
            if isinstance(identifier, dict) and identifier.get("system") == "https://fhir.nhs.uk/Id/ods-organization-code":
                facts.practice = str(identifier.get("value", ""))

    def encounter(self, resource_id: str, resource: Json) -> None:
        patient = patient_of(resource)
        if patient is None:
            return
        klass = resource.get("class")
        code = klass.get("code") if isinstance(klass, dict) else None
        profiles = profiles_of(resource)
        start = parse_day((resource.get("period") or {}).get("start"))
        if start is None:
            return
        if code == "EMER" or self.names.emergency_attendance in profiles:
            self.of(patient).attendances.append((resource_id, start))
            return
        hospitalization = resource.get("hospitalization")
        if not isinstance(hospitalization, dict):
            return
        method = extension_value(hospitalization, ADMISSION_METHOD, "valueCodeableConcept")
        method_code = next((str(c.get("code", "")) for c in codings(method) if c.get("code")), "")
        if not method_code or (code != "IMP" and self.names.hospital_spell not in profiles):
            return
        facts = self.of(patient)
        facts.admissions.append(Admission(resource_id, start, parse_day((resource.get("period") or {}).get("end")),
                                          method_code, str(resource.get("status", ""))))
        listed = [d for d in resource.get("diagnosis") or () if isinstance(d, dict)]
        ranks = [d.get("rank") for d in listed if isinstance(d.get("rank"), int)]
        first = min(ranks) if ranks else None
        for position, diagnosis in enumerate(listed):
            condition = reference_id(diagnosis.get("condition"), "Condition")
            if condition is not None:
                rank = diagnosis.get("rank")
                primary = rank == first if first is not None else position == 0
                self.diagnosis_links[condition] = (resource_id, primary)

    def condition(self, resource_id: str, resource: Json) -> None:
        patient = patient_of(resource)
        if patient is None:
            return
        verification = next((c.get("code") for c in codings(resource.get("verificationStatus"))), None)
        if verification in VOID_VERIFICATION:
            return
        categories = {c.get("code") for concept in resource.get("category") or () for c in codings(concept)}
        facts = self.of(patient)
        if "encounter-diagnosis" in categories:
            icd = [icd_key(str(c["code"])) for c in codings(resource.get("code")) if c.get("system") == ICD10
                   and c.get("code")]
            if icd:
                self.hospital_diagnoses.append((patient, resource_id, reference_id(resource.get("encounter"),
                                                                                   "Encounter"), icd))
            return
        codes = gp_codes(resource.get("code"))
        if not codes:
            return
        clinical = next((c.get("code") for c in codings(resource.get("clinicalStatus"))), "active")
        onset = parse_day(resource.get("onsetDateTime") or resource.get("recordedDate"))
        facts.problems.append(Coded("Condition", resource_id, codes, onset, clinical in ACTIVE_CLINICAL))

    def observation(self, resource_id: str, resource: Json) -> None:
        patient = patient_of(resource)
        if patient is None:
            return
        code_codings = codings(resource.get("code"))
        period = resource.get("effectivePeriod") if isinstance(resource.get("effectivePeriod"), dict) else {}
        day = parse_day(resource.get("effectiveDateTime") or period.get("start"))
        if any((c.get("system"), c.get("code")) == self.accommodation_code for c in code_codings):
            value = codings(resource.get("valueCodeableConcept"))
            values = frozenset(str(c.get("code")) for c in value if c.get("system") == self.accommodation_system)
            snomed = frozenset(str(c.get("code")) for c in value if c.get("system") == CODE_SYSTEMS["snomed"])
            self.of(patient).accommodation.append(Accommodation(resource_id, day, values, snomed))
            return
        codes = gp_codes(resource.get("code"))
        if not codes:
            return
        ended = parse_day(period.get("end"))
        active = ended is None or (self.as_of is not None and ended >= self.as_of)
        self.of(patient).findings.append(Coded("Observation", resource_id, codes, day, active))

    def medication(self, resource_id: str, resource: Json) -> None:
        patient = patient_of(resource)
        if patient is None or resource.get("intent") not in ("plan", "order", "original-order", "instance-order"):
            return
        concept = resource.get("medicationCodeableConcept")
        if not isinstance(concept, dict):
            return
        dmd = next((str(c["code"]) for c in codings(concept) if c.get("code")), None)
        key = dmd or " ".join(str(concept.get("text", "")).lower().split())
        if not key:
            return
        kind = extension_value(resource, PRESCRIPTION_TYPE, "valueCodeableConcept")
        prescription_type = next((str(c.get("code")) for c in codings(kind) if c.get("code")), "")
        validity = (resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
        self.of(patient).medicines.append(Medicine(resource_id, key, prescription_type, str(resource.get("status", "")),
                                                   parse_day(resource.get("authoredOn")),
                                                   parse_day(validity.get("end"))))

    def episode(self, resource_id: str, resource: Json) -> None:
        patient = patient_of(resource, "patient")
        if patient is None:
            return
        profiles = profiles_of(resource)
        service_type = extension_value(resource, self.service_type_url, "valueCodeableConcept")
        type_code = next((str(c.get("code")) for c in codings(service_type) if c.get("code")), "")
        if self.service_profile not in profiles and not type_code:
            return
        component = next((str(c.get("code")) for t in resource.get("type") or () for c in codings(t)
                          if c.get("code")), "")
        period = resource.get("period") or {}
        units = extension_value(resource, self.names.units_extension, "valueQuantity") or {}
        cost = extension_value(resource, self.names.cost_extension, "valueMoney") or {}
        provider = extension_value(resource, self.names.provider_extension, "valueReference") or {}
        self.of(patient).services.append(Service(
            resource_id, type_code, component, str(resource.get("status", "")), parse_day(period.get("start")),
            parse_day(period.get("end")), number(units.get("value")), str(units.get("code") or units.get("unit") or ""),
            number(cost.get("value")), str(provider.get("display", "")) if isinstance(provider, dict) else ""))

    def nomination(self, resource_id: str, resource: Json) -> None:
        patient = patient_of(resource)
        if patient is None or resource.get("status") not in ("active", "completed"):
            return
        if not any(c.get("system") == self.programme_system for c in codings(resource.get("code"))):
            return
        day = parse_day(resource.get("authoredOn") or resource.get("occurrenceDateTime"))
        self.of(patient).nominations.append((resource_id, day))


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
