"""NoiseRates: how untidy the generated extracts are (formatting noise and invalid rows)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .layout import INVALID_KINDS


@dataclass(frozen=True)
class NoiseRates:
    """Rates of the untidiness real extracts carry. Row rates are per data row, file rates per file.

    Formatting noise (the rows stay valid): ``nhs_spaces`` writes an NHS number as ``943 476 5919``;
    ``swift_blank_nhs`` leaves a SWIFT client's NHS number blank (not yet traced; per client, stable
    across months); ``crlf_files`` ends a file's lines with CRLF; ``cp1252_files`` writes a file that
    carries people's names (patients.csv, clients.csv) in Windows-1252; ``utf8_bom_files`` starts a
    UTF-8 file with a byte-order mark.

    Invalid rows (each an extra row the loader must reject; every one is listed in SynthSummary):
    ``bad_nhs_check_digit``, ``bad_date`` (impossible date in a required date column),
    ``unknown_code`` (e.g. sex ``X``, ADMIMETH ``77``), ``missing_required`` (a required value blank),
    ``duplicate_id`` (a second row reusing the previous row's id with a different value).

    Implausible rows (well formed, but the mappings' plausibility rules reject them; ``faults.py``):
    ``future_date`` (a birth, admission, contact, service start, ... after the extract date),
    ``end_before_start`` (a registration, medicine, service, event, spell or attendance ending before it
    starts), ``death_before_birth``, ``implausible_age`` (over 125 years), ``bad_quantity`` (a negative
    quantity or cost, or more planned hours, days or nights than a week holds). A kind a file cannot carry
    is injected as a future date.
    """

    nhs_spaces: float = 0.01
    swift_blank_nhs: float = 0.01
    crlf_files: float = 0.25
    cp1252_files: float = 0.2
    utf8_bom_files: float = 0.1
    bad_nhs_check_digit: float = 0.001
    bad_date: float = 0.001
    unknown_code: float = 0.001
    missing_required: float = 0.001
    duplicate_id: float = 0.001
    future_date: float = 0.0005
    end_before_start: float = 0.0005
    death_before_birth: float = 0.0005
    implausible_age: float = 0.0005
    bad_quantity: float = 0.0005

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"NoiseRates.{f.name} must be between 0 and 1, got {value}")
        if self.invalid_total() > 0.5:
            raise ValueError("the invalid-row rates add up to more than 0.5")

    @classmethod
    def none(cls) -> NoiseRates:
        """Clean output: no formatting noise and no invalid rows."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def invalid_total(self) -> float:
        return sum(self.invalid_rates())

    def invalid_rates(self) -> tuple[float, ...]:
        """Rates in layout.INVALID_KINDS order."""
        return tuple(float(getattr(self, kind)) for kind in INVALID_KINDS)
