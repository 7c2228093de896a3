"""The rule book: case-finding rule sets, risk measures, code lists, programme templates and settings,
loaded from the versioned data in profiles/rulesets/ (see its README for the format)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from .calendar import WorkingDays
from .codes import IcdMatcher

CHECK_KINDS = ("age", "admissions", "residence", "medicines", "long-term-conditions", "nomination", "finding")
ADMISSION_METHODS = ("emergency", "elective", "any")
PRESCRIPTION_TYPES = ("acute", "repeat", "repeat-dispensing", "delayed-prescribing")
RULE_SET_TIERS = ("very-high", "high", "moderate", "low")
SCORE_KINDS = ("hfrs", "efi")

Json = dict[str, Any]


class RuleBookError(ValueError):
    """A rule book file that cannot be used, with the file and the place in it."""


@dataclass(frozen=True)
class DiagnosisRule:
    """An ICD-10 code, range or prefix, optionally limited by age at admission."""

    matcher: IcdMatcher
    title: str = ""
    min_age: int | None = None
    max_age: int | None = None
    position: str = "primary"

    def holds(self, code: str, primary: bool, age: int | None) -> bool:
        if (self.position == "primary" and not primary) or not self.matcher.matches(code):
            return False
        if age is None:
            return self.min_age is None and self.max_age is None
        return (self.min_age is None or age >= self.min_age) and (self.max_age is None or age <= self.max_age)


@dataclass(frozen=True)
class Check:
    """One condition of a criterion (all of a criterion's checks must hold)."""

    kind: str
    min: float | None = None
    max: float | None = None
    method: str = "emergency"
    within_months: int | None = None
    diagnoses: tuple[DiagnosisRule, ...] = ()
    settings: tuple[str, ...] = ()
    prescription_types: frozenset[str] = frozenset()
    code_list: str = ""
    codes: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Criterion:
    """A named criterion of a rule set; its priority is its position (1 = searched first)."""

    id: str
    title: str
    priority: int
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Tiers:
    """How a rule set's result maps onto risk tiers."""

    met: str = "high"
    several_met: str = "very-high"
    several: int = 2
    not_met: str = "low"


@dataclass(frozen=True)
class RuleSet:
    """A versioned case-finding rule set: who it applies to and its criteria in priority order."""

    code: str
    version: str
    title: str
    source: str
    order: int
    applies: tuple[Check, ...]
    criteria: tuple[Criterion, ...]
    tiers: Tiers
    kind: str = "rule-set"


@dataclass(frozen=True)
class TierBand:
    """A measure tier: the score is below `below` or at most `up_to` (the last band has neither)."""

    tier: str
    below: float | None = None
    up_to: float | None = None

    def holds(self, score: float) -> bool:
        if self.below is not None:
            return score < self.below
        if self.up_to is not None:
            return score <= self.up_to + 1e-9
        return True


@dataclass(frozen=True)
class Measure:
    """A published risk measure (HFRS or eFI) with its tables."""

    code: str
    version: str
    title: str
    source: str
    applies: tuple[Check, ...]
    score_kind: str
    bands: tuple[TierBand, ...]
    within_months: int = 24
    method: str = "any"
    points: dict[str, float] = field(default_factory=dict)
    deficits: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    denominator: int = 36
    polypharmacy_min: int = 5
    polypharmacy_months: int = 12
    kind: str = "measure"

    def tier(self, score: float) -> str:
        for band in self.bands:
            if band.holds(score):
                return band.tier
        return self.bands[-1].tier


@dataclass(frozen=True)
class CodeGroup:
    """A group of codes (a long-term condition, a care home setting) in SNOMED CT, Read v2 and CTV3."""

    id: str
    title: str
    codes: dict[str, frozenset[str]]
    prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    accommodation: frozenset[str] = frozenset()
    service_types: frozenset[str] = frozenset()

    def holds(self, system: str, code: str) -> bool:
        if code in self.codes.get(system, ()):
            return True
        return any(code.startswith(p) for p in self.prefixes.get(system, ()))


@dataclass(frozen=True)
class ActivitySpec:
    """An activity of a programme template: due once (`due`) or repeated (`every`)."""

    code: str
    title: str
    due: dict[str, int] | None = None
    every: dict[str, Any] | None = None
    discharge: bool = False


@dataclass(frozen=True)
class Template:
    """A programme template a care plan is created from (Havering, Rutland)."""

    code: str
    version: str
    title: str
    programme: str
    duration: dict[str, int]
    activities: tuple[ActivitySpec, ...]


@dataclass(frozen=True)
class ProgrammeSettings:
    """Capacity, case finding, screening and pyramid settings of the programme."""

    caseload: int = 50
    new_per_month: int = 20
    reserve: float = 0.1
    case_manager_roles: tuple[str, ...] = ("case-manager", "care-coordinator", "community-matron")
    default_rule_set: str = "essex-frail-elderly"
    eligible_tiers: tuple[str, ...] = ("very-high", "high")
    declined_months: int = 6
    screening_rule_sets: tuple[str, ...] = ()
    assessment_days: int = 2
    pyramid: dict[str, str] = field(default_factory=dict)


@dataclass
class RuleBook:
    """Everything in profiles/rulesets/, parsed and checked."""

    rule_sets: dict[str, RuleSet]
    measures: dict[str, Measure]
    code_lists: dict[str, tuple[CodeGroup, ...]]
    templates: dict[str, Template]
    settings: ProgrammeSettings
    working_days: WorkingDays

    @property
    def methods(self) -> list[RuleSet | Measure]:
        """Rule sets in their priority order, then the measures."""
        ordered: list[RuleSet | Measure] = sorted(self.rule_sets.values(), key=lambda r: (r.order, r.code))
        return ordered + [self.measures[k] for k in sorted(self.measures)]

    def method(self, code: str) -> RuleSet | Measure | None:
        return self.rule_sets.get(code) or self.measures.get(code)

    @property
    def residence(self) -> tuple[CodeGroup, ...]:
        return self.code_lists.get("care-home-residence", ())

    def tier_level(self, tier: str) -> str:
        """The pyramid level of a risk tier (case-management, disease-management, supported-self-care)."""
        return self.settings.pyramid.get(tier, "supported-self-care")

    @classmethod
    def load(cls, root: Path | Traversable | None = None) -> RuleBook:
        """Read the rule book from a folder (default: profiles/rulesets in the installed package)."""
        folder: Path | Traversable = root if root is not None else resources.files("profiles").joinpath("rulesets")
        return Loader(folder).load()


class Loader:
    """Parses the rule book files, reporting the file and key of anything it cannot use."""

    def __init__(self, root: Path | Traversable) -> None:
        self.root = root
        self.where = ""

    def fail(self, message: str) -> RuleBookError:
        return RuleBookError(f"{self.where}: {message}")

    def read_yaml(self, node: Traversable | Path) -> Json:
        self.where = f"rulesets/{node.name}"
        try:
            data = yaml.safe_load(node.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise self.fail(f"not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise self.fail("expected a mapping at the top")
        return data

    def files(self, folder: str) -> list[Traversable | Path]:
        directory = self.root.joinpath(folder)
        if not directory.is_dir():
            return []
        return sorted((f for f in directory.iterdir() if f.name.endswith((".yaml", ".yml"))), key=lambda f: f.name)

    def load(self) -> RuleBook:
        deficits = self.efi_deficits("measures/efi-deficits.json")
        code_lists: dict[str, tuple[CodeGroup, ...]] = {}
        for node in self.files("codelists"):
            data = self.read_yaml(node)
            code_lists[self.text(data, "code")] = self.code_list(data, deficits)
        rule_sets: dict[str, RuleSet] = {}
        for node in self.files("case-finding"):
            data = self.read_yaml(node)
            if data.get("status", "active") != "active":
                continue
            rule_set = self.rule_set(data, code_lists)
            if rule_set.code in rule_sets:
                raise self.fail(f"rule set {rule_set.code!r} is defined twice")
            rule_sets[rule_set.code] = rule_set
        measures: dict[str, Measure] = {}
        for node in self.files("measures"):
            data = self.read_yaml(node)
            if data.get("status", "active") == "active":
                measure = self.measure(data, deficits)
                measures[measure.code] = measure
        templates: dict[str, Template] = {}
        for node in self.files("programmes"):
            template = self.template(self.read_yaml(node))
            templates[template.code] = template
        settings = self.settings(self.read_yaml(self.root.joinpath("programme.yaml")), rule_sets)
        holidays = self.read_yaml(self.root.joinpath("bank-holidays-england.yaml")).get("dates") or []
        if not all(isinstance(d, date) for d in holidays):
            raise self.fail("dates must be YYYY-MM-DD dates")
        return RuleBook(rule_sets, measures, code_lists, templates, settings, WorkingDays(holidays))

    # ----------------------------------------------------------------- parts

    def text(self, data: Json, key: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if value is None or (not isinstance(value, (str, int, float)) or isinstance(value, bool)):
            raise self.fail(f"'{key}' is required and must be text")
        return str(value)

    def number(self, data: Json, key: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"'{key}' must be a number, not {value!r}")
        return float(value)

    def known(self, data: Json, allowed: set[str], what: str) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.fail(f"unknown key(s) {', '.join(unknown)} in {what}")

    def check(self, data: Any, code_lists: dict[str, tuple[CodeGroup, ...]], where: str) -> Check:
        if not isinstance(data, dict):
            raise self.fail(f"{where}: a check must be a mapping with a 'kind'")
        kind = data.get("kind")
        if kind not in CHECK_KINDS:
            raise self.fail(f"{where}: kind {kind!r} is not one of {', '.join(CHECK_KINDS)}")
        self.known(data, {"kind", "min", "max", "method", "within_months", "diagnoses", "settings",
                          "prescription_types", "list", "snomed", "readv2", "ctv3"}, where)
        method = str(data.get("method", "emergency" if kind == "admissions" else "any"))
        if method not in ADMISSION_METHODS:
            raise self.fail(f"{where}: method {method!r} is not one of {', '.join(ADMISSION_METHODS)}")
        within = data.get("within_months")
        if within is not None and (not isinstance(within, int) or within <= 0):
            raise self.fail(f"{where}: within_months must be a positive whole number")
        diagnoses = []
        for index, entry in enumerate(data.get("diagnoses") or []):
            if not isinstance(entry, dict) or "code" not in entry:
                raise self.fail(f"{where}.diagnoses[{index}]: needs a 'code' (E86, K59.0, W00-W19)")
            self.known(entry, {"code", "title", "min_age", "max_age", "position"}, f"{where}.diagnoses[{index}]")
            position = str(entry.get("position", "primary"))
            if position not in ("primary", "any"):
                raise self.fail(f"{where}.diagnoses[{index}]: position must be primary or any")
            try:
                matcher = IcdMatcher.parse(str(entry["code"]))
            except ValueError as exc:
                raise self.fail(f"{where}.diagnoses[{index}]: {exc}") from exc
            diagnoses.append(DiagnosisRule(matcher, str(entry.get("title", "")), entry.get("min_age"),
                                           entry.get("max_age"), position))
        settings = tuple(str(s) for s in data.get("settings") or ())
        if kind == "residence":
            known_settings = {g.id for g in code_lists.get("care-home-residence", ())}
            for setting in settings or ("",):
                if setting not in known_settings:
                    raise self.fail(f"{where}: residence setting {setting!r} is not in codelists/care-home-residence")
        types = frozenset(str(t) for t in data.get("prescription_types") or ("repeat", "repeat-dispensing"))
        if not types <= set(PRESCRIPTION_TYPES):
            raise self.fail(f"{where}: prescription_types must be among {', '.join(PRESCRIPTION_TYPES)}")
        code_list = str(data.get("list", ""))
        if kind == "long-term-conditions" and code_list not in code_lists:
            raise self.fail(f"{where}: code list {code_list!r} is not in codelists/")
        codes = {system: frozenset(str(c) for c in data.get(system) or ()) for system in ("snomed", "readv2", "ctv3")}
        if kind == "finding" and not any(codes.values()):
            raise self.fail(f"{where}: a finding check needs snomed, readv2 or ctv3 codes")
        if kind in ("medicines", "long-term-conditions") and data.get("min") is None:
            raise self.fail(f"{where}: a {kind} check needs 'min'")
        return Check(kind=kind, min=self.number(data, "min"), max=self.number(data, "max"), method=method,
                     within_months=within, diagnoses=tuple(diagnoses), settings=settings,
                     prescription_types=types, code_list=code_list, codes=codes)

    def rule_set(self, data: Json, code_lists: dict[str, tuple[CodeGroup, ...]]) -> RuleSet:
        self.known(data, {"kind", "code", "version", "title", "source", "status", "order", "applies", "criteria",
                          "tiers"}, "the rule set")
        if data.get("kind") != "rule-set":
            raise self.fail("kind must be 'rule-set'")
        code = self.text(data, "code")
        applies = tuple(self.check(c, code_lists, f"applies[{i}]") for i, c in enumerate(data.get("applies") or []))
        criteria = []
        for index, entry in enumerate(data.get("criteria") or []):
            where = f"criteria[{index}]"
            if not isinstance(entry, dict):
                raise self.fail(f"{where}: a criterion must be a mapping")
            self.known(entry, {"id", "title", "all"}, where)
            checks = tuple(self.check(c, code_lists, f"{where}.all[{i}]") for i, c in enumerate(entry.get("all") or []))
            if not checks:
                raise self.fail(f"{where}: a criterion needs at least one check under 'all'")
            criteria.append(Criterion(self.text(entry, "id"), str(entry.get("title", "")), index + 1, checks))
        if not criteria:
            raise self.fail("a rule set needs at least one criterion")
        if len({c.id for c in criteria}) != len(criteria):
            raise self.fail("criterion ids must be unique")
        raw_tiers = data.get("tiers") or {}
        self.known(raw_tiers, {"met", "several_met", "several", "not_met"}, "tiers")
        tiers = Tiers(**{k: v for k, v in raw_tiers.items()})
        for tier in (tiers.met, tiers.several_met, tiers.not_met):
            if tier not in RULE_SET_TIERS:
                raise self.fail(f"tier {tier!r} is not one of {', '.join(RULE_SET_TIERS)}")
        return RuleSet(code, self.text(data, "version"), self.text(data, "title"), str(data.get("source", "")),
                       int(data.get("order", 99)), applies, tuple(criteria), tiers)

    def measure(self, data: Json, deficits: dict[str, dict[str, frozenset[str]]]) -> Measure:
        self.known(data, {"kind", "code", "version", "title", "source", "status", "applies", "score", "tiers"},
                   "the measure")
        if data.get("kind") != "measure":
            raise self.fail("kind must be 'measure'")
        score = data.get("score") or {}
        kind = score.get("kind")
        if kind not in SCORE_KINDS:
            raise self.fail(f"score.kind {kind!r} is not one of {', '.join(SCORE_KINDS)}")
        applies = tuple(self.check(c, {}, f"applies[{i}]") for i, c in enumerate(data.get("applies") or []))
        bands = []
        for index, entry in enumerate(data.get("tiers") or []):
            self.known(entry, {"tier", "below", "up_to"}, f"tiers[{index}]")
            bands.append(TierBand(self.text(entry, "tier"), self.number(entry, "below"), self.number(entry, "up_to")))
        if not bands:
            raise self.fail("a measure needs tiers")
        common = {"code": self.text(data, "code"), "version": self.text(data, "version"),
                  "title": self.text(data, "title"), "source": str(data.get("source", "")), "applies": applies,
                  "score_kind": kind, "bands": tuple(bands)}
        if kind == "hfrs":
            self.known(score, {"kind", "points", "within_months", "method"}, "score")
            points = self.hfrs_points(str(score.get("points", "hfrs-points.tsv")))
            return Measure(**common, points=points, within_months=int(score.get("within_months", 24)),
                           method=str(score.get("method", "any")))
        self.known(score, {"kind", "deficits", "denominator", "polypharmacy"}, "score")
        poly = score.get("polypharmacy") or {}
        return Measure(**common, deficits=deficits, denominator=int(score.get("denominator", 36)),
                       polypharmacy_min=int(poly.get("min", 5)), polypharmacy_months=int(poly.get("within_months", 12)))

    def hfrs_points(self, name: str) -> dict[str, float]:
        self.where = f"rulesets/measures/{name}"
        text = self.root.joinpath("measures").joinpath(name).read_text(encoding="utf-8")
        points: dict[str, float] = {}
        for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
            try:
                points[row["icd10_3char"].strip().upper()] = float(row["points"])
            except (KeyError, ValueError) as exc:
                raise self.fail(f"bad row {row}") from exc
        return points

    def efi_deficits(self, name: str) -> dict[str, dict[str, frozenset[str]]]:
        self.where = f"rulesets/{name}"
        node = self.root
        for part in name.split("/"):
            node = node.joinpath(part)
        data = json.loads(node.read_text(encoding="utf-8"))
        return {deficit: {system: frozenset(codes) for system, codes in systems.items()}
                for deficit, systems in data["deficits"].items()}

    def code_list(self, data: Json, deficits: dict[str, dict[str, frozenset[str]]]) -> tuple[CodeGroup, ...]:
        if data.get("kind") != "code-list":
            raise self.fail("kind must be 'code-list'")
        groups = []
        for index, entry in enumerate(data.get("groups") or data.get("settings") or []):
            where = f"groups[{index}]"
            self.known(entry, {"id", "title", "efi", "snomed", "readv2", "ctv3", "readv2_prefixes", "ctv3_prefixes",
                               "accommodation", "service_types"}, where)
            codes: dict[str, set[str]] = {"snomed": set(), "readv2": set(), "ctv3": set()}
            for deficit in entry.get("efi") or []:
                if deficit not in deficits:
                    raise self.fail(f"{where}: {deficit!r} is not an eFI deficit")
                for system, found in deficits[deficit].items():
                    codes[system] |= found
            for system in codes:
                codes[system] |= {str(c) for c in entry.get(system) or []}
            prefixes = {s: tuple(str(p) for p in entry.get(f"{s}_prefixes") or ()) for s in ("readv2", "ctv3")}
            groups.append(CodeGroup(self.text(entry, "id"), str(entry.get("title", "")),
                                    {s: frozenset(c) for s, c in codes.items()}, prefixes,
                                    frozenset(str(a) for a in entry.get("accommodation") or ()),
                                    frozenset(str(t) for t in entry.get("service_types") or ())))
        return tuple(groups)

    def template(self, data: Json) -> Template:
        self.known(data, {"kind", "code", "version", "title", "programme", "duration", "activities"}, "the template")
        if data.get("kind") != "programme-template":
            raise self.fail("kind must be 'programme-template'")
        activities = []
        for index, entry in enumerate(data.get("activities") or []):
            self.known(entry, {"code", "title", "due", "every", "discharge"}, f"activities[{index}]")
            due, every = entry.get("due"), entry.get("every")
            if (due is None) == (every is None):
                raise self.fail(f"activities[{index}]: give exactly one of 'due' or 'every'")
            if due is not None and not set(due) <= {"months", "weeks", "days"}:
                raise self.fail(f"activities[{index}].due: use months, weeks or days")
            if every is not None and (not set(every) <= {"frequency", "period", "unit"} or "unit" not in every):
                raise self.fail(f"activities[{index}].every: needs frequency, period and unit (d, wk, mo)")
            activities.append(ActivitySpec(self.text(entry, "code"), self.text(entry, "title"), due, every,
                                           bool(entry.get("discharge", False))))
        duration = data.get("duration") or {}
        if not duration or not set(duration) <= {"months", "weeks", "days"}:
            raise self.fail("duration needs months, weeks or days")
        return Template(self.text(data, "code"), self.text(data, "version"), self.text(data, "title"),
                        self.text(data, "programme"), dict(duration), tuple(activities))

    def settings(self, data: Json, rule_sets: dict[str, RuleSet]) -> ProgrammeSettings:
        capacity = data.get("capacity") or {}
        finding = data.get("case_finding") or {}
        screening = data.get("screening") or {}
        pyramid: dict[str, str] = {}
        for level, tiers in (data.get("pyramid") or {}).items():
            for tier in tiers:
                pyramid[str(tier)] = str(level)
        default = str(finding.get("default_rule_set", "essex-frail-elderly"))
        if rule_sets and default not in rule_sets:
            raise self.fail(f"case_finding.default_rule_set {default!r} is not an active rule set")
        return ProgrammeSettings(
            caseload=int(capacity.get("caseload_per_case_manager", 50)),
            new_per_month=int(capacity.get("new_per_coordinator_per_month", 20)),
            reserve=float(capacity.get("reserve_for_newly_eligible", 0.1)),
            case_manager_roles=tuple(data.get("case_manager_roles") or ProgrammeSettings.case_manager_roles),
            default_rule_set=default,
            eligible_tiers=tuple(finding.get("eligible_tiers") or ("very-high", "high")),
            declined_months=int(finding.get("declined_exclusion_months", 6)),
            screening_rule_sets=tuple(screening.get("rule_sets") or ()),
            assessment_days=int(screening.get("assessment_within_working_days", 2)),
            pyramid=pyramid,
        )
