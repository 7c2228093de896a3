"""Case status for hospitals: the stored answer when fresh, else one SQL statement over the indexes, answered
as a Parameters resource (and stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from ..fhir.searchparams import param_key
from ..store.bulk import driver_query
from .documents import LINKED, MEMBERS, StatusDocuments
from .evidence import codings, extension_value, profiles_of
from .programme import Manager, next_review, plan_summary
from .record import CURRENT_EPISODE, Stored, has_code, is_shared_plan, patient_name, person_name, phone, service_line

if TYPE_CHECKING:
    from ..store.search.reach import Reach
    from .service import CareServices

Json = dict[str, Any]


def lookup_sql(by_identifier: bool) -> str:
    """Patient (by identifier or id), what refers to them, their team members and the members' practitioners."""
    linked = ", ".join(str(param_key(t, c)) for t, c in LINKED)
    members = ", ".join(str(param_key(t, c)) for t, c in MEMBERS)
    practitioner = param_key("PractitionerRole", "practitioner")
    if by_identifier:
        patient = (f"SELECT r.pk AS pk, r.id AS id FROM idx_token t JOIN resources r ON r.pk = t.pk "
                   f"WHERE t.sp = {param_key('Patient', 'identifier')} AND t.code = ? AND t.system = ? "
                   f"AND r.type = 'Patient' AND r.deleted = FALSE")
    else:
        patient = "SELECT r.pk AS pk, r.id AS id FROM resources r WHERE r.type = 'Patient' AND r.id = ? " \
                  "AND r.deleted = FALSE"
    return (
        f"WITH pat AS ({patient}), "
        f"l1 AS (SELECT x.pk AS pk FROM idx_reference x JOIN pat ON x.tid = pat.id "
        f"WHERE x.ttype = 'Patient' AND x.sp IN ({linked})), "
        f"l2 AS (SELECT r.pk AS pk FROM idx_reference x JOIN resources r ON r.type = x.ttype AND r.id = x.tid "
        f"WHERE x.pk IN (SELECT pk FROM l1) AND x.sp IN ({members})), "
        f"l3 AS (SELECT r.pk AS pk FROM idx_reference x JOIN resources r ON r.type = x.ttype AND r.id = x.tid "
        f"WHERE x.pk IN (SELECT pk FROM l2) AND x.sp = {practitioner}) "
        f"SELECT r.type, r.id, v.body, CASE WHEN r.pk IN (SELECT pk FROM pat) THEN 1 ELSE 0 END "
        f"FROM resources r JOIN resource_versions v "
        f"ON v.pk = r.pk AND v.version = r.version WHERE r.deleted = FALSE AND r.pk IN "
        f"(SELECT pk FROM pat UNION SELECT pk FROM l1 UNION SELECT pk FROM l2 UNION SELECT pk FROM l3)"
    )


@dataclass(frozen=True)
class Lookup:
    """What a lookup found: the answer (JSON text), how many patients matched, the one it is about, and
    whether that person's objection hides them from the caller."""

    body: str | None
    matched: int
    patient_id: str | None
    objecting: bool = False


@dataclass(frozen=True)
class Fetched:
    """What a lookup read: the patients it matched, and every row (they, what is linked to them, members)."""

    matched: list[Stored]
    rows: list[Stored]


class CaseStatus:
    """Answers "is this person case-managed, by whom, with what plan?" in one round trip."""

    def __init__(self, care: CareServices) -> None:
        self.care = care
        self.by_identifier = lookup_sql(True)
        self.by_id = lookup_sql(False)
        self.documents = StatusDocuments(care)

    def lookup(self, connection: Connection, today: date, reach: Reach | None, *, patient_id: str | None = None,
               system: str | None = None, value: str | None = None) -> Lookup:
        """The answer as JSON text (None when not exactly one patient matched), how many matched, and whether
        the caller's reach hides the one matched by an objection (then no answer is made or read). A fresh
        stored answer is served as it is; otherwise the answer is made and kept."""
        documents = self.documents
        day = today.isoformat()
        found = documents.find(connection, reach, patient_id=patient_id, system=system, value=value)
        if len(found) == 1 and found[0].objecting:
            return Lookup(None, 1, found[0].patient_id, objecting=True)
        if len(found) == 1 and found[0].fresh(documents.basis, day):
            return Lookup(found[0].body, 1, found[0].patient_id)
        fetched = self.fetch(connection, patient_id=patient_id, system=system, value=value)
        answer = self.answer(fetched, today)
        if answer is None:
            return Lookup(None, len(fetched.matched), None)
        body = orjson.dumps(answer).decode()
        if len(found) == 1 and not connection.get_execution_options().get("writing"):
            documents.store(connection, found[0], answer, body, day)  # not inside another's transaction
        return Lookup(body, 1, fetched.matched[0].id)

    def fetch(self, connection: Connection, *, patient_id: str | None = None, system: str | None = None,
              value: str | None = None) -> Fetched:
        """Everything an answer is made from, in one statement."""
        if patient_id is not None:
            rows = driver_query(connection, self.by_id, (patient_id,)).fetchall()
        else:
            rows = driver_query(connection, self.by_identifier, (value, system)).fetchall()
        found = [(Stored(t, i, orjson.loads(b)), bool(m)) for t, i, b, m in rows if b is not None]
        return Fetched([stored for stored, matched in found if matched], [stored for stored, _m in found])

    def answer(self, fetched: Fetched, today: date) -> Json | None:
        """The Parameters answer, or None when no patient matched (or several did)."""
        care = self.care
        names = care.names
        if len(fetched.matched) != 1:
            return None
        patient = fetched.matched[0]
        rows = fetched.rows
        by_ref = {r.ref: r for r in rows}
        mine = [r for r in rows if r.type != "Patient" and refers_to(r, patient.ref)]
        programmes = [r for r in mine if r.type == "EpisodeOfCare" and any(
            has_code(t, names.programme_system, c.get("code", "")) for t in r.body.get("type") or ()
            for c in codings(t))]
        current = [e for e in programmes if e.status in CURRENT_EPISODE]
        episode = max(current, key=lambda e: str((e.body.get("period") or {}).get("start", ""))) if current else None
        services = [r for r in mine if r.type == "EpisodeOfCare" and r not in programmes and
                    (names.service_episode in profiles_of(r.body) or extension_value(
                        r.body, names.service_type_extension, "valueCodeableConcept"))]
        parts: list[Json] = [{"name": "patient", "valueReference": {"reference": patient.ref,
                                                                     "display": patient_name(patient.body)}}]
        case_managed = episode is not None and episode.status == "active"
        parts.append({"name": "caseManaged", "valueBoolean": case_managed})
        manager = None
        if episode is not None:
            coding = next((c for t in episode.body.get("type") or () for c in codings(t)), {})
            parts.append({"name": "programme", "part": [
                {"name": "code", "valueCoding": {k: coding[k] for k in ("system", "code", "display") if k in coding}},
                {"name": "status", "valueCode": episode.status},
                {"name": "since", "valueDate": str((episode.body.get("period") or {}).get("start", ""))[:10]},
                {"name": "episode", "valueReference": {"reference": episode.ref}},
            ]})
            manager = self.manager(episode, by_ref)
            if manager is not None:
                parts.append({"name": "caseManager", "part": contact_parts(manager.name, manager.role_text(care),
                                                                            manager.telephone, manager.ref)})
            team_refs = {t.get("reference") for t in episode.body.get("team") or ()}
            for team in (r for r in mine if r.type == "CareTeam" and r.ref in team_refs):
                for participant in team.body.get("participant") or ():
                    parts.append({"name": "careTeamContact", "part": self.member(participant, by_ref)})
        plans = [r for r in mine if r.type == "CarePlan" and r.status == "active" and is_shared_plan(r.body)]
        plan = max(plans, key=lambda p: str((p.body.get("period") or {}).get("start", ""))) if plans else None
        if plan is not None:
            summary = plan_summary(care, patient.body, plan.body, manager, [s.body for s in services], today)
            last, nxt, what = next_review(plan.body, today)
            parts.append({"name": "carePlan", "part": [
                {"name": "reference", "valueReference": {"reference": plan.ref,
                                                         "display": str(plan.body.get("title", ""))}},
                {"name": "summary", "valueString": summary},
                *([{"name": "lastReview", "valueDate": last[:10]}] if last else []),
                *([{"name": "nextReview", "valueDate": nxt[:10]}, {"name": "nextReviewDetail", "valueString": what}]
                  if nxt else []),
            ]})
        parts.append(self.risk(mine))
        for service in sorted(services, key=lambda s: s.id):
            if service.status in ("active", "onhold"):
                parts.append({"name": "socialCarePackage", "part": [
                    {"name": "description", "valueString": service_line(care, service.body)},
                    {"name": "status", "valueCode": service.status},
                    {"name": "reference", "valueReference": {"reference": service.ref}},
                ]})
        for flag in sorted((r for r in mine if r.type == "Flag" and r.status == "active"),
                           key=lambda f: str((f.body.get("period") or {}).get("start", ""))):
            alert = [{"name": "text", "valueString": str((flag.body.get("code") or {}).get("text") or next(
                (c.get("display") for c in codings(flag.body.get("code"))), "alert"))},
                {"name": "since", "valueDateTime": str((flag.body.get("period") or {}).get("start", ""))},
                {"name": "reference", "valueReference": {"reference": flag.ref}}]
            parts.append({"name": "alert", "part": alert})
        return {"resourceType": "Parameters", "parameter": parts}

    def manager(self, episode: Stored, by_ref: dict[str, Stored]) -> Manager | None:
        reference = (episode.body.get("careManager") or {}).get("reference")
        role = by_ref.get(str(reference))
        if role is None or role.type != "PractitionerRole":
            return None
        practitioner = by_ref.get(str((role.body.get("practitioner") or {}).get("reference")))
        return Manager(role, practitioner)

    def member(self, participant: Json, by_ref: dict[str, Stored]) -> list[Json]:
        member = participant.get("member") or {}
        found = by_ref.get(str(member.get("reference")))
        role = next((c.get("display") or c.get("code") for r in participant.get("role") or () for c in codings(r)), "")
        if found is not None and found.type == "PractitionerRole":
            practitioner = by_ref.get(str((found.body.get("practitioner") or {}).get("reference")))
            manager = Manager(found, practitioner)
            return contact_parts(manager.name, str(role or manager.role_text(self.care)), manager.telephone,
                                 found.ref)
        name = (person_name(found.body) or str(found.body.get("name", ""))) if found is not None else ""
        return contact_parts(name or str(member.get("display", "")), str(role),
                             phone(found.body) if found is not None else "", member.get("reference"))

    def risk(self, mine: list[Stored]) -> Json:
        care = self.care
        names = care.names
        levels = []
        parts: list[Json] = []
        for assessment in sorted((r for r in mine if r.type == "RiskAssessment"), key=method_order(care)):
            method = next(iter(codings(assessment.body.get("method"))), {})
            prediction = (assessment.body.get("prediction") or [{}])[0]
            tier = next(iter(codings(prediction.get("qualitativeRisk"))), {})
            levels.append(care.book.tier_level(str(tier.get("code", ""))))
            score = next((e.get("valueDecimal") for e in prediction.get("extension") or ()
                          if e.get("url") == names.risk_score), None)
            part = [{"name": "method", "valueCoding": {k: method[k] for k in ("system", "version", "code", "display")
                                                        if k in method}},
                    {"name": "tier", "valueCoding": {k: tier[k] for k in ("system", "code", "display") if k in tier}}]
            if score is not None:
                part.append({"name": "score", "valueDecimal": score})
            part.append({"name": "date", "valueDateTime": str(assessment.body.get("occurrenceDateTime", ""))})
            part.append({"name": "reference", "valueReference": {"reference": assessment.ref}})
            parts.append({"name": "assessment", "part": part})
        order = ("case-management", "disease-management", "supported-self-care")
        level = min(levels, key=order.index) if levels else "supported-self-care"
        return {"name": "risk", "part": [{"name": "level", "valueCode": level}, *parts]}


def refers_to(resource: Stored, patient_ref: str) -> bool:
    body = resource.body
    for key in ("subject", "patient"):
        reference = body.get(key)
        if isinstance(reference, dict) and str(reference.get("reference", "")).endswith(patient_ref):
            return True
    return False


def method_order(care: CareServices) -> Any:
    order = {m.code: index for index, m in enumerate(care.book.methods)}

    def key(assessment: Stored) -> tuple[int, str]:
        code = next((str(c.get("code")) for c in codings(assessment.body.get("method"))), "")
        return order.get(code, 99), code

    return key


def contact_parts(name: str, role: str, telephone: str, reference: Any) -> list[Json]:
    parts: list[Json] = []
    if name:
        parts.append({"name": "name", "valueString": name})
    if role:
        parts.append({"name": "role", "valueString": role})
    if telephone:
        parts.append({"name": "telephone", "valueString": telephone})
    if reference:
        parts.append({"name": "reference", "valueReference": {"reference": str(reference)}})
    return parts

