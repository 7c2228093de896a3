"""For every constraint of every profile and extension, a change to its valid example that breaks it.

Each case names the constraint as the validator does (the invariant key, or the element id, prefixed with
the extension's name for constraints inside an extension definition) and the kind of constraint; the
tests check that every constraint the differentials define has a case (test_every_constraint_has_a_case).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.scr_examples import ACT, CS, ICD10, SNOMED, UKCORE_CS, UKCORE_SD, coding, concept, ext

Json = dict[str, Any]
Mutation = Callable[[Json], None]
ISSUE_CODES = {"min": "required", "max": "processing", "fixed": "processing", "binding": "code-invalid",
               "type": "processing", "target": "processing", "invariant": "invariant"}
SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")


@dataclass(frozen=True)
class Case:
    profile: str
    kind: str
    label: str
    mutate: Mutation

    @property
    def issue_code(self) -> str:
        return ISSUE_CODES[self.kind]

    @property
    def id(self) -> str:
        return f"{self.profile}:{self.kind}:{self.label}"


def walk(resource: Json, path: str) -> tuple[Any, str | int]:
    """The container holding the last step of a path, and the key or index of that step."""
    parts = path.split(".")
    node: Any = resource
    for part in parts[:-1]:
        name, index = SEGMENT.match(part).groups()  # type: ignore[union-attr]
        node = node[name] if index is None else node[name][int(index)]
    name, index = SEGMENT.match(parts[-1]).groups()  # type: ignore[union-attr]
    if index is None:
        return node, name
    return node[name], int(index)


def put(path: str, value: Any) -> Mutation:
    def mutate(resource: Json) -> None:
        container, key = walk(resource, path)
        container[key] = value
    return mutate


def drop(path: str) -> Mutation:
    def mutate(resource: Json) -> None:
        container, key = walk(resource, path)
        del container[key]
    return mutate


def add(path: str, value: Any) -> Mutation:
    def mutate(resource: Json) -> None:
        container, key = walk(resource, path)
        container[key].append(value)
    return mutate


def copy_item(path: str) -> Mutation:
    """Append a copy of a list item to its list (a second slice member)."""
    def mutate(resource: Json) -> None:
        container, index = walk(resource, path)
        container.append(copy.deepcopy(container[index]))
    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(resource: Json) -> None:
        for mutation in mutations:
            mutation(resource)
    return mutate


def extension_cases(profile: str, at: str, name: str, good: Json, wrong_type: tuple[str, Any]) -> list[Case]:
    """The constraints every project extension has: no nested extensions, a value, of its one type."""
    label = f"{name} Extension"
    nested = [ext("http://example.org/n", valueString="y")]
    return [
        Case(profile, "max", f"{label}.extension", put(f"{at}.extension", nested)),
        Case(profile, "min", f"{label}.value[x]", put(at, {"url": good["url"], "extension": nested})),
        Case(profile, "type", f"{label}.value[x]", put(at, {"url": good["url"], wrong_type[0]: wrong_type[1]})),
    ]


PAT_NHS = "identifier[0]"
VERIFY = f"{PAT_NHS}.extension[0]"
VERIFY_URL = UKCORE_SD + "Extension-UKCore-NHSNumberVerificationStatus"
SCS = "SCR-EpisodeOfCare-SocialCareService"
SPELL = "SCR-Encounter-HospitalSpell"
ADMISSION = "hospitalization.extension[0]"
DISCHARGE = "hospitalization.extension[1]"
BAD_SNOMED = "84114008"  # heart failure with a wrong Verhoeff check digit


def cases() -> list[Case]:
    c: list[Case] = []
    # ---------------------------------------------------------------- SCR-Patient
    p = "SCR-Patient"
    c += [
        Case(p, "invariant", "scr-pat-1", put("generalPractitioner[0].identifier", {"system": "urn:x", "value": "1"})),
        Case(p, "invariant", "scr-nhs-1", put(f"{PAT_NHS}.value", "9991000004")),
        Case(p, "min", "Patient.identifier", drop("identifier")),
        Case(p, "max", "Patient.identifier:nhsNumber", add("identifier", {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                                                          "value": "9434765919"})),
        Case(p, "max", "Patient.identifier:nhsNumber.extension:nhsNumberVerificationStatus", copy_item(VERIFY)),
        Case(p, "min", "Patient.identifier:nhsNumber.extension:nhsNumberVerificationStatus.value[x]",
             put(VERIFY, {"url": VERIFY_URL, "extension": [ext("http://example.org/n", valueString="y")]})),
        Case(p, "type", "Patient.identifier:nhsNumber.extension:nhsNumberVerificationStatus.value[x]",
             put(VERIFY, {"url": VERIFY_URL, "valueCoding": coding(
                 UKCORE_CS + "UKCore-NHSNumberVerificationStatusEngland", "01")})),
        Case(p, "binding", "Patient.identifier:nhsNumber.extension:nhsNumberVerificationStatus.value[x]",
             put(f"{VERIFY}.valueCodeableConcept.coding[0].code", "09")),
        Case(p, "min", "Patient.identifier:nhsNumber.value", drop(f"{PAT_NHS}.value")),
        Case(p, "min", "Patient.name", drop("name")),
        Case(p, "min", "Patient.gender", drop("gender")),
        Case(p, "min", "Patient.birthDate", drop("birthDate")),
        Case(p, "target", "Patient.generalPractitioner", put("generalPractitioner[1].reference", "Patient/other")),
    ]
    # ---------------------------------------------------------------- SCR-Practitioner
    p = "SCR-Practitioner"
    c += [
        Case(p, "min", "Practitioner.identifier", drop("identifier")),
        Case(p, "max", "Practitioner.identifier:gmcNumber", copy_item("identifier[0]")),
        Case(p, "invariant", "scr-gmc-1", put("identifier[0].value", "12345")),
        Case(p, "min", "Practitioner.identifier:gmcNumber.value",
             put("identifier[0]", {"system": "https://fhir.hl7.org.uk/Id/gmc-number", "use": "official"})),
        Case(p, "max", "Practitioner.identifier:sdsUserId", copy_item("identifier[1]")),
        Case(p, "min", "Practitioner.identifier:sdsUserId.value",
             put("identifier[1]", {"system": "https://fhir.nhs.uk/Id/sds-user-id", "use": "official"})),
        Case(p, "min", "Practitioner.name", drop("name")),
    ]
    # ---------------------------------------------------------------- SCR-PractitionerRole
    p = "SCR-PractitionerRole"
    c += [
        Case(p, "min", "PractitionerRole.practitioner", drop("practitioner")),
        Case(p, "min", "PractitionerRole.organization", drop("organization")),
        Case(p, "min", "PractitionerRole.code", drop("code")),
        Case(p, "binding", "PractitionerRole.code", put("code[0].coding[0].code", "porter")),
    ]
    # ---------------------------------------------------------------- SCR-Organization
    p = "SCR-Organization"
    c += [
        Case(p, "max", "Organization.identifier:odsCode", add("identifier", {
            "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y90002"})),
        Case(p, "invariant", "scr-ods-1", put("identifier[0].value", "y90001")),
        Case(p, "min", "Organization.identifier:odsCode.value",
             put("identifier[0]", {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "use": "official"})),
        Case(p, "min", "Organization.name", drop("name")),
    ]
    # ---------------------------------------------------------------- SCR-CareTeam
    p = "SCR-CareTeam"
    c += [
        Case(p, "min", "CareTeam.status", drop("status")),
        Case(p, "min", "CareTeam.subject", drop("subject")),
        Case(p, "target", "CareTeam.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "CareTeam.participant", drop("participant")),
        Case(p, "binding", "CareTeam.participant.role", put("participant[0].role[0].coding[0].code", "porter")),
        Case(p, "min", "CareTeam.participant.member", drop("participant[0].member")),
    ]
    # ---------------------------------------------------------------- case management episode
    p = "SCR-EpisodeOfCare-CaseManagement"
    c += [
        Case(p, "invariant", "scr-eoc-1", drop("careManager")),
        Case(p, "invariant", "scr-eoc-2", put("statusHistory[0].period", {"end": "2026-10-22"})),
        Case(p, "min", "EpisodeOfCare.type", drop("type")),
        Case(p, "max", "EpisodeOfCare.type", add("type", concept(CS + "care-programme", "integrated-care-scheme"))),
        Case(p, "fixed", "EpisodeOfCare.type", put("type[0]", concept(SNOMED, "734163000"))),
        Case(p, "binding", "EpisodeOfCare.type", put("type[0].coding[0].code", "weight-management")),
        Case(p, "min", "EpisodeOfCare.managingOrganization", drop("managingOrganization")),
        Case(p, "min", "EpisodeOfCare.period", drop("period")),
        Case(p, "min", "EpisodeOfCare.period.start", put("period", {"end": "2027-10-22"})),
    ]
    # ---------------------------------------------------------------- social care service and its extensions
    p = SCS
    c += [
        Case(p, "invariant", "scr-scs-1", put("identifier[0].system", "urn:oid:1.2.3")),
        Case(p, "invariant", "scr-scs-2", put("status", "cancelled")),
        Case(p, "invariant", "scr-scs-3", put("status", "finished")),
        Case(p, "min", "EpisodeOfCare.extension:serviceType", drop("extension[0]")),
        Case(p, "max", "EpisodeOfCare.extension:serviceType", copy_item("extension[0]")),
        Case(p, "max", "EpisodeOfCare.extension:deliveryMechanism", copy_item("extension[1]")),
        Case(p, "max", "EpisodeOfCare.extension:plannedUnitsPerWeek", copy_item("extension[2]")),
        Case(p, "max", "EpisodeOfCare.extension:weeklyCost", copy_item("extension[3]")),
        Case(p, "max", "EpisodeOfCare.extension:serviceProvider", copy_item("extension[4]")),
        Case(p, "max", "EpisodeOfCare.extension:eventOutcome", copy_item("extension[5]")),
        Case(p, "min", "EpisodeOfCare.identifier", drop("identifier")),
        Case(p, "min", "EpisodeOfCare.type", drop("type")),
        Case(p, "max", "EpisodeOfCare.type", add("type", concept(CS + "cld-service-component", "Meals"))),
        Case(p, "binding", "EpisodeOfCare.type", put("type[0].coding[0].code", "Home Help")),
        Case(p, "min", "EpisodeOfCare.managingOrganization", drop("managingOrganization")),
        Case(p, "min", "EpisodeOfCare.period", drop("period")),
        Case(p, "min", "EpisodeOfCare.period.start", put("period", {"end": "2027-03-03"})),
        # Extension-SCR-ServiceType
        *extension_cases(p, "extension[0]", "Extension-SCR-ServiceType", ext("Extension-SCR-ServiceType"),
                         ("valueCoding", coding(CS + "cld-service-type", "Long Term Support: Community"))),
        Case(p, "binding", "Extension-SCR-ServiceType Extension.value[x]",
             put("extension[0].valueCodeableConcept.coding[0].code", "Long Term Support: Holiday")),
        # Extension-SCR-DeliveryMechanism
        *extension_cases(p, "extension[1]", "Extension-SCR-DeliveryMechanism", ext("Extension-SCR-DeliveryMechanism"),
                         ("valueString", "CASSR Commissioned Support")),
        Case(p, "binding", "Extension-SCR-DeliveryMechanism Extension.value[x]",
             put("extension[1].valueCodeableConcept.coding[0].code", "Cash")),
        # Extension-SCR-PlannedUnitsPerWeek
        *extension_cases(p, "extension[2]", "Extension-SCR-PlannedUnitsPerWeek",
                         ext("Extension-SCR-PlannedUnitsPerWeek"), ("valueDecimal", 10.5)),
        Case(p, "min", "Extension-SCR-PlannedUnitsPerWeek Extension.value[x].value",
             drop("extension[2].valueQuantity.value")),
        Case(p, "min", "Extension-SCR-PlannedUnitsPerWeek Extension.value[x].system",
             drop("extension[2].valueQuantity.system")),
        Case(p, "fixed", "Extension-SCR-PlannedUnitsPerWeek Extension.value[x].system",
             put("extension[2].valueQuantity.system", "http://unitsofmeasure.org")),
        Case(p, "min", "Extension-SCR-PlannedUnitsPerWeek Extension.value[x].code",
             drop("extension[2].valueQuantity.code")),
        Case(p, "binding", "Extension-SCR-PlannedUnitsPerWeek Extension.value[x].code",
             put("extension[2].valueQuantity.code", "Fortnights")),
        # Extension-SCR-WeeklyCost
        *extension_cases(p, "extension[3]", "Extension-SCR-WeeklyCost", ext("Extension-SCR-WeeklyCost"),
                         ("valueDecimal", 241.5)),
        Case(p, "min", "Extension-SCR-WeeklyCost Extension.value[x].value", drop("extension[3].valueMoney.value")),
        Case(p, "min", "Extension-SCR-WeeklyCost Extension.value[x].currency",
             drop("extension[3].valueMoney.currency")),
        Case(p, "fixed", "Extension-SCR-WeeklyCost Extension.value[x].currency",
             put("extension[3].valueMoney.currency", "EUR")),
        # Extension-SCR-ServiceProvider
        *extension_cases(p, "extension[4]", "Extension-SCR-ServiceProvider", ext("Extension-SCR-ServiceProvider"),
                         ("valueString", "Upton Home Care Ltd")),
        Case(p, "target", "Extension-SCR-ServiceProvider Extension.value[x]",
             put("extension[4].valueReference", {"reference": "Practitioner/carer"})),
        # Extension-SCR-EventOutcome
        *extension_cases(p, "extension[5]", "Extension-SCR-EventOutcome", ext("Extension-SCR-EventOutcome"),
                         ("valueString", "Increase after fall")),
        Case(p, "binding", "Extension-SCR-EventOutcome Extension.value[x]",
             put("extension[5].valueCodeableConcept", concept(CS + "cld-event-outcome", "Package doubled"))),
    ]
    # ---------------------------------------------------------------- SCR-CarePlan
    p = "SCR-CarePlan"
    c += [
        Case(p, "invariant", "scr-cp-1", put("category[0].coding[0].code", "736271009")),
        Case(p, "invariant", "scr-cp-2", drop("activity[0].detail.scheduledTiming")),
        Case(p, "fixed", "CarePlan.intent", put("intent", "proposal")),
        Case(p, "min", "CarePlan.category", drop("category")),
        Case(p, "target", "CarePlan.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "CarePlan.period", drop("period")),
        Case(p, "min", "CarePlan.period.start", put("period", {"end": "2027-10-22"})),
        Case(p, "min", "CarePlan.author", drop("author")),
        Case(p, "target", "CarePlan.author", put("author", {"reference": "Organization/trust"})),
        Case(p, "min", "CarePlan.careTeam", drop("careTeam")),
        Case(p, "min", "CarePlan.activity.detail", put("activity[2]", {"reference": {"reference": "Task/mdt-1"}})),
        Case(p, "min", "CarePlan.activity.detail.code", drop("activity[2].detail.code")),
        Case(p, "binding", "CarePlan.activity.detail.code", put("activity[2].detail.code.coding[0].code", "party")),
    ]
    # ---------------------------------------------------------------- SCR-Condition
    p = "SCR-Condition"
    c += [
        Case(p, "invariant", "scr-con-1", put("category[0].coding[0].code", "encounter-diagnosis")),
        Case(p, "invariant", "scr-con-2", put("code", concept(ICD10, "I50.0"))),
        Case(p, "invariant", "scr-con-3", drop("clinicalStatus")),
        Case(p, "min", "Condition.category", drop("category")),
        Case(p, "min", "Condition.code", drop("code")),
        Case(p, "min", "Condition.code.coding", put("code", {"text": "Heart failure"})),
        Case(p, "binding", "Condition.code", put("code.coding[0].code", BAD_SNOMED)),
        Case(p, "target", "Condition.subject", put("subject", {"reference": "Group/frail"})),
    ]
    # ---------------------------------------------------------------- hospital spell
    p = SPELL
    c += [
        Case(p, "invariant", "scr-enc-1", both(put("period", {"start": "2026-01-12"}),
                                               drop("hospitalization.dischargeDisposition"), drop(DISCHARGE))),
        Case(p, "invariant", "scr-enc-2", both(put("status", "in-progress"), put("period", {"start": "2026-01-12"}))),
        Case(p, "min", "Encounter.identifier", drop("identifier")),
        Case(p, "fixed", "Encounter.class", put("class", coding(ACT, "AMB"))),
        Case(p, "min", "Encounter.subject", drop("subject")),
        Case(p, "target", "Encounter.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "Encounter.period", drop("period")),
        Case(p, "min", "Encounter.period.start", put("period", {"end": "2026-01-20"})),
        Case(p, "min", "Encounter.hospitalization", drop("hospitalization")),
        Case(p, "min", "Encounter.hospitalization.extension:admissionMethod", drop(ADMISSION)),
        Case(p, "max", "Encounter.hospitalization.extension:admissionMethod", copy_item(ADMISSION)),
        Case(p, "min", "Encounter.hospitalization.extension:admissionMethod.value[x]",
             put(ADMISSION, {"url": UKCORE_SD + "Extension-UKCore-AdmissionMethod",
                             "extension": [ext("http://example.org/n", valueString="y")]})),
        Case(p, "type", "Encounter.hospitalization.extension:admissionMethod.value[x]",
             put(ADMISSION, {"url": UKCORE_SD + "Extension-UKCore-AdmissionMethod", "valueString": "21"})),
        Case(p, "binding", "Encounter.hospitalization.extension:admissionMethod.value[x]",
             put(f"{ADMISSION}.valueCodeableConcept.coding[0].code", "27")),
        Case(p, "max", "Encounter.hospitalization.extension:dischargeMethod", copy_item(DISCHARGE)),
        Case(p, "min", "Encounter.hospitalization.extension:dischargeMethod.value[x]",
             put(DISCHARGE, {"url": UKCORE_SD + "Extension-UKCore-DischargeMethod",
                             "extension": [ext("http://example.org/n", valueString="y")]})),
        Case(p, "type", "Encounter.hospitalization.extension:dischargeMethod.value[x]",
             put(DISCHARGE, {"url": UKCORE_SD + "Extension-UKCore-DischargeMethod", "valueInteger": 1})),
        Case(p, "binding", "Encounter.hospitalization.extension:dischargeMethod.value[x]",
             put(f"{DISCHARGE}.valueCodeableConcept.coding[0].code", "2")),
        Case(p, "binding", "Encounter.hospitalization.admitSource",
             put("hospitalization.admitSource.coding[0].code", "20")),
        Case(p, "binding", "Encounter.hospitalization.dischargeDisposition",
             put("hospitalization.dischargeDisposition.coding[0].code", "18")),
        Case(p, "min", "Encounter.serviceProvider", drop("serviceProvider")),
    ]
    # ---------------------------------------------------------------- A&E attendance
    p = "SCR-Encounter-EmergencyAttendance"
    c += [
        Case(p, "invariant", "scr-enc-1", put("period", {"start": "2026-01-12T02:14:00Z"})),
        Case(p, "min", "Encounter.identifier", drop("identifier")),
        Case(p, "fixed", "Encounter.class", put("class", coding(ACT, "IMP"))),
        Case(p, "min", "Encounter.subject", drop("subject")),
        Case(p, "target", "Encounter.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "Encounter.period", drop("period")),
        Case(p, "min", "Encounter.period.start", put("period", {"end": "2026-01-12T07:40:00Z"})),
        Case(p, "binding", "Encounter.reasonCode", put("reasonCode[0].coding[0].code", "161898005")),
        Case(p, "binding", "Encounter.hospitalization.dischargeDisposition",
             put("hospitalization.dischargeDisposition.coding[0].code", "transferred")),
        Case(p, "min", "Encounter.serviceProvider", drop("serviceProvider")),
    ]
    # ---------------------------------------------------------------- GP contact
    p = "SCR-Encounter-GPContact"
    c += [
        Case(p, "invariant", "scr-gpc-1", put("class", coding(ACT, "AMB"))),
        Case(p, "min", "Encounter.identifier", drop("identifier")),
        Case(p, "min", "Encounter.type", drop("type")),
        Case(p, "max", "Encounter.type", add("type", concept(CS + "gp-contact-type", "telephone"))),
        Case(p, "binding", "Encounter.type", put("type[0].coding[0].code", "walk-in")),
        Case(p, "min", "Encounter.subject", drop("subject")),
        Case(p, "target", "Encounter.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "Encounter.period", drop("period")),
        Case(p, "min", "Encounter.period.start", put("period", {"end": "2026-05-02"})),
        Case(p, "min", "Encounter.serviceProvider", drop("serviceProvider")),
    ]
    # ---------------------------------------------------------------- social care event
    p = "SCR-Encounter-SocialCareEvent"
    c += [
        Case(p, "max", "Encounter.extension:eventOutcome", copy_item("extension[0]")),
        Case(p, "min", "Encounter.identifier", drop("identifier")),
        Case(p, "min", "Encounter.type", drop("type")),
        Case(p, "max", "Encounter.type", add("type", concept(CS + "cld-event-type", "Review"))),
        Case(p, "binding", "Encounter.type", put("type[0].coding[0].code", "Visit")),
        Case(p, "min", "Encounter.subject", drop("subject")),
        Case(p, "target", "Encounter.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "Encounter.period", drop("period")),
        Case(p, "min", "Encounter.period.start", put("period", {"end": "2026-02-27"})),
        *extension_cases(p, "extension[0]", "Extension-SCR-EventOutcome", ext("Extension-SCR-EventOutcome"),
                         ("valueCode", "Provision of service")),
        Case(p, "binding", "Extension-SCR-EventOutcome Extension.value[x]",
             put("extension[0].valueCodeableConcept.coding[0].code", "Went well")),
    ]
    # ---------------------------------------------------------------- RiskAssessment and its score extension
    p = "SCR-RiskAssessment"
    c += [
        Case(p, "invariant", "scr-ra-1", add("basis", {"display": "an admission somewhere"})),
        Case(p, "target", "RiskAssessment.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "RiskAssessment.occurrence[x]", drop("occurrenceDateTime")),
        Case(p, "type", "RiskAssessment.occurrence[x]",
             both(drop("occurrenceDateTime"), put("occurrencePeriod", {"start": "2026-10-21"}))),
        Case(p, "min", "RiskAssessment.method", drop("method")),
        Case(p, "binding", "RiskAssessment.method", put("method.coding[0].code", "parr-30")),
        Case(p, "min", "RiskAssessment.method.coding", put("method", {"text": "Essex rules"})),
        Case(p, "max", "RiskAssessment.method.coding", add("method.coding", coding(CS + "risk-measure", "hfrs")
                                                           | {"version": "2018"})),
        Case(p, "min", "RiskAssessment.method.coding.system", drop("method.coding[0].system")),
        Case(p, "min", "RiskAssessment.method.coding.version", drop("method.coding[0].version")),
        Case(p, "min", "RiskAssessment.method.coding.code", drop("method.coding[0].code")),
        Case(p, "min", "RiskAssessment.basis", drop("basis")),
        Case(p, "min", "RiskAssessment.prediction", drop("prediction")),
        Case(p, "max", "RiskAssessment.prediction.extension:score", copy_item("prediction[0].extension[0]")),
        Case(p, "min", "RiskAssessment.prediction.qualitativeRisk", drop("prediction[0].qualitativeRisk")),
        Case(p, "binding", "RiskAssessment.prediction.qualitativeRisk",
             put("prediction[0].qualitativeRisk.coding[0].code", "extreme")),
        *extension_cases(p, "prediction[0].extension[0]", "Extension-SCR-RiskScore", ext("Extension-SCR-RiskScore"),
                         ("valueString", "1")),
    ]
    # ---------------------------------------------------------------- SCR-Flag
    p = "SCR-Flag"
    detail = "http://hl7.org/fhir/StructureDefinition/flag-detail"
    c += [
        Case(p, "invariant", "scr-flag-1", drop("author")),
        Case(p, "max", "Flag.extension:episode", copy_item("extension[0]")),
        Case(p, "min", "Flag.extension:episode.value[x]",
             put("extension[0]", {"url": detail, "extension": [ext("http://example.org/n", valueString="y")]})),
        Case(p, "type", "Flag.extension:episode.value[x]", put("extension[0]", {"url": detail, "valueString": "x"})),
        Case(p, "target", "Flag.extension:episode.value[x]",
             put("extension[0].valueReference", {"reference": "Patient/jean"})),
        Case(p, "fixed", "Flag.code", put("code", concept(SNOMED, "160689007"))),
        Case(p, "target", "Flag.subject", put("subject", {"reference": "Location/ward-1"})),
        Case(p, "min", "Flag.period", drop("period")),
        Case(p, "min", "Flag.period.start", put("period", {"end": "2027-10-22"})),
        Case(p, "target", "Flag.author", put("author", {"reference": "Device/robot"})),
    ]
    # ---------------------------------------------------------------- SCR-Observation
    p = "SCR-Observation"
    c += [
        Case(p, "invariant", "scr-obs-1", put("code", concept(CS + "risk-measure", "efi"))),
        Case(p, "binding", "Observation.code", put("code.coding[0].code", "160689008")),
        Case(p, "min", "Observation.code.coding", put("code", {"text": "Housebound"})),
        Case(p, "min", "Observation.subject", drop("subject")),
        Case(p, "target", "Observation.subject", put("subject", {"reference": "Group/frail"})),
        Case(p, "min", "Observation.effective[x]", drop("effectiveDateTime")),
        Case(p, "type", "Observation.effective[x]",
             both(drop("effectiveDateTime"), put("effectiveInstant", "2026-03-01T10:00:00Z"))),
        Case(p, "type", "Observation.value[x]", put("valueRange", {"low": {"value": 1}})),
    ]
    # ---------------------------------------------------------------- medicines
    for p, url, value in (
        ("SCR-MedicationStatement", "Extension-UKCore-MedicationStatementLastIssueDate", ("valueString", "Oct")),
        ("SCR-MedicationRequest", "Extension-UKCore-PrescriptionType", ("valueCode", "repeat")),
    ):
        resource_type = p.removeprefix("SCR-")
        slice_name = "lastIssueDate" if "Statement" in p else "prescriptionType"
        element = f"{resource_type}.extension:{slice_name}"
        c += [
            Case(p, "invariant", "scr-med-1", put("medicationCodeableConcept", {
                "extension": [ext("http://example.org/n", valueString="y")]})),
            Case(p, "max", element, copy_item("extension[0]")),
            Case(p, "min", f"{element}.value[x]",
                 put("extension[0]", {"url": UKCORE_SD + url, "extension": [ext("http://example.org/n",
                                                                                 valueString="y")]})),
            Case(p, "type", f"{element}.value[x]", put("extension[0]", {"url": UKCORE_SD + url, value[0]: value[1]})),
            Case(p, "type", f"{resource_type}.medication[x]",
                 both(drop("medicationCodeableConcept"), put("medicationReference", {"reference": "Medication/m"}))),
            Case(p, "binding", f"{resource_type}.medication[x]",
                 put("medicationCodeableConcept", concept("https://dmd.nhs.uk", "39720311000001102"))),
            Case(p, "target", f"{resource_type}.subject", put("subject", {"reference": "Group/frail"})),
        ]
    p = "SCR-MedicationStatement"
    c += [Case(p, "min", "MedicationStatement.effective[x]", drop("effectivePeriod"))]
    p = "SCR-MedicationRequest"
    c += [
        Case(p, "invariant", "scr-mr-1", drop("extension")),
        Case(p, "binding", "MedicationRequest.extension:prescriptionType.value[x]",
             put("extension[0].valueCodeableConcept.coding[0].code", "weekly")),
        Case(p, "min", "MedicationRequest.authoredOn", drop("authoredOn")),
    ]
    return c
