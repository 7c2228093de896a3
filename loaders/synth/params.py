"""Model parameters: annual rates by age, risk multipliers and package sizes (one place to tune)."""

from __future__ import annotations

from dataclasses import dataclass

AgeTable = tuple[tuple[int, float], ...]  # (lowest age, value) steps, ascending


def by_age(table: AgeTable, age: float) -> float:
    """The value of the step the age falls in."""
    value = table[0][1]
    for lo, v in table:
        if age < lo:
            break
        value = v
    return value


def per_year(table: AgeTable) -> tuple[float, ...]:
    """The table as one value per whole year of age, 0 to 120, for fast lookups."""
    return tuple(by_age(table, a) for a in range(121))


@dataclass(frozen=True)
class Params:
    # latent frailty: lognormal with mean 1; drives conditions, admissions, care needs and death
    frailty_sigma: float = 0.9
    condition_frailty_power: float = 0.7
    # deaths (annual probability; England ~0.9 % a year overall)
    death: AgeTable = ((0, 0.0004), (40, 0.0015), (50, 0.003), (60, 0.007), (70, 0.018), (80, 0.05),
                       (85, 0.1), (90, 0.19), (95, 0.3))
    death_in_hospital: float = 0.45
    # emergency admissions (annual rate before multipliers)
    emergency: AgeTable = ((0, 0.035), (5, 0.017), (15, 0.024), (45, 0.033), (65, 0.06), (75, 0.11),
                           (85, 0.2))
    emergency_frailty_power: float = 1.6
    emergency_per_condition: float = 0.35
    elective: AgeTable = ((0, 0.01), (18, 0.04), (45, 0.08), (65, 0.14), (75, 0.15), (85, 0.08))
    ae_only: AgeTable = ((0, 0.32), (5, 0.2), (15, 0.3), (30, 0.24), (65, 0.26), (75, 0.34), (85, 0.45))
    # GP consultations a year (before condition and frailty multipliers)
    consultations: AgeTable = ((0, 2.5), (5, 1.5), (15, 2.0), (45, 3.0), (65, 4.0), (75, 5.0), (85, 6.0))
    consult_per_condition: float = 0.3
    acute_medicines: AgeTable = ((0, 0.6), (18, 0.5), (65, 0.8), (85, 1.2))
    medicine_switch_per_repeat: float = 0.004  # monthly
    # registrations (annual)
    move_practice: float = 0.02
    leave_area: AgeTable = ((0, 0.015), (18, 0.04), (30, 0.025), (45, 0.01), (65, 0.005))
    arrivals_per_month: float = 0.0015  # new registrations as a share of the list, births included
    arrival_births: float = 0.45
    # social care
    swift_only_share: float = 0.004
    care_home: AgeTable = ((0, 0.0), (65, 0.002), (75, 0.009), (85, 0.03), (90, 0.07))
    care_home_dementia_rr: float = 3.5
    home_support: AgeTable = ((0, 0.0), (65, 0.005), (75, 0.015), (85, 0.05), (90, 0.09))
    home_support_start: AgeTable = ((0, 0.0), (65, 0.002), (75, 0.006), (85, 0.02))  # annual
    care_home_entry: AgeTable = ((0, 0.0), (70, 0.001), (80, 0.004), (85, 0.01))  # annual, community
    care_home_after_admission: float = 0.025
    reablement_after_admission: float = 0.06
    home_support_after_reablement: float = 0.45
    hours_change_monthly: float = 0.025
    suspension_monthly: float = 0.05  # holiday, respite stay or client request
    request_only: AgeTable = ((0, 0.0), (18, 0.0005), (65, 0.004), (80, 0.01))  # annual
    learning_disability: float = 0.0035
    mental_health: float = 0.0015
    physical_working_age: float = 0.0015
    new_diagnosis_monthly: float = 0.0015
    new_finding_monthly: float = 0.004
    # costs
    home_support_hourly: tuple[float, float] = (21.5, 26.5)
    nursing_weekly: tuple[float, float] = (980.0, 1280.0)
    residential_weekly: tuple[float, float] = (760.0, 980.0)
