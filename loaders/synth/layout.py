"""The extract file layouts of extracts.md: headers, key columns and how each file may be spoiled."""

from __future__ import annotations

from dataclasses import dataclass, replace

ISO = "iso"  # YYYY-MM-DD
DMY = "dmy"  # DD/MM/YYYY
DMY_HM = "dmy_hm"  # DD/MM/YYYY HH:MM
ISO_HM = "iso_hm"  # YYYY-MM-DDTHH:MM


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file layout plus what the noise injector needs to know about it."""

    source: str  # gp | swift | hospital
    name: str  # file name, e.g. patients.csv
    header: tuple[str, ...]
    id_col: str  # the row's own id (duplicate-id target)
    nhs_col: str | None  # column holding an NHS number, if any
    nhs_required: bool
    required: tuple[str, ...]  # columns blanked by "missing required value"
    dates: tuple[tuple[str, str], ...]  # (column, style) spoiled by "bad date"
    unknown: tuple[tuple[str, str], ...]  # (column, bad value) for "unknown code"
    dup_change: tuple[str, str]  # (column, new value) so a duplicate id row differs from the first
    names: bool = False  # carries people's names (may be written as Windows-1252)
    # the implausible values (the mappings' plausibility rules): each fault falls back to a future date
    past: tuple[tuple[str, str], ...] = ()  # (column, style) never after the extract date
    spans: tuple[tuple[str, str, str], ...] = ()  # (start, end, style): the end never before the start
    birth: tuple[str, str, str] | None = None  # (date of birth, date of death, style)
    amounts: tuple[tuple[str, str | None], ...] = ()  # (column, its unit column or None): never negative

    def col(self, name: str) -> int:
        return self.header.index(name)


DIAG_COLS = tuple(f"DIAG_4_{i:02d}" for i in range(1, 21))

PATIENTS = FileSpec(
    "gp", "patients.csv",
    ("nhs_number", "practice_ods", "gp_patient_id", "family_name", "given_name", "date_of_birth", "sex",
     "postcode", "address_line", "telecom", "registration_date", "deregistration_date", "date_of_death",
     "usual_gp_gmc"),
    id_col="gp_patient_id", nhs_col="nhs_number", nhs_required=True,
    required=("nhs_number", "practice_ods", "family_name", "given_name", "date_of_birth", "sex",
              "registration_date"),
    dates=(("date_of_birth", ISO), ("registration_date", ISO)),
    unknown=(("sex", "X"), ("sex", "9")),
    dup_change=("telecom", "07700 900999"),
    names=True,
    past=(("date_of_birth", ISO), ("registration_date", ISO)),
    spans=(("registration_date", "deregistration_date", ISO),),
    birth=("date_of_birth", "date_of_death", ISO),
)
CODED = FileSpec(
    "gp", "coded_entries.csv",
    ("entry_id", "nhs_number", "entry_type", "code_system", "code", "term", "effective_date", "status",
     "end_date"),
    id_col="entry_id", nhs_col="nhs_number", nhs_required=True,
    required=("nhs_number", "entry_type", "code_system", "code", "term", "effective_date"),
    dates=(("effective_date", ISO),),
    unknown=(("code_system", "ICD9"), ("entry_type", "diagnosis")),
    dup_change=("term", "Duplicate entry"),
    past=(("effective_date", ISO),),
    spans=(("effective_date", "end_date", ISO),),
)
MEDICATIONS = FileSpec(
    "gp", "medications.csv",
    ("entry_id", "nhs_number", "dmd_code", "drug_name", "prescription_type", "status", "authorised_date",
     "end_date", "last_issue_date", "dosage", "quantity", "quantity_unit"),
    id_col="entry_id", nhs_col="nhs_number", nhs_required=True,
    required=("nhs_number", "drug_name", "prescription_type", "status", "authorised_date"),
    dates=(("authorised_date", ISO),),
    unknown=(("prescription_type", "stat"), ("status", "on-hold")),
    dup_change=("dosage", "Duplicate authorisation"),
    past=(("authorised_date", ISO),),
    spans=(("authorised_date", "end_date", ISO),),
    amounts=(("quantity", None),),
)
CONSULTATIONS = FileSpec(
    "gp", "consultations.csv",
    ("consultation_id", "nhs_number", "date", "type", "clinician_gmc"),
    id_col="consultation_id", nhs_col="nhs_number", nhs_required=True,
    required=("nhs_number", "date", "type"),
    dates=(("date", ISO),),
    unknown=(("type", "walk-in"), ("type", "email")),
    dup_change=("clinician_gmc", "9999999"),
    past=(("date", ISO),),
)
CLIENTS = FileSpec(
    "swift", "clients.csv",
    ("Person_ID", "NHS_Number", "Family_Name", "Given_Name", "Date_Of_Birth", "Gender", "Postcode",
     "Accommodation_Status", "Primary_Support_Reason", "Has_Unpaid_Carer", "Date_Of_Death"),
    id_col="Person_ID", nhs_col="NHS_Number", nhs_required=False,
    required=("Family_Name", "Given_Name", "Date_Of_Birth", "Gender"),
    dates=(("Date_Of_Birth", DMY),),
    unknown=(("Gender", "X"), ("Gender", "Z")),
    dup_change=("Postcode", "ZZ9 9ZZ"),
    names=True,
    past=(("Date_Of_Birth", DMY),),
    birth=("Date_Of_Birth", "Date_Of_Death", DMY),
)
SERVICES = FileSpec(
    "swift", "services.csv",
    ("Service_ID", "Person_ID", "Service_Type", "Service_Component", "Delivery_Mechanism", "Provider_Name",
     "Service_Start_Date", "Service_End_Date", "Planned_Units_Per_Week", "Unit_Type", "Weekly_Cost", "Status",
     "Reason_For_Change", "Last_Modified"),
    id_col="Service_ID", nhs_col=None, nhs_required=False,
    required=("Person_ID", "Service_Type", "Service_Component", "Service_Start_Date", "Status", "Last_Modified"),
    dates=(("Service_Start_Date", DMY), ("Last_Modified", DMY_HM)),
    unknown=(("Status", "Paused"), ("Status", "Open")),
    dup_change=("Provider_Name", "Duplicate Provider Ltd"),
    past=(("Service_Start_Date", DMY), ("Last_Modified", DMY_HM)),
    spans=(("Service_Start_Date", "Service_End_Date", DMY),),
    amounts=(("Planned_Units_Per_Week", "Unit_Type"), ("Weekly_Cost", None)),
)
SERVICES_CHANGES = replace(SERVICES, name="services_changes.csv")
EVENTS = FileSpec(
    "swift", "events.csv",
    ("Event_ID", "Person_ID", "Event_Type", "Event_Start_Date", "Event_End_Date", "Event_Outcome",
     "Worker_Name", "Team"),
    id_col="Event_ID", nhs_col=None, nhs_required=False,
    required=("Person_ID", "Event_Type", "Event_Start_Date"),
    dates=(("Event_Start_Date", DMY),),
    unknown=(("Event_Type", "Phone call"), ("Event_Type", "Visit")),
    dup_change=("Worker_Name", "Z. Duplicate"),
    past=(("Event_Start_Date", DMY),),
    spans=(("Event_Start_Date", "Event_End_Date", DMY),),
)
ADMISSIONS = FileSpec(
    "hospital", "admissions.csv",
    ("SPELL_ID", "NHS_NUMBER", "PROCODE", "ADMIDATE", "ADMIMETH", "ADMISORC", "DISDATE", "DISMETH", "DISDEST",
     "CLASSPAT", "MAINSPEF", *DIAG_COLS),
    id_col="SPELL_ID", nhs_col="NHS_NUMBER", nhs_required=True,
    required=("NHS_NUMBER", "PROCODE", "ADMIDATE", "ADMIMETH", "DIAG_4_01"),
    dates=(("ADMIDATE", ISO),),
    unknown=(("ADMIMETH", "77"), ("ADMIMETH", "2Z")),
    dup_change=("MAINSPEF", "999"),
    past=(("ADMIDATE", ISO),),
    spans=(("ADMIDATE", "DISDATE", ISO),),
)
AE = FileSpec(
    "hospital", "ae_attendances.csv",
    ("ATTENDANCE_ID", "NHS_NUMBER", "PROCODE", "ARRIVAL_DATETIME", "DEPARTURE_DATETIME", "DISPOSAL",
     "CHIEF_COMPLAINT_SNOMED"),
    id_col="ATTENDANCE_ID", nhs_col="NHS_NUMBER", nhs_required=True,
    required=("NHS_NUMBER", "PROCODE", "ARRIVAL_DATETIME"),
    dates=(("ARRIVAL_DATETIME", ISO_HM),),
    unknown=(("DISPOSAL", "teleported"), ("DISPOSAL", "X")),
    dup_change=("CHIEF_COMPLAINT_SNOMED", "22253000"),
    past=(("ARRIVAL_DATETIME", ISO_HM),),
    spans=(("ARRIVAL_DATETIME", "DEPARTURE_DATETIME", ISO_HM),),
)

GP_FILES = (PATIENTS, CODED, MEDICATIONS, CONSULTATIONS)
SWIFT_FILES = (CLIENTS, SERVICES, EVENTS)
HOSPITAL_FILES = (ADMISSIONS, AE)
ALL_FILES = (*GP_FILES, *SWIFT_FILES, SERVICES_CHANGES, *HOSPITAL_FILES)

#: the invalid-row kinds the noise injector knows, in NoiseRates field order
INVALID_KINDS = ("bad_nhs_check_digit", "bad_date", "unknown_code", "missing_required", "duplicate_id",
                 "future_date", "end_before_start", "death_before_birth", "implausible_age", "bad_quantity")
