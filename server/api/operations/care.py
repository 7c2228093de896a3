"""Case-management operations: each handler reads its parameters, makes one call into server.care, answers."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ...care import casefinding, outcomes, programme, record
from ...care.runs import select_methods
from ...care.service import CareServices, care_of
from ...care.status import CaseStatus
from ...fhir.outcome import FhirError, Issue, bad_request, not_found, operation_outcome
from ..model import FhirResponse
from ..router import Interaction, Operation
from .params import OperationParams

if TYPE_CHECKING:
    from ..app import FhirApi

SYNC_LIMIT = 2000
EVIDENCE = ("Patient", "Condition", "Encounter", "MedicationRequest", "Observation", "EpisodeOfCare")
ASSESSED = ("RiskAssessment", "Flag", "Task")
FINDING = ("Patient", "RiskAssessment")
PROGRAMME = ("EpisodeOfCare", "CareTeam", "CarePlan")
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
EARLIEST_PERIOD, LATEST_PERIOD = date(1900, 1, 1), date(9998, 12, 31)
"""The days an `$outcomes` period may start and end within (its months and the year before are counted)."""


def register(api: FhirApi) -> None:
    care = care_of(api.services)
    status = CaseStatus(care)
    for operation in operations(care, status):
        api.add_operation(operation)


def operations(care: CareServices, status: CaseStatus) -> list[Operation]:
    def bind(handler: Any) -> Any:
        def run(ix: Interaction) -> FhirResponse:
            return handler(ix, care)

        run.__name__ = handler.__name__
        return run

    def case_status_handler(ix: Interaction) -> FhirResponse:
        return case_status(ix, care, status)

    return [
        Operation("stratify", bind(stratify), ("system",), methods=("POST",), reads=EVIDENCE, writes=ASSESSED),
        Operation("stratify", bind(stratify_patient), ("instance",), ("Patient",), writing=True, methods=("POST",),
                  reads=EVIDENCE, writes=ASSESSED),
        Operation("case-finding", bind(case_finding), ("system",), reads=FINDING),
        Operation("case-finding", bind(case_finding), ("type",), ("Patient",), reads=FINDING),
        Operation("screen", bind(screen), ("instance",), ("Patient",), writing=True, methods=("POST",),
                  reads=("Patient",), writes=("Task",)),
        Operation("enrol", bind(enrol), ("instance",), ("Patient",), writing=True, methods=("POST",),
                  reads=("Patient", "PractitionerRole"), writes=PROGRAMME),
        Operation("discharge", bind(discharge), ("instance",), ("Patient",), writing=True, methods=("POST",),
                  reads=("Patient",), writes=PROGRAMME),
        Operation("case-status", case_status_handler, ("type", "instance"), ("Patient",), methods=("GET",),
                  reads=("Patient",)),
        Operation("caseload", bind(caseload), ("instance",), ("PractitionerRole",), methods=("GET",),
                  reads=("PractitionerRole", "EpisodeOfCare", "Patient")),
        Operation("outcomes", bind(report), ("system",), reads=("EpisodeOfCare", "Encounter")),
    ]


# ------------------------------------------------------------------ helpers

def day_param(params: OperationParams, name: str, default: date) -> date:
    value = params.get(name)
    if value is None:
        return default
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise bad_request(f"{name} must be a date (YYYY-MM-DD), not {value!r}", name, code="value") from exc


def reference_param(params: OperationParams, name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, dict):
        value = value.get("reference")
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{name} must be a reference (Type/id)", name)
    return value or None


def references(params: OperationParams, name: str) -> list[str]:
    found = []
    for value in params.values.get(name, []):
        reference = value.get("reference") if isinstance(value, dict) else value
        if isinstance(reference, str) and reference:
            found.append(reference)
    return found


def flag_param(params: OperationParams, name: str) -> bool:
    value = params.get(name)
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "yes"))


def methods_param(params: OperationParams, care: CareServices) -> list[str]:
    codes = [str(v) for v in params.values.get("method", []) + params.values.get("ruleSet", [])]
    codes = [c for value in codes for c in value.split(",") if c]
    try:
        select_methods(care, codes)
    except KeyError as exc:
        raise bad_request(f"Unknown rule set or measure {exc.args[0]!r}", "method") from exc
    return codes


# --------------------------------------------------------------- operations

def stratify(ix: Interaction, care: CareServices) -> FhirResponse:
    """Population run: synchronous for small populations, else 202 with the Task to poll."""
    params = OperationParams(ix.request)
    as_of = day_param(params, "asOf", care.today())
    methods = methods_param(params, care)
    assert care.runs is not None
    patients = ix.repo.search("Patient", [("_summary", "count")]).total or 0
    prefer_async = flag_param(params, "async")
    if prefer_async or patients > SYNC_LIMIT:
        task_id = care.runs.start(as_of, methods or None)
        location = f"{ix.request.base_url}/Task/{task_id}"
        body = operation_outcome([Issue("informational", f"Stratification of {patients} patients started; poll "
                                                         f"{location} for progress", severity="information")])
        return FhirResponse(202, body, {"Content-Location": location})
    summary = care.runs.run(as_of, methods or None)
    task = care.beside(ix.repo).read("Task", str(summary.task))  # the run's own record: about no one person
    return FhirResponse(200, task.body, {"Content-Location": f"{ix.request.base_url}/Task/{summary.task}"})


def stratify_patient(ix: Interaction, care: CareServices) -> FhirResponse:
    from ...care.runs import stratify_patients

    params = OperationParams(ix.request)
    ix.repo.read("Patient", ix.id)
    as_of = day_param(params, "asOf", care.today())
    stratify_patients(care, care.beside(ix.repo), [ix.id], as_of)
    ix.repo.flush()
    result = ix.repo.search("RiskAssessment", [("patient", f"Patient/{ix.id}"), ("_count", "50")])
    from ..handlers import search_bundle

    return search_bundle(ix, result, f"{ix.request.base_url}/Patient/{ix.id}/$stratify")


def case_finding(ix: Interaction, care: CareServices) -> FhirResponse:
    params = OperationParams(ix.request)
    capacity = params.integer("capacity", -1, 100000)
    result = casefinding.case_finding(
        care, ix.repo, rule_set=params.text("ruleSet"), practice=params.text("practice"),
        locality=params.text("locality"), capacity=None if capacity < 0 else capacity, today=care.today())
    return FhirResponse(200, result)


def screen(ix: Interaction, care: CareServices) -> FhirResponse:
    params = OperationParams(ix.request)
    found = record.load_record(care, ix.repo.connection, ix.id)
    if found.patient is None:
        raise not_found(f"Patient/{ix.id} is not known")
    decision = params.require("decision")
    task = programme.record_decision(care, ix.repo, found, decision, reference_param(params, "screener"),
                                     params.text("reason"), day_param(params, "date", care.today()))
    return FhirResponse(200, task.body)


def enrol(ix: Interaction, care: CareServices) -> FhirResponse:
    params = OperationParams(ix.request)
    manager = reference_param(params, "careManager")
    if not manager:
        raise bad_request("$enrol needs careManager (a PractitionerRole reference)", "careManager", code="required")
    request = programme.Enrolment(
        patient=ix.id, template=params.require("template"), care_manager=manager,
        start=day_param(params, "start", care.today()), team=references(params, "teamMember"),
        organization=reference_param(params, "organization"), override=flag_param(params, "override"),
        screened_by=reference_param(params, "screener"), reason=params.text("reason"))
    done = programme.enrol(care, ix.repo, request)
    parts: list[dict[str, Any]] = [
        {"name": "episode", "resource": done.episode}, {"name": "careTeam", "resource": done.care_team},
        {"name": "carePlan", "resource": done.care_plan}, {"name": "flag", "resource": done.flag},
        {"name": "assessment", "resource": done.assessment},
        {"name": "screening", "resource": {**done.screening.body, "id": done.screening.id}},
    ]
    if done.warnings:
        parts.append({"name": "warning", "valueString": "; ".join(done.warnings)})
    return FhirResponse(201, {"resourceType": "Parameters", "parameter": parts},
                        {"Location": f"{ix.request.base_url}/EpisodeOfCare/{done.episode['id']}"})


def discharge(ix: Interaction, care: CareServices) -> FhirResponse:
    params = OperationParams(ix.request)
    episode = programme.discharge(care, ix.repo, ix.id, day_param(params, "date", care.today()),
                                  params.text("reason"))
    return FhirResponse.of_resource(episode)


def case_status(ix: Interaction, care: CareServices, status: CaseStatus) -> FhirResponse:
    connection = ix.repo.connection
    reach = ix.repo.reach
    if "id" in ix.vars:
        found = status.lookup(connection, care.today(), reach, patient_id=ix.id)
        wanted = f"Patient/{ix.id}"
    else:
        identifier = ix.request.param("identifier")
        if not identifier or "|" not in identifier:
            raise bad_request("$case-status needs identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number>",
                              "identifier", code="required")
        system, _, value = identifier.partition("|")
        system, value = system or NHS_NUMBER, value.replace(" ", "")
        wanted = f"the patient with identifier {identifier}"
        if reach is not None and not ix.repo.policy.case_status_any_patient:
            held = ix.repo.find("Patient", urlencode({"identifier": f"{system}|{value}"}), what="$case-status")
            if len(held) != 1:
                raise not_found(f"No record of {wanted}")
            found = status.lookup(connection, care.today(), reach, patient_id=held[0][1])
        else:
            found = status.lookup(connection, care.today(), reach, system=system, value=value)
    if found.objecting:
        raise suppressed(wanted)
    if found.body is None:
        if found.matched > 1:
            raise bad_request(f"{found.matched} patients carry identifier {ix.request.param('identifier')}",
                              "identifier", code="multiple-matches")
        raise not_found(f"No record of {wanted}")
    if found.patient_id is not None:
        ix.repo.patients.add(found.patient_id)  # the audit record names whom the answer was about
    return FhirResponse(200, found.body)


def suppressed(wanted: str) -> FhirError:
    """The break-the-glass answer: the person objected to sharing; an emergency purpose may open it."""
    return FhirError(403, [Issue("suppressed", f"The record of {wanted} is withheld: the person has objected to "
                                               "sharing. In an emergency, state X-Purpose-Of-Use: ETREAT and "
                                               "X-Break-Glass-Reason (audited as a security alert).")])


def caseload(ix: Interaction, care: CareServices) -> FhirResponse:
    return FhirResponse(200, programme.caseload_list(care, ix.repo, ix.id, care.today()))


def report(ix: Interaction, care: CareServices) -> FhirResponse:
    params = OperationParams(ix.request)
    end = day_param(params, "periodEnd", care.today())
    start = day_param(params, "periodStart", date(max(end.year - 1, 1), end.month, 1))
    for name, day in (("periodEnd", end), ("periodStart", start)):
        if not EARLIEST_PERIOD <= day <= LATEST_PERIOD:
            raise bad_request(f"{name} must lie between {EARLIEST_PERIOD} and {LATEST_PERIOD}, not {day}", name,
                              code="value")
    result = outcomes.outcomes(care, ix.repo, start=start, end=end, practice=params.text("practice"),
                               locality=params.text("locality"), programme=params.text("programme"))
    return FhirResponse(200, result)
