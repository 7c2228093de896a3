"""Shared care record example resources: one valid instance per profile (Jean Hardy and her care), and a
care record built from the sample extracts (used by the profile tests and bench/profile_validation.py)."""

from __future__ import annotations

import copy
import csv
from datetime import datetime
from pathlib import Path
from typing import Any

B = "https://sharedcare.example.org/fhir"
SD = f"{B}/StructureDefinition/"
CS = f"{B}/CodeSystem/"
UKCORE_SD = "https://fhir.hl7.org.uk/StructureDefinition/"
UKCORE_CS = "https://fhir.hl7.org.uk/CodeSystem/"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC = "https://fhir.hl7.org.uk/Id/gmc-number"
SNOMED = "http://snomed.info/sct"
READV2 = "http://read.info/readv2"
CTV3 = "http://read.info/ctv3"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

Json = dict[str, Any]


def profiled(profile: str, resource: Json) -> Json:
    return {"resourceType": resource.pop("resourceType"), "meta": {"profile": [SD + profile]}, **resource}


def coding(system: str, code: str, display: str | None = None) -> Json:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def concept(system: str, code: str, display: str | None = None) -> Json:
    return {"coding": [coding(system, code, display)]}


def ext(name: str, **value: Any) -> Json:
    url = name if name.startswith("http") else SD + name
    return {"url": url, **value}


def examples() -> dict[str, Json]:
    """One valid instance of every profile, by profile name (Jean Hardy, 92, and her care)."""
    jean = {"reference": "Patient/jean", "display": "Jean Hardy"}
    matron = {"reference": "Practitioner/matron", "display": "Anne Matron"}
    return {
        "SCR-Patient": profiled("SCR-Patient", {
            "resourceType": "Patient",
            "identifier": [
                {"system": NHS, "value": "9991000003", "extension": [
                    ext(UKCORE_SD + "Extension-UKCore-NHSNumberVerificationStatus", valueCodeableConcept=concept(
                        UKCORE_CS + "UKCore-NHSNumberVerificationStatusEngland", "01", "Number present and verified"),
                        )]},
                {"system": f"{B}/Id/gp-patient-id/Y90001", "value": "P1001"},
            ],
            "name": [{"family": "Hardy", "given": ["Jean"]}],
            "gender": "female",
            "birthDate": "1934-03-14",
            "address": [{"line": ["1 Orchard Lane"], "city": "Upton", "postalCode": "ZZ1 1AA"}],
            "telecom": [{"system": "phone", "value": "01632 960001"}],
            "generalPractitioner": [
                {"reference": "Organization/y90001", "type": "Organization",
                 "identifier": {"system": ODS, "value": "Y90001"}},
                {"reference": "Practitioner/gp1234567"},
            ],
        }),
        "SCR-Practitioner": profiled("SCR-Practitioner", {
            "resourceType": "Practitioner",
            "identifier": [{"system": GMC, "value": "1234567"},
                           {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555123456789"}],
            "name": [{"family": "Shah", "given": ["Priya"], "prefix": ["Dr"]}],
        }),
        "SCR-PractitionerRole": profiled("SCR-PractitionerRole", {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": matron,
            "organization": {"reference": "Organization/community-trust"},
            "code": [concept(CS + "care-role", "case-manager", "Case manager")],
        }),
        "SCR-Organization": profiled("SCR-Organization", {
            "resourceType": "Organization",
            "identifier": [{"system": ODS, "value": "Y90001"}],
            "name": "Upton Surgery",
        }),
        "SCR-CareTeam": profiled("SCR-CareTeam", {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": jean,
            "participant": [
                {"role": [concept(CS + "care-role", "case-manager")], "member": matron},
                {"role": [concept(CS + "care-role", "social-worker")], "member": {"display": "A. Khan"}},
            ],
        }),
        "SCR-EpisodeOfCare-CaseManagement": profiled("SCR-EpisodeOfCare-CaseManagement", {
            "resourceType": "EpisodeOfCare",
            "status": "active",
            "statusHistory": [
                {"status": "planned", "period": {"start": "2026-10-20", "end": "2026-10-22"}},
                {"status": "active", "period": {"start": "2026-10-22"}},
            ],
            "type": [concept(CS + "care-programme", "case-management", "Integrated case management")],
            "patient": jean,
            "managingOrganization": {"reference": "Organization/community-trust"},
            "period": {"start": "2026-10-22"},
            "careManager": matron,
            "team": [{"reference": "CareTeam/jean-team"}],
        }),
        "SCR-EpisodeOfCare-SocialCareService": profiled("SCR-EpisodeOfCare-SocialCareService", {
            "resourceType": "EpisodeOfCare",
            "extension": [
                ext("Extension-SCR-ServiceType", valueCodeableConcept=concept(
                    CS + "cld-service-type", "Long Term Support: Community")),
                ext("Extension-SCR-DeliveryMechanism", valueCodeableConcept=concept(
                    CS + "cld-delivery-mechanism", "CASSR Commissioned Support")),
                ext("Extension-SCR-PlannedUnitsPerWeek", valueQuantity={
                    "value": 10.5, "unit": "Hours", "system": CS + "service-unit", "code": "Hours"}),
                ext("Extension-SCR-WeeklyCost", valueMoney={"value": 241.5, "currency": "GBP"}),
                ext("Extension-SCR-ServiceProvider", valueReference={"display": "Upton Home Care Ltd"}),
                ext("Extension-SCR-EventOutcome", valueCodeableConcept={"text": "Increase after fall"}),
            ],
            "identifier": [{"system": f"{B}/Id/swift-service-id/E0900001", "value": "SV5001"}],
            "status": "active",
            "type": [concept(CS + "cld-service-component", "Home Support")],
            "patient": jean,
            "managingOrganization": {"reference": "Organization/council-e0900001"},
            "period": {"start": "2026-03-03"},
        }),
        "SCR-CarePlan": profiled("SCR-CarePlan", {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "category": [concept(SNOMED, "734163000", "Care plan")],
            "title": "Shared care plan",
            "subject": jean,
            "period": {"start": "2026-10-22"},
            "author": matron,
            "careTeam": [{"reference": "CareTeam/jean-team"}],
            "addresses": [{"reference": "Condition/jean-heart-failure"}],
            "activity": [
                {"detail": {"code": concept(CS + "care-plan-activity", "contact-home-visit"), "status": "in-progress",
                            "scheduledTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}},
                            "performer": [matron]}},
                {"detail": {"code": concept(CS + "care-plan-activity", "review"), "status": "scheduled",
                            "scheduledPeriod": {"start": "2027-01-22"}}},
                {"detail": {"code": concept(CS + "care-plan-activity", "mdt-action"), "status": "not-started",
                            "description": "Pharmacist medication review of 12 repeat medicines"}},
                {"outcomeReference": [{"reference": "EpisodeOfCare/sv5001"}],
                 "detail": {"code": concept(CS + "care-plan-activity", "social-care-package"), "status": "in-progress",
                            "description": "Home care 10.5 hours a week"}},
            ],
        }),
        "SCR-Condition": profiled("SCR-Condition", {
            "resourceType": "Condition",
            "identifier": [{"system": f"{B}/Id/gp-entry-id/Y90001", "value": "E2"}],
            "clinicalStatus": concept(CLINICAL, "active"),
            "category": [concept(CONDITION_CATEGORY, "problem-list-item")],
            "code": {"coding": [coding(SNOMED, "84114007", "Heart failure"), coding(READV2, "G58..")],
                     "text": "Heart failure"},
            "subject": jean,
            "onsetDateTime": "2015-09-01",
        }),
        "SCR-Encounter-HospitalSpell": profiled("SCR-Encounter-HospitalSpell", {
            "resourceType": "Encounter",
            "identifier": [{"system": f"{B}/Id/hospital-spell-id/RX999", "value": "S7001"}],
            "status": "finished",
            "class": coding(ACT, "IMP", "inpatient encounter"),
            "subject": jean,
            "period": {"start": "2026-01-12", "end": "2026-01-20"},
            "diagnosis": [{"condition": {"reference": "Condition/s7001-n390"}, "rank": 1}],
            "hospitalization": {
                "extension": [
                    ext(UKCORE_SD + "Extension-UKCore-AdmissionMethod", valueCodeableConcept=concept(
                        UKCORE_CS + "UKCore-AdmissionMethodEngland", "21")),
                    ext(UKCORE_SD + "Extension-UKCore-DischargeMethod", valueCodeableConcept=concept(
                        UKCORE_CS + "UKCore-DischargeMethodEngland", "1")),
                ],
                "admitSource": concept(UKCORE_CS + "UKCore-SourceOfAdmissionEngland", "19"),
                "dischargeDisposition": concept(UKCORE_CS + "UKCore-DischargeDestinationEngland", "19"),
            },
            "serviceProvider": {"reference": "Organization/rx999", "identifier": {"system": ODS, "value": "RX999"}},
        }),
        "SCR-Encounter-EmergencyAttendance": profiled("SCR-Encounter-EmergencyAttendance", {
            "resourceType": "Encounter",
            "identifier": [{"system": f"{B}/Id/ae-attendance-id/RX999", "value": "A3001"}],
            "status": "finished",
            "class": coding(ACT, "EMER"),
            "subject": jean,
            "period": {"start": "2026-01-12T02:14:00Z", "end": "2026-01-12T07:40:00Z"},
            "reasonCode": [concept(SNOMED, "161898004", "Falls")],
            "hospitalization": {"dischargeDisposition": concept(CS + "ae-disposal", "admitted")},
            "serviceProvider": {"reference": "Organization/rx999"},
        }),
        "SCR-Encounter-GPContact": profiled("SCR-Encounter-GPContact", {
            "resourceType": "Encounter",
            "identifier": [{"system": f"{B}/Id/gp-consultation-id/Y90001", "value": "C1"}],
            "status": "finished",
            "class": coding(ACT, "HH"),
            "type": [concept(CS + "gp-contact-type", "home-visit")],
            "subject": jean,
            "participant": [{"individual": {"reference": "Practitioner/gp1234567"}}],
            "period": {"start": "2026-05-02"},
            "serviceProvider": {"reference": "Organization/y90001"},
        }),
        "SCR-Encounter-SocialCareEvent": profiled("SCR-Encounter-SocialCareEvent", {
            "resourceType": "Encounter",
            "extension": [ext("Extension-SCR-EventOutcome", valueCodeableConcept=concept(
                CS + "cld-event-outcome", "Support Planning / Services"))],
            "identifier": [{"system": f"{B}/Id/swift-event-id/E0900001", "value": "EV9001"}],
            "status": "finished",
            "class": coding(ACT, "HH"),
            "type": [concept(CS + "cld-event-type", "Assessment")],
            "subject": jean,
            "participant": [{"individual": {"display": "A. Khan"}}],
            "period": {"start": "2026-02-20", "end": "2026-02-27"},
            "serviceProvider": {"display": "Upton Adult Social Care"},
        }),
        "SCR-RiskAssessment": profiled("SCR-RiskAssessment", {
            "resourceType": "RiskAssessment",
            "status": "final",
            "method": {"coding": [coding(CS + "case-finding-rule-set", "essex-frail-elderly") | {"version": "2005.1"}]},
            "subject": jean,
            "occurrenceDateTime": "2026-10-21T09:00:00Z",
            "basis": [{"reference": "Encounter/s7001"}, {"reference": "Encounter/s7003"}],
            "prediction": [{
                "extension": [ext("Extension-SCR-RiskScore", valueDecimal=1)],
                "qualitativeRisk": concept(CS + "risk-tier", "very-high"),
                "rationale": "Admission for dehydration (E86) in the last 12 months, aged 65 and over",
            }],
        }),
        "SCR-Flag": profiled("SCR-Flag", {
            "resourceType": "Flag",
            "extension": [ext("http://hl7.org/fhir/StructureDefinition/flag-detail",
                              valueReference={"reference": "EpisodeOfCare/jean-case-management"})],
            "status": "active",
            "code": {"coding": [coding(CS + "care-alert", "case-managed", "Case-managed")],
                     "text": "Case-managed: contact Anne Matron"},
            "subject": jean,
            "period": {"start": "2026-10-22"},
            "author": matron,
        }),
        "SCR-Observation": profiled("SCR-Observation", {
            "resourceType": "Observation",
            "identifier": [{"system": f"{B}/Id/gp-entry-id/Y90001", "value": "E6"}],
            "status": "final",
            "code": concept(SNOMED, "160689007", "Housebound"),
            "subject": jean,
            "effectiveDateTime": "2026-03-01",
        }),
        "SCR-MedicationStatement": profiled("SCR-MedicationStatement", {
            "resourceType": "MedicationStatement",
            "extension": [ext(UKCORE_SD + "Extension-UKCore-MedicationStatementLastIssueDate",
                              valueDateTime="2026-10-02")],
            "basedOn": [{"reference": "MedicationRequest/m1"}],
            "status": "active",
            "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
            "subject": jean,
            "effectivePeriod": {"start": "2025-01-02"},
        }),
        "SCR-MedicationRequest": profiled("SCR-MedicationRequest", {
            "resourceType": "MedicationRequest",
            "extension": [ext(UKCORE_SD + "Extension-UKCore-PrescriptionType", valueCodeableConcept=concept(
                UKCORE_CS + "UKCore-PrescriptionType", "repeat", "Repeat"))],
            "identifier": [{"system": f"{B}/Id/gp-medication-id/Y90001", "value": "M1"}],
            "status": "active",
            "intent": "plan",
            "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
            "subject": jean,
            "authoredOn": "2025-01-02",
            "dosageInstruction": [{"text": "As directed"}],
            "dispenseRequest": {"quantity": {"value": 56, "unit": "tablet"}},
        }),
    }


def more_examples() -> list[tuple[str, Json]]:
    """Further valid variants (hospital diagnosis, eFI score, social care facts, dm+d coded medicine)."""
    jean = {"reference": "Patient/jean"}
    return [
        ("SCR-Condition", profiled("SCR-Condition", {
            "resourceType": "Condition",
            "category": [concept(CONDITION_CATEGORY, "encounter-diagnosis")],
            "code": concept(ICD10, "N39.0", "Urinary tract infection, site not specified"),
            "subject": jean, "encounter": {"reference": "Encounter/s7001"}})),
        ("SCR-Observation", profiled("SCR-Observation", {
            "resourceType": "Observation", "status": "final",
            "code": concept(CS + "risk-measure", "efi", "Electronic Frailty Index"),
            "subject": jean, "effectiveDateTime": "2026-10-01",
            "valueQuantity": {"value": 0.33, "unit": "score", "system": "http://unitsofmeasure.org", "code": "1"}})),
        ("SCR-Observation", profiled("SCR-Observation", {
            "resourceType": "Observation", "status": "final",
            "category": [concept(OBS_CATEGORY, "social-history")],
            "code": concept(CS + "social-care-observation", "accommodation-status"),
            "subject": jean, "effectiveDateTime": "2026-10-31",
            "valueCodeableConcept": {"coding": [coding(CS + "cld-accommodation-status", "Registered nursing home"),
                                                coding(SNOMED, "160734000", "Lives in a nursing home")]}})),
        ("SCR-MedicationStatement", profiled("SCR-MedicationStatement", {
            "resourceType": "MedicationStatement", "status": "active",
            "medicationCodeableConcept": concept("https://dmd.nhs.uk", "39720311000001101"),
            "subject": jean, "effectiveDateTime": "2026-01-01"})),
    ]


# ------------------------------------------------------------------------------------ sample extracts


def uk_date(text: str) -> str:
    return datetime.strptime(text, "%d/%m/%Y").strftime("%Y-%m-%d")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def icd10(hes: str) -> str:
    """HES 4-character ICD-10 to the dotted WHO form (N390 -> N39.0, R11X -> R11, S7200 -> S72.00)."""
    head, tail = hes[:3], hes[3:].rstrip("X")
    return f"{head}.{tail}" if tail else head


def care_record(extracts: Path) -> list[Json]:
    """SCR resources for the sample people, built from the sample GP, SWIFT and hospital extracts."""
    gp = next((extracts / "gp").iterdir())
    gp_month = next(gp.iterdir())
    council = next((extracts / "swift").iterdir())
    swift = next(council.iterdir())
    trust = next((extracts / "hospital").iterdir())
    hospital = next(trust.iterdir())
    practice, council_code, provider = gp.name, council.name, trust.name
    out: list[Json] = [
        profiled("SCR-Organization", {"resourceType": "Organization", "id": practice.lower(), "name": practice,
                                      "identifier": [{"system": ODS, "value": practice}]}),
        profiled("SCR-Organization", {"resourceType": "Organization", "id": provider.lower(), "name": provider,
                                      "identifier": [{"system": ODS, "value": provider}]}),
    ]
    sex = {"M": "male", "F": "female", "I": "other", "U": "unknown"}
    gmcs = set()
    for row in rows(gp_month / "patients.csv"):
        gmcs.add(row["usual_gp_gmc"])
        out.append(profiled("SCR-Patient", {
            "resourceType": "Patient", "id": f"p{row['nhs_number']}",
            "identifier": [{"system": NHS, "value": row["nhs_number"]},
                           {"system": f"{B}/Id/gp-patient-id/{practice}", "value": row["gp_patient_id"]}],
            "name": [{"family": row["family_name"], "given": [row["given_name"]]}],
            "gender": sex[row["sex"]], "birthDate": row["date_of_birth"],
            "address": [{"text": row["address_line"], "postalCode": row["postcode"]}],
            "generalPractitioner": [{"reference": f"Organization/{practice.lower()}", "type": "Organization",
                                     "identifier": {"system": ODS, "value": practice}}],
        }))
    for row in rows(gp_month / "consultations.csv"):
        gmcs.add(row["clinician_gmc"])
        kind = row["type"]
        out.append(profiled("SCR-Encounter-GPContact", {
            "resourceType": "Encounter", "status": "finished",
            "identifier": [{"system": f"{B}/Id/gp-consultation-id/{practice}", "value": row["consultation_id"]}],
            "class": coding(ACT, {"surgery": "AMB", "home-visit": "HH"}.get(kind, "VR")),
            "type": [concept(CS + "gp-contact-type", kind)],
            "subject": {"reference": f"Patient/p{row['nhs_number']}"},
            "participant": [{"individual": {"reference": f"Practitioner/gmc{row['clinician_gmc']}"}}],
            "period": {"start": row["date"]}, "serviceProvider": {"reference": f"Organization/{practice.lower()}"},
        }))
    for gmc in sorted(g for g in gmcs if g):
        out.append(profiled("SCR-Practitioner", {"resourceType": "Practitioner", "id": f"gmc{gmc}",
                                                 "identifier": [{"system": GMC, "value": gmc}],
                                                 "name": [{"text": f"GP {gmc}"}]}))
    systems = {"SNOMED": SNOMED, "READV2": READV2, "CTV3": CTV3}
    for row in rows(gp_month / "coded_entries.csv"):
        code = concept(systems[row["code_system"]], row["code"], row["term"])
        common = {"identifier": [{"system": f"{B}/Id/gp-entry-id/{practice}", "value": row["entry_id"]}],
                  "subject": {"reference": f"Patient/p{row['nhs_number']}"}}
        if row["entry_type"] == "problem":
            status = {"past": "inactive", "resolved": "resolved"}.get(row["status"], "active")
            out.append(profiled("SCR-Condition", {
                "resourceType": "Condition", **common, "clinicalStatus": concept(CLINICAL, status),
                "category": [concept(CONDITION_CATEGORY, "problem-list-item")], "code": code,
                "onsetDateTime": row["effective_date"]}))
        else:
            out.append(profiled("SCR-Observation", {
                "resourceType": "Observation", **common, "status": "final", "code": code,
                "effectiveDateTime": row["effective_date"]}))
    for row in rows(gp_month / "medications.csv"):
        subject = {"reference": f"Patient/p{row['nhs_number']}"}
        medicine = {"text": row["drug_name"]}
        ended = row["status"] != "active"
        out.append(profiled("SCR-MedicationRequest", {
            "resourceType": "MedicationRequest", "id": f"m-{row['entry_id'].lower()}",
            "extension": [ext(UKCORE_SD + "Extension-UKCore-PrescriptionType", valueCodeableConcept=concept(
                UKCORE_CS + "UKCore-PrescriptionType", row["prescription_type"]))],
            "identifier": [{"system": f"{B}/Id/gp-medication-id/{practice}", "value": row["entry_id"]}],
            "status": {"active": "active", "ended": "completed"}.get(row["status"], "cancelled"),
            "intent": "plan", "medicationCodeableConcept": medicine, "subject": subject,
            "authoredOn": row["authorised_date"], "dosageInstruction": [{"text": row["dosage"]}],
            "dispenseRequest": {"quantity": {"value": float(row["quantity"]), "unit": row["quantity_unit"]}},
        }))
        period = {"start": row["authorised_date"], **({"end": row["end_date"]} if row["end_date"] else {})}
        out.append(profiled("SCR-MedicationStatement", {
            "resourceType": "MedicationStatement",
            "extension": [ext(UKCORE_SD + "Extension-UKCore-MedicationStatementLastIssueDate",
                              valueDateTime=row["last_issue_date"])],
            "basedOn": [{"reference": f"MedicationRequest/m-{row['entry_id'].lower()}"}],
            "status": "completed" if ended else "active", "medicationCodeableConcept": medicine,
            "subject": subject, "effectivePeriod": period,
        }))
    people = {row["Person_ID"]: row for row in rows(swift / "clients.csv")}
    for row in people.values():
        identifiers = [{"system": f"{B}/Id/swift-person-id/{council_code}", "value": row["Person_ID"]}]
        nhs = row["NHS_Number"].replace(" ", "")
        if nhs:
            identifiers.insert(0, {"system": NHS, "value": nhs})
        out.append(profiled("SCR-Patient", {
            "resourceType": "Patient", "id": f"swift-{row['Person_ID']}", "identifier": identifiers,
            "name": [{"family": row["Family_Name"], "given": [row["Given_Name"]]}],
            "gender": row["Gender"].lower(), "birthDate": uk_date(row["Date_Of_Birth"])}))
        if row["Accommodation_Status"]:
            value = [coding(CS + "cld-accommodation-status", row["Accommodation_Status"])]
            finding = {"Registered nursing home": "160734000", "Registered care home": "394923006"}
            if row["Accommodation_Status"] in finding:
                value.append(coding(SNOMED, finding[row["Accommodation_Status"]]))
            out.append(profiled("SCR-Observation", {
                "resourceType": "Observation", "status": "final", "category": [concept(OBS_CATEGORY, "social-history")],
                "code": concept(CS + "social-care-observation", "accommodation-status"),
                "subject": {"reference": f"Patient/swift-{row['Person_ID']}"},
                "effectiveDateTime": swift.name,
                "valueCodeableConcept": {"coding": value}}))
    statuses = {"Active": "active", "Suspended": "onhold", "Ended": "finished"}
    for row in rows(swift / "services.csv"):
        extensions = [ext("Extension-SCR-ServiceType", valueCodeableConcept=concept(
            CS + "cld-service-type", row["Service_Type"]))]
        if row["Delivery_Mechanism"]:
            extensions.append(ext("Extension-SCR-DeliveryMechanism", valueCodeableConcept=concept(
                CS + "cld-delivery-mechanism", row["Delivery_Mechanism"])))
        if row["Planned_Units_Per_Week"]:
            extensions.append(ext("Extension-SCR-PlannedUnitsPerWeek", valueQuantity={
                "value": float(row["Planned_Units_Per_Week"]), "unit": row["Unit_Type"],
                "system": CS + "service-unit", "code": row["Unit_Type"]}))
        if row["Weekly_Cost"]:
            extensions.append(ext("Extension-SCR-WeeklyCost",
                                  valueMoney={"value": float(row["Weekly_Cost"]), "currency": "GBP"}))
        if row["Provider_Name"]:
            extensions.append(ext("Extension-SCR-ServiceProvider", valueReference={"display": row["Provider_Name"]}))
        if row["Reason_For_Change"]:
            extensions.append(ext("Extension-SCR-EventOutcome",
                                  valueCodeableConcept={"text": row["Reason_For_Change"]}))
        period = {"start": uk_date(row["Service_Start_Date"])}
        if row["Service_End_Date"]:
            period["end"] = uk_date(row["Service_End_Date"])
        out.append(profiled("SCR-EpisodeOfCare-SocialCareService", {
            "resourceType": "EpisodeOfCare", "extension": extensions,
            "identifier": [{"system": f"{B}/Id/swift-service-id/{council_code}", "value": row["Service_ID"]}],
            "status": statuses[row["Status"]],
            "type": [concept(CS + "cld-service-component", row["Service_Component"])],
            "patient": {"reference": f"Patient/swift-{row['Person_ID']}"},
            "managingOrganization": {"display": f"Council {council_code}"}, "period": period}))
    for row in rows(swift / "events.csv"):
        period = {"start": uk_date(row["Event_Start_Date"])}
        if row["Event_End_Date"]:
            period["end"] = uk_date(row["Event_End_Date"])
        out.append(profiled("SCR-Encounter-SocialCareEvent", {
            "resourceType": "Encounter",
            "extension": [ext("Extension-SCR-EventOutcome", valueCodeableConcept=concept(
                CS + "cld-event-outcome", row["Event_Outcome"]))] if row["Event_Outcome"] else [],
            "identifier": [{"system": f"{B}/Id/swift-event-id/{council_code}", "value": row["Event_ID"]}],
            "status": "finished" if row["Event_End_Date"] else "in-progress", "class": coding(ACT, "HH"),
            "type": [concept(CS + "cld-event-type", row["Event_Type"])],
            "subject": {"reference": f"Patient/swift-{row['Person_ID']}"},
            "participant": [{"individual": {"display": row["Worker_Name"]}}], "period": period}))
    for row in rows(hospital / "admissions.csv"):
        subject = {"reference": f"Patient/p{row['NHS_NUMBER']}"}
        spell = f"spell-{row['SPELL_ID'].lower()}"
        method = concept(UKCORE_CS + "UKCore-AdmissionMethodEngland", row["ADMIMETH"])
        hospitalization: Json = {"extension": [ext(UKCORE_SD + "Extension-UKCore-AdmissionMethod",
                                                   valueCodeableConcept=method)]}
        if row["ADMISORC"]:
            hospitalization["admitSource"] = concept(UKCORE_CS + "UKCore-SourceOfAdmissionEngland", row["ADMISORC"])
        if row["DISDATE"]:
            hospitalization["extension"].append(ext(UKCORE_SD + "Extension-UKCore-DischargeMethod",
                                                    valueCodeableConcept=concept(
                                                        UKCORE_CS + "UKCore-DischargeMethodEngland", row["DISMETH"])))
            hospitalization["dischargeDisposition"] = concept(UKCORE_CS + "UKCore-DischargeDestinationEngland",
                                                              row["DISDEST"])
        diagnoses = [row[f"DIAG_4_{n:02d}"] for n in range(1, 21) if row.get(f"DIAG_4_{n:02d}")]
        out.append(profiled("SCR-Encounter-HospitalSpell", {
            "resourceType": "Encounter", "id": spell,
            "identifier": [{"system": f"{B}/Id/hospital-spell-id/{provider}", "value": row["SPELL_ID"]}],
            "status": "finished" if row["DISDATE"] else "in-progress", "class": coding(ACT, "IMP"),
            "subject": subject,
            "period": {"start": row["ADMIDATE"], **({"end": row["DISDATE"]} if row["DISDATE"] else {})},
            "diagnosis": [{"condition": {"reference": f"Condition/{spell}-{rank}"}, "rank": rank}
                          for rank in range(1, len(diagnoses) + 1)],
            "hospitalization": hospitalization,
            "serviceProvider": {"reference": f"Organization/{provider.lower()}"}}))
        for rank, code in enumerate(diagnoses, start=1):
            out.append(profiled("SCR-Condition", {
                "resourceType": "Condition", "id": f"{spell}-{rank}",
                "category": [concept(CONDITION_CATEGORY, "encounter-diagnosis")],
                "code": concept(ICD10, icd10(code)), "subject": subject,
                "encounter": {"reference": f"Encounter/{spell}"}, "recordedDate": row["ADMIDATE"]}))
    for row in rows(hospital / "ae_attendances.csv"):
        period = {"start": row["ARRIVAL_DATETIME"] + ":00Z"}
        if row["DEPARTURE_DATETIME"]:
            period["end"] = row["DEPARTURE_DATETIME"] + ":00Z"
        attendance: Json = {
            "resourceType": "Encounter",
            "identifier": [{"system": f"{B}/Id/ae-attendance-id/{provider}", "value": row["ATTENDANCE_ID"]}],
            "status": "finished" if row["DEPARTURE_DATETIME"] else "in-progress", "class": coding(ACT, "EMER"),
            "subject": {"reference": f"Patient/p{row['NHS_NUMBER']}"}, "period": period,
            "serviceProvider": {"reference": f"Organization/{provider.lower()}"}}
        if row["DISPOSAL"]:
            attendance["hospitalization"] = {"dischargeDisposition": concept(CS + "ae-disposal", row["DISPOSAL"])}
        out.append(profiled("SCR-Encounter-EmergencyAttendance", attendance))
    for resource in out:
        if resource.get("extension") == []:
            del resource["extension"]
    return out


def all_valid() -> list[tuple[str, Json]]:
    return [(name, copy.deepcopy(resource)) for name, resource in examples().items()] + more_examples()


def referenced_examples() -> list[Json]:
    """What the profile examples refer to (Patient/jean, Practitioner/matron, Encounter/s7001...), each the
    example of its type under the referenced id, so that the examples can be stored where references
    must resolve. They refer only to each other: a transaction of PUTs stores them all at once."""
    found = examples()
    by_type: dict[str, Json] = {}
    for resource in found.values():
        by_type.setdefault(resource["resourceType"], resource)
    targets = sorted({value for resource in found.values() for value in reference_strings(resource)})
    out = []
    for target in targets:
        resource_type, resource_id = target.split("/")
        out.append({**copy.deepcopy(by_type[resource_type]), "id": resource_id})
    return out


def reference_strings(resource: Any) -> list[str]:
    if isinstance(resource, dict):
        own = [resource["reference"]] if isinstance(resource.get("reference"), str) else []
        return own + [found for value in resource.values() for found in reference_strings(value)]
    if isinstance(resource, list):
        return [found for value in resource for found in reference_strings(value)]
    return []
