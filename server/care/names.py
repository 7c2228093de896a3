"""The URIs the care package writes and reads: national ones as they are, project ones under the base."""

from __future__ import annotations

from dataclasses import dataclass

from ..fhir.profiles import DEFAULT_BASE

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
READV2 = "http://read.info/readv2"
CTV3 = "http://read.info/ctv3"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
DMD = "https://dmd.nhs.uk"
UKCORE_SD = "https://fhir.hl7.org.uk/StructureDefinition/"
ADMISSION_METHOD = UKCORE_SD + "Extension-UKCore-AdmissionMethod"
PRESCRIPTION_TYPE = UKCORE_SD + "Extension-UKCore-PrescriptionType"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
CARE_PLAN_CATEGORY = "734163000"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LIST_ORDER = "http://terminology.hl7.org/CodeSystem/list-order"
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
CODE_SYSTEMS = {"snomed": SNOMED, "readv2": READV2, "ctv3": CTV3}


@dataclass(frozen=True)
class Names:
    """Project-owned URIs under one base (PROJECT_BASE_URI), as profiles/README.md names them."""

    base: str = DEFAULT_BASE

    def sd(self, name: str) -> str:
        return f"{self.base}/StructureDefinition/{name}"

    def cs(self, name: str) -> str:
        return f"{self.base}/CodeSystem/{name}"

    def id(self, key: str) -> str:
        return f"{self.base}/Id/{key}"

    # profiles
    @property
    def risk_assessment(self) -> str:
        return self.sd("SCR-RiskAssessment")

    @property
    def programme_episode(self) -> str:
        return self.sd("SCR-EpisodeOfCare-CaseManagement")

    @property
    def service_episode(self) -> str:
        return self.sd("SCR-EpisodeOfCare-SocialCareService")

    @property
    def hospital_spell(self) -> str:
        return self.sd("SCR-Encounter-HospitalSpell")

    @property
    def emergency_attendance(self) -> str:
        return self.sd("SCR-Encounter-EmergencyAttendance")

    @property
    def care_plan(self) -> str:
        return self.sd("SCR-CarePlan")

    @property
    def care_team(self) -> str:
        return self.sd("SCR-CareTeam")

    @property
    def flag(self) -> str:
        return self.sd("SCR-Flag")

    @property
    def risk_score(self) -> str:
        return self.sd("Extension-SCR-RiskScore")

    # code systems
    @property
    def rule_set_system(self) -> str:
        return self.cs("case-finding-rule-set")

    @property
    def measure_system(self) -> str:
        return self.cs("risk-measure")

    @property
    def tier_system(self) -> str:
        return self.cs("risk-tier")

    @property
    def programme_system(self) -> str:
        return self.cs("care-programme")

    @property
    def alert_system(self) -> str:
        return self.cs("care-alert")

    @property
    def role_system(self) -> str:
        return self.cs("care-role")

    @property
    def activity_system(self) -> str:
        return self.cs("care-plan-activity")

    @property
    def task_system(self) -> str:
        """Task codes of the care package (documented in profiles/rulesets/README.md)."""
        return self.cs("care-task")

    @property
    def screening_system(self) -> str:
        """Screening decisions: accepted, declined (profiles/rulesets/README.md)."""
        return self.cs("care-screening-decision")

    @property
    def outcome_system(self) -> str:
        """The $outcomes MeasureReport group codes (profiles/rulesets/README.md)."""
        return self.cs("care-outcome")

    @property
    def social_observation_system(self) -> str:
        return self.cs("social-care-observation")

    @property
    def accommodation_system(self) -> str:
        return self.cs("cld-accommodation-status")

    @property
    def service_type_extension(self) -> str:
        return self.sd("Extension-SCR-ServiceType")

    @property
    def units_extension(self) -> str:
        return self.sd("Extension-SCR-PlannedUnitsPerWeek")

    @property
    def cost_extension(self) -> str:
        return self.sd("Extension-SCR-WeeklyCost")

    @property
    def provider_extension(self) -> str:
        return self.sd("Extension-SCR-ServiceProvider")

    # identifier systems of resources the care package owns
    @property
    def assessment_id(self) -> str:
        """RiskAssessment: `<patient id>|<method code>` (one current assessment per patient and method)."""
        return self.id("risk-assessment")

    @property
    def alert_id(self) -> str:
        """Flag and Task raised for an admission: the Encounter id."""
        return self.id("care-alert")

    @property
    def run_id(self) -> str:
        return self.id("stratification-run")

    @property
    def outcomes_measure(self) -> str:
        return f"{self.base}/Measure/case-management-outcomes"
