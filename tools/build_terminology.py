"""Generate the project's terminology files in profiles/terminology/ from the tables in this file.

Run by hand when a code list changes (the server never runs it):

    .venv/bin/python tools/build_terminology.py

Outputs (one resource a file, deterministic): CodeSystem-<name>.json, ValueSet-<name>.json and
ConceptMap-<name>.json. Project resources carry the default project base; the server rewrites it to
PROJECT_BASE_URI when it loads them. UK Core code systems keep their real canonical URLs; their codes
and displays are those of the NHS Data Dictionary (as copied into UK Core).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASE = "https://sharedcare.example.org/fhir"
UKCORE_CS = "https://fhir.hl7.org.uk/CodeSystem/"
OUT = Path(__file__).resolve().parents[1] / "profiles" / "terminology"
VERSION = "0.1.0"
DATE = "2026-11-23"
PUBLISHER = "Shared care record project"
SNOMED = "http://snomed.info/sct"
READV2 = "http://read.info/readv2"
CTV3 = "http://read.info/ctv3"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
DMD = "https://dmd.nhs.uk"
GENDER = "http://hl7.org/fhir/administrative-gender"

Json = dict[str, Any]
Concept = tuple[str, str] | tuple[str, str, str]  # code, display[, definition]

# --------------------------------------------------------------------------- CLD (verbatim values)

CLD_NOTE = (" Codes are the Adult Social Care Client Level Data (CLD) values verbatim, as the SWIFT extract "
            "writes them; content is a fragment because the national list may hold values not listed here.")

CLD: dict[str, tuple[str, str, str, list[str]]] = {
    "cld-service-type": ("CldServiceType", "CLD service type", "fragment", [
        "Long Term Support: Nursing Care",
        "Long Term Support: Residential Care",
        "Long Term Support: Community",
        "Long Term Support: Prison",
        "Short Term Support: ST-Max",
        "Short Term Support: Ongoing Low Level",
        "Short Term Support: Other Short Term",
        "Carer Support: Direct to Carer",
        "Carer Support: Support involving the person cared-for",
    ]),
    "cld-service-component": ("CldServiceComponent", "CLD service component", "fragment", [
        "Reablement",
        "Short Term Nursing Care",
        "Long Term Nursing Care",
        "Short Term Residential Care",
        "Long Term Residential Care",
        "Home Support",
        "Day Support",
        "Meals",
        "Transport",
        "Equipment",
        "Direct Payment",
        "Shared Lives",
        "Community Supported Living",
        "Professional Support",
        "End of Life Care",
    ]),
    "cld-delivery-mechanism": ("CldDeliveryMechanism", "CLD delivery mechanism", "fragment", [
        "Direct Payment",
        "CASSR Managed Personal Budget",
        "CASSR Commissioned Support",
    ]),
    "cld-primary-support-reason": ("CldPrimarySupportReason", "CLD primary support reason", "fragment", [
        "Physical Support: Access & mobility only",
        "Physical Support: Personal care support",
        "Sensory Support: Support for visual impairment",
        "Sensory Support: Support for hearing impairment",
        "Sensory Support: Support for dual impairment",
        "Support with Memory & Cognition",
        "Learning Disability Support",
        "Mental Health Support",
        "Social Support: Substance misuse support",
        "Social Support: Asylum seeker support",
        "Social Support: Social Isolation/Other",
        "Social Support: Support to Carer",
    ]),
    "cld-accommodation-status": ("CldAccommodationStatus", "CLD accommodation status", "fragment", [
        "Owner occupier or shared ownership scheme",
        "Tenant - local authority/arms length management organisation/registered social landlord/"
        "housing association",
        "Tenant - private landlord",
        "Settled mainstream housing with family / friends",
        "Supported accommodation / supported lodgings / supported group home",
        "Shared Lives scheme",
        "Approved premises for offenders released from prison or under probation supervision",
        "Sheltered housing / extra care housing / other sheltered housing",
        "Mobile accommodation for Gypsy / Roma and Traveller communities",
        "Rough sleeper / squatting",
        "Night shelter / emergency hostel / direct access hostel",
        "Refuge",
        "Placed in temporary accommodation by the council (inc. homelessness resettlement)",
        "Staying with family / friends as a short-term guest",
        "Acute / long-term healthcare residential facility or hospital",
        "Registered care home",
        "Registered nursing home",
        "Prison / Young offenders institution / detention centre",
        "Other temporary accommodation",
        "Unknown",
    ]),
    "cld-event-type": ("CldEventType", "CLD event type", "complete", [
        "Request", "Assessment", "Service", "Review",
    ]),
    "cld-event-outcome": ("CldEventOutcome", "CLD event outcome", "fragment", [
        "Progress to Reablement/ST-Max",
        "Progress to Assessment",
        "Support Planning / Services",
        "Provision of service",
        "No change in package",
        "Service Ended as Planned",
        "Admitted to hospital",
        "Progress to End of Life Care",
        "NFA - Deceased",
        "NFA - Moved to another LA",
        "NFA - 100% NHS funded care",
        "NFA - Self-funded client (Inc. 12wk disregard)",
        "NFA - Information & Advice / Signposting only",
        "NFA - Support declined",
        "NFA - No services provided - other reason",
    ]),
}

# --------------------------------------------------------------------------- project code systems

PROJECT: dict[str, tuple[str, str, str, list[Concept]]] = {
    "service-unit": ("ServiceUnit", "Units of a planned social care service",
                     "The Unit_Type values of the SWIFT extract (codes verbatim).", [
                         ("Hours", "Hours"), ("Days", "Days"), ("Nights", "Nights"),
                         ("Sessions", "Sessions"), ("Meals", "Meals"), ("Weeks", "Weeks"),
                     ]),
    "gp-sex": ("GpSex", "GP extract sex", "The sex column of the GP practice extract.", [
        ("M", "Male"), ("F", "Female"), ("I", "Indeterminate"), ("U", "Unknown"),
    ]),
    "gp-contact-type": ("GpContactType", "GP contact type", "The type column of the GP consultations extract.", [
        ("surgery", "Surgery consultation"), ("home-visit", "Home visit"),
        ("telephone", "Telephone consultation"), ("video", "Video consultation"),
    ]),
    "ae-disposal": ("AeDisposal", "A&E attendance disposal",
                    "The DISPOSAL column of the hospital A&E attendances extract.", [
                        ("admitted", "Admitted"), ("discharged", "Discharged"), ("referred", "Referred"),
                        ("died", "Died"), ("left", "Left before being seen or treated"),
                    ]),
    "care-programme": ("CareProgramme", "Care programme",
                       "The programmes a person is enrolled in (EpisodeOfCare.type). No reliable SNOMED CT "
                       "concept exists for case management, so the project defines these.", [
                           ("case-management", "Integrated case management",
                            "Integrated case management of long-term conditions by a named case manager."),
                           ("case-management-intensive", "Intensive case management",
                            "Time-limited intensive support from referral (e.g. up to 12 weeks), then discharge."),
                           ("integrated-care-scheme", "Integrated care scheme",
                            "Care coordination with formal reviews at 3 and 6 months and discharge from the "
                            "programme at 12 months, the plan then reviewed in primary care."),
                       ]),
    "care-alert": ("CareAlert", "Care record alert", "Codes of the alerts (Flag.code) the shared record raises.", [
        ("case-managed", "Case-managed",
         "The person is enrolled in case management: contact the named case manager."),
    ]),
    "care-task": ("CareTask", "Care task", "Codes of the Tasks the case-management programme raises (Task.code).", [
        ("screen-for-case-management", "Screen for case management",
         "The patient newly meets a case-finding criterion or was found by case finding: decide on enrolment."),
        ("assessment", "Assessment", "The case manager's first assessment of an enrolled patient."),
        ("admission-alert", "Admission alert", "A case-managed patient has been admitted to hospital."),
        ("stratification-run", "Stratification run", "A whole-population risk stratification run."),
    ]),
    "care-screening-decision": ("CareScreeningDecision", "Care screening decision",
                                "The outcome of screening for case management (Task.businessStatus).", [
        ("accepted", "Accepted", "The patient is to be enrolled."),
        ("declined", "Declined", "The patient is not to be enrolled (declined by the patient or the team)."),
    ]),
    "care-outcome": ("CareOutcome", "Care outcome measure",
                     "The groups of the case-management outcomes MeasureReport ($outcomes).", [
        ("actively-case-managed", "Patients actively case-managed in the period"),
        *[(f"{measure}-{when}", f"{label} in the 12 months {when} enrolment")
          for measure, label in (("emergency-admissions", "Emergency admissions"),
                                 ("emergency-bed-days", "Emergency bed days"),
                                 ("ae-attendances", "A&E attendances"),
                                 ("social-care-hours", "Social care hours"),
                                 ("social-care-cost", "Social care cost"))
          for when in ("before", "after")],
        ("caseload", "Caseload per case manager at the end of the period (mean)"),
        ("days-to-assessment", "Days from identification to assessment (mean)"),
    ]),
    "care-role": ("CareRole", "Care role", "Roles of the people who hold and deliver the care plan.", [
        ("case-manager", "Case manager"), ("care-coordinator", "Care coordinator"),
        ("community-matron", "Community matron"), ("social-worker", "Social worker"),
        ("gp", "General practitioner"), ("district-nurse", "District nurse"),
        ("pharmacist", "Pharmacist"), ("therapist", "Therapist"),
    ]),
    "care-plan-activity": ("CarePlanActivity", "Care plan activity",
                           "Kinds of activity in the single shared care plan (CarePlan.activity.detail.code).", [
                               ("contact-home-visit", "Contact: home visit"),
                               ("contact-telephone", "Contact: telephone call"),
                               ("contact-video", "Contact: video call"),
                               ("contact-clinic", "Contact: clinic appointment"),
                               ("review", "Care plan review"),
                               ("mdt-action", "Multidisciplinary team action"),
                               ("social-care-package", "Package of care arranged through social services"),
                               ("medication-review", "Medication review"),
                           ]),
    "case-finding-rule-set": ("CaseFindingRuleSet", "Case-finding rule set",
                              "Named case-finding rule sets; the version is carried in Coding.version.", [
                                  ("essex-frail-elderly", "Essex frail elderly case finding (2005)"),
                                  ("rutland-integrated-care", "Rutland integrated care (2014)"),
                                  ("castlefields", "Castlefields case finding"),
                                  ("evercare", "Evercare case finding"),
                              ]),
    "risk-measure": ("RiskMeasure", "Risk measure", "Openly published risk and frailty measures.", [
        ("hfrs", "Hospital Frailty Risk Score", "Gilbert et al., Lancet 2018."),
        ("efi", "Electronic Frailty Index", "Clegg et al., Age Ageing 2016."),
    ]),
    "risk-tier": ("RiskTier", "Risk tier", "Qualitative tiers of a risk prediction.", [
        ("very-high", "Very high risk"), ("high", "High risk"), ("moderate", "Moderate risk"),
        ("low", "Low risk"),
        ("efi-fit", "eFI: fit", "electronic Frailty Index score up to 0.12."),
        ("efi-mild", "eFI: mild frailty", "electronic Frailty Index score above 0.12, up to 0.24."),
        ("efi-moderate", "eFI: moderate frailty", "electronic Frailty Index score above 0.24, up to 0.36."),
        ("efi-severe", "eFI: severe frailty", "electronic Frailty Index score above 0.36."),
        ("hfrs-low", "HFRS: low risk", "Hospital Frailty Risk Score below 5."),
        ("hfrs-intermediate", "HFRS: intermediate risk", "Hospital Frailty Risk Score 5 to 15."),
        ("hfrs-high", "HFRS: high risk", "Hospital Frailty Risk Score above 15."),
    ]),
    "social-care-observation": ("SocialCareObservation", "Social care observation",
                                "Observation codes for the facts a social care client record holds.", [
                                    ("accommodation-status", "Accommodation status"),
                                    ("primary-support-reason", "Primary support reason"),
                                    ("unpaid-carer", "Has an unpaid carer"),
                                ]),
}

# --------------------------------------------------------------------------- UK Core code systems

UKCORE: dict[str, tuple[str, str, str, str, list[Concept]]] = {
    "UKCore-AdmissionMethodEngland": (
        "UK Core Admission Method England", "1.0.0", "active",
        "The method of admission to a hospital provider spell (NHS Data Dictionary).", [
            ("11", "Elective Admission: Waiting list"),
            ("12", "Elective Admission: Booked"),
            ("13", "Elective Admission: Planned"),
            ("21", "Emergency Admission: Emergency Care Department or dental casualty department of the Health "
                   "Care Provider"),
            ("22", "Emergency Admission: General Practitioner: after a request for immediate admission has been "
                   "made direct to a Hospital Provider, i.e. not through a Bed bureau, by a General Practitioner "
                   "or deputy"),
            ("23", "Emergency Admission: Bed bureau"),
            ("24", "Emergency Admission: Consultant Clinic, of this or another Health Care Provider"),
            ("25", "Emergency Admission: Admission via Mental Health Crisis Resolution Team"),
            ("2A", "Emergency Admission: Emergency Care Department of another provider where the Patient had not "
                   "been admitted"),
            ("2B", "Emergency Admission: Transfer of an admitted Patient from another Hospital Provider in an "
                   "emergency"),
            ("2C", "Emergency Admission: Baby born at home as intended"),
            ("2D", "Emergency Admission: Other emergency admission"),
            ("28", "Emergency Admission: Other means"),
            ("31", "Maternity Admission: Admitted ante partum"),
            ("32", "Maternity Admission: Admitted post partum"),
            ("81", "Other Admission: Transfer of any admitted Patient from other Hospital Provider other than in "
                   "an emergency"),
            ("82", "Other Admission: The birth of a baby in this Health Care Provider"),
            ("83", "Other Admission: Baby born outside the Health Care Provider except when born at home as "
                   "intended"),
            ("98", "Not applicable"),
            ("99", "Admission Method not known"),
        ]),
    "UKCore-SourceOfAdmissionEngland": (
        "UK Core Source Of Admission England", "1.0.0", "active",
        "The source of admission to a hospital provider spell (NHS Data Dictionary).", [
            ("19", "Usual place of residence"),
            ("29", "Temporary place of residence when usually resident elsewhere"),
            ("39", "Penal establishment, Court, or Police Station / Police Custody Suite"),
            ("49", "NHS other Hospital Provider - high security psychiatric accommodation"),
            ("51", "NHS other Hospital Provider - Ward for general Patients or the younger physically disabled or "
                   "Emergency Care Department"),
            ("52", "NHS other Hospital Provider - Ward for maternity Patients or Neonates"),
            ("53", "NHS other Hospital Provider - Ward for Patients who are mentally ill or have Learning "
                   "Disabilities"),
            ("54", "NHS run Care Home"),
            ("65", "Local Authority residential accommodation i.e. where care is provided"),
            ("66", "Local Authority foster care"),
            ("79", "Babies born in or on the way to hospital"),
            ("85", "Non-NHS (other than Local Authority) run Care Home"),
            ("87", "Non NHS run hospital"),
            ("88", "Non-NHS (other than Local Authority) run Hospice"),
            ("98", "Not applicable"),
            ("99", "Source of admission not known"),
        ]),
    "UKCore-DischargeMethodEngland": (
        "UK Core Discharge Method England", "1.0.0", "active",
        "The method of discharge from a hospital provider spell (NHS Data Dictionary).", [
            ("1", "Patient discharged on clinical advice or with clinical consent"),
            ("3", "Patient discharged by mental health review tribunal, Home Secretary or Court"),
            ("4", "Patient died"),
            ("5", "Stillbirth"),
            ("6", "Patient discharged him/herself"),
            ("7", "Patient discharged by a relative or advocate"),
            ("8", "Not applicable (Hospital Provider Spell not finished at episode end)"),
            ("9", "Method of discharge not known"),
        ]),
    "UKCore-DischargeDestinationEngland": (
        "UK Core Discharge Destination England", "1.0.0", "active",
        "The destination of a patient on completion of a hospital provider spell (NHS Data Dictionary).", [
            ("19", "Usual place of residence"),
            ("29", "Temporary place of residence when usually resident elsewhere"),
            ("30", "Repatriation from high security psychiatric accommodation in an NHS Hospital Provider"),
            ("37", "Court"),
            ("38", "Penal establishment or police station"),
            ("48", "High Security Psychiatric Hospital, Scotland"),
            ("49", "NHS other Hospital Provider - high security psychiatric accommodation"),
            ("50", "NHS other Hospital Provider - medium secure unit"),
            ("51", "NHS other Hospital Provider - Ward for general patients or the younger physically disabled"),
            ("52", "NHS other Hospital Provider - Ward for maternity patients or Neonates"),
            ("53", "NHS other Hospital Provider - Ward for patients who are mentally ill or have Learning "
                   "Disabilities"),
            ("54", "NHS run Care Home"),
            ("65", "Local Authority residential accommodation i.e. where care is provided"),
            ("66", "Local Authority foster care"),
            ("79", "Not applicable - Patient died or stillbirth"),
            ("84", "Non-NHS run hospital - medium secure unit"),
            ("85", "Non-NHS (other than Local Authority) run Care Home"),
            ("87", "Non-NHS run hospital"),
            ("88", "Non-NHS (other than Local Authority) run Hospice"),
            ("98", "Not applicable - Hospital Provider Spell not finished at episode end"),
            ("99", "Not known"),
        ]),
    "UKCore-NHSNumberVerificationStatusEngland": (
        "UK Core NHS Number Verification Status England", "1.0.0", "active",
        "The trace status of an NHS number with respect to the national source (NHS Data Dictionary NHS "
        "Number Status Indicator Code).", [
            ("01", "Number present and verified"),
            ("02", "Number present but not traced"),
            ("03", "Trace required"),
            ("04", "Trace attempted - No match or multiple match found"),
            ("05", "Trace needs to be resolved - (NHS number or patient detail conflict)"),
            ("06", "Trace in progress"),
            ("07", "Number not present and trace not required"),
            ("08", "Trace postponed (baby under six weeks old)"),
        ]),
    "UKCore-PrescriptionType": (
        "UK Core Prescription Type", "2.0.0", "retired",
        "The type of prescription. Retired in UK Core 2.x but the one code system naming the GP extract's "
        "prescription types.", [
            ("acute", "Acute"), ("repeat", "Repeat"), ("repeat-dispensing", "Repeat dispensing"),
            ("delayed-prescribing", "Delayed prescribing"),
        ]),
}

ENGLAND_VALUE_SETS = {
    "admission-method-england": ("UKCore-AdmissionMethodEngland", "Admission method (England)"),
    "source-of-admission-england": ("UKCore-SourceOfAdmissionEngland", "Source of admission (England)"),
    "discharge-method-england": ("UKCore-DischargeMethodEngland", "Discharge method (England)"),
    "discharge-destination-england": ("UKCore-DischargeDestinationEngland", "Discharge destination (England)"),
    "nhs-number-verification-status-england": ("UKCore-NHSNumberVerificationStatusEngland",
                                               "NHS number verification status (England)"),
    "prescription-type": ("UKCore-PrescriptionType", "Prescription type"),
}

COMPOSED_VALUE_SETS: dict[str, tuple[str, str, list[str]]] = {
    "condition-code": ("Condition codes", "Problems and diagnoses: any SNOMED CT, Read v2, CTV3 or ICD-10 code "
                       "(codes are checked for form, not against a release).", [SNOMED, READV2, CTV3, ICD10]),
    "observation-code": ("Observation codes", "Findings and scores: SNOMED CT, Read v2, CTV3, the project's risk "
                         "measures and social care observation codes.",
                         [SNOMED, READV2, CTV3, f"{BASE}/CodeSystem/risk-measure",
                          f"{BASE}/CodeSystem/social-care-observation"]),
    "medication-code": ("Medication codes", "Any dm+d code (checked for the form of a SNOMED CT identifier).",
                        [DMD]),
    "risk-assessment-method": ("Risk assessment methods", "A case-finding rule set or a risk measure.",
                               [f"{BASE}/CodeSystem/case-finding-rule-set", f"{BASE}/CodeSystem/risk-measure"]),
}


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("+", "-").split("-"))


def metadata(resource_type: str, url: str, name: str, title: str, description: str,
             status: str = "active", version: str = VERSION) -> Json:
    resource_id = url.rsplit("/", 1)[1]
    return {
        "resourceType": resource_type, "id": resource_id, "url": url, "version": version, "name": name,
        "title": title, "status": status, "experimental": False, "date": DATE, "publisher": PUBLISHER,
        "description": description,
    }


def concept_json(concept: Concept) -> Json:
    out: Json = {"code": concept[0], "display": concept[1]}
    if len(concept) > 2:
        out["definition"] = concept[2]  # type: ignore[misc]
    return out


def code_system(url: str, name: str, title: str, description: str, content: str, concepts: list[Concept],
                status: str = "active", version: str = VERSION, publisher: str = PUBLISHER) -> Json:
    resource = metadata("CodeSystem", url, name, title, description, status, version)
    resource["publisher"] = publisher
    resource.update({"caseSensitive": True, "content": content, "count": len(concepts),
                     "concept": [concept_json(c) for c in concepts]})
    return resource


def value_set(name: str, title: str, description: str, systems: list[str]) -> Json:
    resource = metadata("ValueSet", f"{BASE}/ValueSet/{name}", camel(name), title, description)
    resource["compose"] = {"include": [{"system": system} for system in systems]}
    return resource


def concept_maps() -> list[Json]:
    sex = metadata("ConceptMap", f"{BASE}/ConceptMap/gp-sex-to-administrative-gender", "GpSexToAdministrativeGender",
                   "GP sex to FHIR administrative gender",
                   "Translates the GP extract's sex codes to Patient.gender.")
    sex.update({
        "sourceUri": f"{BASE}/ValueSet/gp-sex",
        "targetUri": "http://hl7.org/fhir/ValueSet/administrative-gender",
        "group": [{
            "source": f"{BASE}/CodeSystem/gp-sex", "target": GENDER,
            "element": [
                {"code": src, "display": shown, "target": [{"code": dst, "display": dst, "equivalence": "equivalent"}]}
                for src, shown, dst in (("M", "Male", "male"), ("F", "Female", "female"),
                                        ("I", "Indeterminate", "other"), ("U", "Unknown", "unknown"))
            ],
        }],
    })
    residence = metadata("ConceptMap", f"{BASE}/ConceptMap/cld-accommodation-to-residence-finding",
                         "CldAccommodationToResidenceFinding",
                         "CLD accommodation status to SNOMED CT residence finding",
                         "Translates the care-home values of CLD Accommodation_Status to the SNOMED CT findings the "
                         "case-finding rules look for; the other values have no residence finding.")
    residence.update({
        "sourceUri": f"{BASE}/ValueSet/cld-accommodation-status",
        "targetUri": f"{BASE}/ValueSet/observation-code",
        "group": [{
            "source": f"{BASE}/CodeSystem/cld-accommodation-status", "target": SNOMED,
            "element": [
                {"code": "Registered nursing home", "display": "Registered nursing home",
                 "target": [{"code": "160734000", "display": "Lives in a nursing home", "equivalence": "equivalent"}]},
                {"code": "Registered care home", "display": "Registered care home",
                 "target": [{"code": "394923006", "display": "Lives in a residential home",
                             "equivalence": "equivalent"}]},
            ],
        }],
    })
    return [sex, residence]


def resources() -> list[Json]:
    out: list[Json] = []
    for name, (camel_name, title, content, values) in CLD.items():
        url = f"{BASE}/CodeSystem/{name}"
        description = f"{title}." + (CLD_NOTE if content == "fragment" else " Codes are the CLD values verbatim.")
        out.append(code_system(url, camel_name, title, description, content, [(v, v) for v in values]))
        out.append(value_set(name, title, f"All codes of {title}.", [url]))
    for name, (camel_name, title, description, concepts) in PROJECT.items():
        url = f"{BASE}/CodeSystem/{name}"
        out.append(code_system(url, camel_name, title, description, "complete", concepts))
        out.append(value_set(name, title, f"All codes of {title}.", [url]))
    for name, (title, version, status, description, concepts) in UKCORE.items():
        out.append(code_system(UKCORE_CS + name, name.replace("-", ""), title, description, "complete", concepts,
                               status=status, version=version, publisher="HL7 UK"))
    for name, (system, title) in ENGLAND_VALUE_SETS.items():
        out.append(value_set(name, title, f"The codes of {UKCORE_CS}{system} (the England part of the UK Core "
                                          "value set, bound by the project's profiles).", [UKCORE_CS + system]))
    for name, (title, description, systems) in COMPOSED_VALUE_SETS.items():
        out.append(value_set(name, title, description, systems))
    out.extend(concept_maps())
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    written = resources()
    for resource in written:  # other files in the folder (written by hand) are left alone
        path = OUT / f"{resource['resourceType']}-{resource['id']}.json"
        path.write_text(json.dumps(resource, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(written)} files to {OUT}")


if __name__ == "__main__":
    main()
