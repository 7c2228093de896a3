"""Snapshot semantics: what a full monthly extract no longer holds is ended or marked inactive, never deleted.

Each resource spec names a ``disappear`` action. After a full snapshot is loaded, the source's current
resources (found by the identity system, narrowed by the action's search) that the snapshot did not produce
are changed by that action; rows rejected or held this month protect what they stand for. In-process loads
find the candidates with one indexed query (``LoadLedger.identified``) and narrow them when reading them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .fhir import FhirClient

Action = Callable[[dict[str, Any], "Gone"], dict[str, Any] | None]


@dataclass(frozen=True)
class Gone:
    """What an action knows about a disappeared resource."""

    system: str  # the identity system
    value: str  # its identity value
    end: str  # the extract date: the latest the entry can have ended
    snapshot_keys: frozenset[str]  # row ids present in this snapshot
    options: dict[str, Any]


def _code(concept: Any) -> str | None:
    codings = (concept or {}).get("coding", [])
    return codings[0].get("code") if codings else None


def registration_end(resource: dict[str, Any], gone: Gone) -> dict[str, Any] | None:
    """A person no longer on a practice list (or in the council's clients): the registration identifier's
    period ends; with ``general_practitioner`` the practice and usual GP are removed when they were this
    practice."""
    changed = False
    identifiers = []
    for identifier in resource.get("identifier", []):
        if identifier.get("system") == gone.system and identifier.get("value") == gone.value:
            period = dict(identifier.get("period") or {})
            if not period.get("end"):
                period["end"] = gone.end
                identifier = {**identifier, "period": period}
                changed = True
        identifiers.append(identifier)
    out = {**resource, "identifier": identifiers}
    practice = str(gone.options.get("practice", ""))
    if gone.options.get("general_practitioner") and practice:
        gps = out.get("generalPractitioner", [])
        if any((gp.get("identifier") or {}).get("value") == practice and gp.get("type") == "Organization"
               for gp in gps):
            out.pop("generalPractitioner", None)
            changed = True
    return out if changed else None


def condition_inactive(resource: dict[str, Any], gone: Gone) -> dict[str, Any] | None:
    """A problem no longer on the GP record: clinicalStatus inactive."""
    if _code(resource.get("clinicalStatus")) not in ("active", "recurrence", "relapse"):
        return None
    return {**resource, "clinicalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "inactive",
         "display": "Inactive"}]}}


def diagnosis_withdrawn(resource: dict[str, Any], gone: Gone) -> dict[str, Any] | None:
    """A diagnosis dropped from a spell still in the extract was withdrawn: entered-in-error. A spell that
    left the extract's window keeps its diagnoses as they were."""
    owner = gone.value.rsplit("-", 1)[0]
    if owner not in gone.snapshot_keys or _code(resource.get("verificationStatus")) == "entered-in-error":
        return None
    return {**resource, "verificationStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error",
         "display": "Entered in Error"}]}}


def observation_end(resource: dict[str, Any], gone: Gone) -> dict[str, Any] | None:
    """A finding no longer recorded: its effective time becomes a period ending at the extract date."""
    if "effectivePeriod" in resource:
        period = dict(resource["effectivePeriod"])
        if period.get("end"):
            return None
        period["end"] = gone.end
        return {**resource, "effectivePeriod": period}
    start = resource.get("effectiveDateTime")
    out = {k: v for k, v in resource.items() if k != "effectiveDateTime"}
    out["effectivePeriod"] = {"start": start, "end": gone.end} if start else {"end": gone.end}
    return out


def medication_end(resource: dict[str, Any], gone: Gone) -> dict[str, Any] | None:
    """An authorisation no longer on the GP record: stopped (the extract does not say it ran its course);
    the statement's period ends at the extract date."""
    if resource.get("status") not in ("active", "on-hold", "draft", "intended"):
        return None
    out = {**resource, "status": "stopped"}
    if resource.get("resourceType") == "MedicationStatement":
        period = dict(resource.get("effectivePeriod") or {})
        period.setdefault("end", gone.end)
        out["effectivePeriod"] = period
        out.pop("effectiveDateTime", None)
    return out


def encounter_unknown(resource: dict[str, Any], gone: Gone) -> dict[str, Any] | None:
    """An encounter still open when it left the extract: its outcome is unknown (finished ones stay)."""
    if resource.get("status") not in ("planned", "arrived", "triaged", "in-progress", "onleave"):
        return None
    return {**resource, "status": "unknown"}


def episode_finish(resource: dict[str, Any], gone: Gone) -> dict[str, Any] | None:
    """A service no longer in SWIFT: finished, its period ending at the extract date, the change recorded in
    statusHistory."""
    status = resource.get("status")
    if status not in ("planned", "waitlist", "active", "onhold"):
        return None
    from .strategies import with_status_history

    period = dict(resource.get("period") or {})
    period.setdefault("end", gone.end)
    new = {**resource, "status": "finished", "period": period}
    return with_status_history(resource, new, gone.end)


ACTIONS: dict[str, tuple[Action, list[tuple[str, str]]]] = {
    # action -> (function, search parameters narrowing the candidates)
    "registration-end": (registration_end, []),
    "condition-inactive": (condition_inactive, [("clinical-status", "active,recurrence,relapse")]),
    "diagnosis-withdrawn": (diagnosis_withdrawn, []),
    "observation-end": (observation_end, []),
    "medication-end": (medication_end, [("status", "active,on-hold,draft,intended")]),
    "encounter-unknown": (encounter_unknown, [("status", "planned,arrived,triaged,in-progress,onleave")]),
    "episode-finish": (episode_finish, [("status", "planned,waitlist,active,onhold")]),
}


def protected(value: str, keys: frozenset[str]) -> bool:
    """Whether an identity belongs to a row id (itself, or derived from it as ``<id>-<part>``)."""
    if value in keys:
        return True
    head = value
    while "-" in head:
        head = head.rsplit("-", 1)[0]
        if head in keys:
            return True
    return False


def candidates(client: FhirClient, resource_type: str, system: str, action: str) -> list[tuple[str, str]]:
    """(id, identity value) of the current resources carrying an identifier of ``system`` that the action
    may still change."""
    _function, narrowing = ACTIONS[action]
    params = [("identifier", f"{system}|"), *narrowing, ("_elements", "identifier")]
    found = []
    for resource in client.search(resource_type, params):
        for identifier in resource.get("identifier", []):
            if identifier.get("system") == system and identifier.get("value"):
                found.append((str(resource["id"]), str(identifier["value"])))
    return found
