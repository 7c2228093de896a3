"""A small shared record for access tests: two people held by different organisations of every kind.

`pa` is registered at practice A81001 (part of locality L0001), admitted to hospital RAA, a client of
council C0001 and has a care plan naming the voluntary organisation V0001; `pb` is held by a different
organisation of each kind. So for every kind of client, `pa` is allowed and `pb` is forbidden."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
COUNCIL = "https://sharedcare.example.org/fhir/Id/council-code"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
LOCAL = "https://sharedcare.example.org/fhir/Id/test-record"
HELD = {"a": {"practice": "A81001", "locality": "L0001", "hospital": "RAA", "council": "C0001", "voluntary": "V0001"},
        "b": {"practice": "B82002", "locality": "L0002", "hospital": "RBB", "council": "C0002", "voluntary": "V0002"}}
ORGANISATIONS = {  # kind -> the organisation of the allowed person's holder (the client's organisation)
    "gp": f"{ODS}|A81001", "hospital": f"{ODS}|RAA", "council": f"{COUNCIL}|C0001",
    "case-management": f"{ODS}|L0001", "voluntary-sector": f"{ODS}|V0001",
    "integration": f"{ODS}|HOST", "auditor": f"{ODS}|AUDIT",
}
NHS_NUMBERS = {"a": "9000000009", "b": "9000000017"}
VOLUNTARY_POLICY = """kind: voluntary-sector
title: "A voluntary-sector organisation commissioned by the council"
patients:
  - search: CarePlan?care-team:CareTeam.participant:Organization.identifier={organization}
    patient: subject
read: [Patient, CarePlan, CareTeam]
"""


def entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def organisation(code: str, system: str = ODS, part_of: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Organization", "id": f"org-{code}", "name": f"Organisation {code}",
                            "identifier": [{"system": system, "value": code}]}
    if part_of:
        body["partOf"] = {"reference": f"Organization/org-{part_of}"}
    return body


def person_resources(p: str) -> list[dict[str, Any]]:
    """The record of person `p` ('a' or 'b')."""
    held = HELD[p]
    patient = f"Patient/p{p}"
    started = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        organisation(held["locality"]),
        organisation(held["practice"], part_of=held["locality"]),
        organisation(held["hospital"]),
        organisation(held["council"], COUNCIL),
        organisation(held["voluntary"]),
        {"resourceType": "Patient", "id": f"p{p}", "identifier": [{"system": NHS, "value": NHS_NUMBERS[p]}],
         "name": [{"family": f"Person{p.upper()}", "given": ["Test"]}], "gender": "female",
         "birthDate": "1936-01-01", "generalPractitioner": [{"reference": f"Organization/org-{held['practice']}"}]},
        {"resourceType": "Encounter", "id": f"enc-{p}", "status": "in-progress",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
         "subject": {"reference": patient}, "period": {"start": started},
         "serviceProvider": {"reference": f"Organization/org-{held['hospital']}"}},
        {"resourceType": "EpisodeOfCare", "id": f"eoc-{p}", "status": "active", "patient": {"reference": patient},
         "managingOrganization": {"reference": f"Organization/org-{held['council']}"}},
        {"resourceType": "CareTeam", "id": f"team-{p}", "status": "active", "subject": {"reference": patient},
         "participant": [{"member": {"reference": f"Organization/org-{held['voluntary']}"}}]},
        {"resourceType": "CarePlan", "id": f"plan-{p}", "status": "active", "intent": "plan",
         "identifier": [{"system": LOCAL, "value": f"plan-{p}"}],
         "subject": {"reference": patient}, "careTeam": [{"reference": f"CareTeam/team-{p}"}]},
        {"resourceType": "Observation", "id": f"obs-{p}", "status": "final",
         "identifier": [{"system": LOCAL, "value": f"obs-{p}"}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
         "subject": {"reference": patient}, "valueQuantity": {"value": 60, "unit": "kg"}},
    ]


def world_bundle() -> dict[str, Any]:
    """A transaction Bundle writing both people's records."""
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [entry(r) for p in ("a", "b") for r in person_resources(p)]}


def objection(p: str, recorded_by: str | None = None) -> dict[str, Any]:
    """An active privacy Consent whose base provision denies: the person objects to sharing."""
    body: dict[str, Any] = {
        "resourceType": "Consent", "id": f"objection-{p}", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/p{p}"}, "policyRule": {"text": "Objection to sharing"},
        "provision": {"type": "deny"},
    }
    if recorded_by:
        body["organization"] = [{"reference": f"Organization/org-{recorded_by}"}]
    return body
