"""Case management: risk stratification, case finding, enrolment, case status and outcomes."""
