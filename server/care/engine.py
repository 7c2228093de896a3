"""Stratification: a patient's facts evaluated under each rule set and measure of the rule book."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from .calendar import add_months, age_on
from .evidence import Admission, Coded, PatientFacts
from .rulesets import Check, CodeGroup, Criterion, Measure, RuleBook, RuleSet

CRITERION_TAG = re.compile(r"\[([A-Za-z0-9_.-]+)\]")


@dataclass(frozen=True)
class Result:
    """A patient's result under one rule set or measure; `met` is empty for the baseline (nothing found)."""

    method: RuleSet | Measure
    tier: str
    score: float | None
    basis: tuple[str, ...]
    rationale: str
    met: tuple[str, ...]

    @property
    def found(self) -> bool:
        return bool(self.met)


@dataclass(frozen=True)
class Outcome:
    """Whether a check or criterion holds, the evidence (references) and a phrase saying what was found."""

    holds: bool
    evidence: tuple[str, ...] = ()
    detail: str = ""


def met_criteria(rationale: str) -> set[str]:
    """The criterion ids a stored rationale names (`[id] ...`)."""
    return set(CRITERION_TAG.findall(rationale or ""))


def unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class Stratifier:
    """Evaluates rule sets and measures; built once per rule book (code lookups are precomputed)."""

    def __init__(self, book: RuleBook) -> None:
        self.book = book
        self.groups: dict[str, dict[tuple[str, str], list[CodeGroup]]] = {}
        for name, groups in book.code_lists.items():
            index: dict[tuple[str, str], list[CodeGroup]] = {}
            for group in groups:
                for system, codes in group.codes.items():
                    for code in codes:
                        index.setdefault((system, code), []).append(group)
            self.groups[name] = index
        self.deficits: dict[str, dict[tuple[str, str], list[str]]] = {}
        for measure in book.measures.values():
            if measure.score_kind == "efi":
                found: dict[tuple[str, str], list[str]] = {}
                for deficit, systems in measure.deficits.items():
                    for system, codes in systems.items():
                        for code in codes:
                            found.setdefault((system, code), []).append(deficit)
                self.deficits[measure.code] = found

    def assess(self, facts: PatientFacts, as_of: date, methods: Iterable[RuleSet | Measure] | None = None
               ) -> list[Result]:
        """One result per rule set and measure (in the rule book's order)."""
        results = []
        for method in methods if methods is not None else self.book.methods:
            if isinstance(method, RuleSet):
                results.append(self.rule_set(method, facts, as_of))
            elif method.score_kind == "hfrs":
                results.append(self.hfrs(method, facts, as_of))
            else:
                results.append(self.efi(method, facts, as_of))
        return results

    # -------------------------------------------------------------- rule sets

    def rule_set(self, rule_set: RuleSet, facts: PatientFacts, as_of: date) -> Result:
        baseline = Result(rule_set, rule_set.tiers.not_met, None, (f"Patient/{facts.id}",), "No criterion met", ())
        for check in rule_set.applies:
            if not self.check(check, facts, as_of).holds:
                return baseline
        met: list[tuple[Criterion, Outcome]] = []
        for criterion in rule_set.criteria:
            outcome = self.criterion(criterion, facts, as_of)
            if outcome.holds:
                met.append((criterion, outcome))
        if not met:
            return baseline
        tiers = rule_set.tiers
        tier = tiers.several_met if len(met) >= tiers.several else tiers.met
        basis = unique(ref for _c, outcome in met for ref in outcome.evidence)
        rationale = "; ".join(f"[{c.id}] {c.title}: {o.detail}" for c, o in met)
        return Result(rule_set, tier, float(met[0][0].priority), basis, rationale, tuple(c.id for c, _o in met))

    def criterion(self, criterion: Criterion, facts: PatientFacts, as_of: date) -> Outcome:
        evidence: list[str] = []
        details = []
        for check in criterion.checks:
            outcome = self.check(check, facts, as_of)
            if not outcome.holds:
                return Outcome(False)
            evidence.extend(outcome.evidence)
            details.append(outcome.detail)
        return Outcome(True, unique(evidence), ", ".join(d for d in details if d))

    def check(self, check: Check, facts: PatientFacts, as_of: date) -> Outcome:
        kind = check.kind
        if kind == "age":
            return self.age(check, facts, as_of)
        if kind == "admissions":
            return self.admissions(check, facts, as_of)
        if kind == "residence":
            return self.residence(check, facts, as_of)
        if kind == "medicines":
            return self.medicines(check, facts)
        if kind == "long-term-conditions":
            return self.conditions(check, facts)
        if kind == "nomination":
            refs = tuple(f"ServiceRequest/{i}" for i, day in facts.nominations if day is None or day <= as_of)
            return Outcome(bool(refs), refs, "nominated by a GP" if refs else "")
        return self.finding(check, facts)

    @staticmethod
    def within(check: Check, low: float) -> bool:
        return low >= (check.min if check.min is not None else 1) and (check.max is None or low <= check.max)

    def age(self, check: Check, facts: PatientFacts, as_of: date) -> Outcome:
        if facts.birth is None:
            return Outcome(False)
        age = age_on(facts.birth, as_of)
        holds = (check.min is None or age >= check.min) and (check.max is None or age <= check.max)
        return Outcome(holds, (f"Patient/{facts.id}",), f"aged {age}")

    def admissions(self, check: Check, facts: PatientFacts, as_of: date) -> Outcome:
        start = add_months(as_of, -check.within_months) if check.within_months else None
        counted: list[tuple[Admission, list[tuple[str, str, str]]]] = []
        for admission in facts.admissions:
            if admission.start > as_of or (start is not None and admission.start <= start):
                continue
            if not method_matches(check.method, admission):
                continue
            if not check.diagnoses:
                counted.append((admission, []))
                continue
            age = age_on(facts.birth, admission.start) if facts.birth else None
            matched = [(condition, code, rule.title or str(rule.matcher)) for condition, code, primary
                       in admission.diagnoses for rule in check.diagnoses if rule.holds(code, primary, age)]
            if matched:
                counted.append((admission, matched))
        if not self.within(check, len(counted)):
            return Outcome(False)
        evidence = []
        for admission, matched in counted:
            evidence.append(f"Encounter/{admission.id}")
            evidence.extend(f"Condition/{condition}" for condition, _code, _t in matched)
        kind = {"emergency": "emergency admission", "elective": "elective admission"}.get(check.method, "admission")
        window = f" in {check.within_months} months" if check.within_months else ""
        if check.diagnoses:
            parts = [f"{a.start.isoformat()} " + ", ".join(dict.fromkeys(f"{code} ({title})" for _c, code, title in m))
                     for a, m in counted]
            detail = f"{kind}{'s' if len(counted) > 1 else ''}{window}: " + "; ".join(parts)
        else:
            detail = f"{len(counted)} {kind}s{window} (" + ", ".join(a.start.isoformat() for a, _m in counted) + ")"
        return Outcome(True, unique(evidence), detail)

    def residence(self, check: Check, facts: PatientFacts, as_of: date) -> Outcome:
        groups = [g for g in self.book.residence if g.id in check.settings]
        evidence: list[str] = []
        details: list[str] = []
        for finding in facts.findings:
            if finding.active and (finding.day is None or finding.day <= as_of) and \
                    any(g.holds(system, code) for g in groups for system, code in finding.codes):
                evidence.append(f"Observation/{finding.id}")
                details.append(f"GP record: lives in a care home ({finding.day.isoformat() if finding.day else '?'})")
        statuses = [a for a in facts.accommodation if a.day is None or a.day <= as_of]
        if statuses:
            latest = max(statuses, key=lambda a: a.day or date.min)
            if any(latest.values & g.accommodation or latest.snomed & g.codes.get("snomed", frozenset())
                   for g in groups):
                evidence.append(f"Observation/{latest.id}")
                details.append("social care: " + ", ".join(sorted(latest.values)))
        for service in facts.services:
            if service.open and any(service.service_type in g.service_types for g in groups):
                evidence.append(f"EpisodeOfCare/{service.id}")
                details.append(f"placement: {service.component or service.service_type}")
        return Outcome(bool(evidence), unique(evidence), "; ".join(details))

    def medicines(self, check: Check, facts: PatientFacts) -> Outcome:
        chosen: dict[str, str] = {}
        for medicine in facts.medicines:
            if medicine.status == "active" and medicine.prescription_type in check.prescription_types:
                chosen.setdefault(medicine.key, medicine.id)
        if not self.within(check, len(chosen)):
            return Outcome(False)
        kinds = "repeat medicines" if "acute" not in check.prescription_types else "prescription drugs"
        return Outcome(True, tuple(f"MedicationRequest/{i}" for i in chosen.values()), f"{len(chosen)} {kinds}")

    def conditions(self, check: Check, facts: PatientFacts) -> Outcome:
        index = self.groups.get(check.code_list, {})
        found: dict[str, tuple[CodeGroup, list[str]]] = {}
        for problem in facts.problems:
            if not problem.active:
                continue
            for group in matching_groups(index, problem, self.book.code_lists.get(check.code_list, ())):
                found.setdefault(group.id, (group, []))[1].append(f"Condition/{problem.id}")
        if not self.within(check, len(found)):
            return Outcome(False)
        names = ", ".join(group.title.lower() for group, _refs in found.values())
        evidence = unique(ref for _g, refs in found.values() for ref in refs)
        return Outcome(True, evidence, f"{len(found)} long-term conditions ({names})")

    def finding(self, check: Check, facts: PatientFacts) -> Outcome:
        refs = [f"{entry.type}/{entry.id}" for entry in [*facts.findings, *facts.problems] if entry.active and
                any(code in check.codes.get(system, ()) for system, code in entry.codes)]
        return Outcome(self.within(check, len(refs)), unique(refs), f"{len(refs)} coded findings")

    # --------------------------------------------------------------- measures

    def hfrs(self, measure: Measure, facts: PatientFacts, as_of: date) -> Result:
        baseline = Result(measure, measure.tier(0.0), 0.0, (f"Patient/{facts.id}",), "HFRS 0", ())
        for check in measure.applies:
            if not self.check(check, facts, as_of).holds:
                return baseline
        start = add_months(as_of, -measure.within_months)
        categories: dict[str, list[str]] = {}
        admissions: dict[str, str] = {}
        for admission in facts.admissions:
            if not (start < admission.start <= as_of) or not method_matches(measure.method, admission):
                continue
            for condition, code, _primary in admission.diagnoses:
                category = code[:3]
                if category in measure.points:
                    categories.setdefault(category, []).append(f"Condition/{condition}")
                    admissions[admission.id] = f"Encounter/{admission.id}"
        if not categories:
            return baseline
        score = round(sum(measure.points[c] for c in categories), 1)
        ranked = sorted(categories, key=lambda c: (-measure.points[c], c))
        basis = unique([*admissions.values(), *(ref for c in ranked for ref in categories[c])])
        parts = ", ".join(f"{c} {measure.points[c]:g}" for c in ranked)
        rationale = (f"HFRS {score:g} from {len(categories)} ICD-10 categories in {len(admissions)} admissions in "
                     f"{measure.within_months} months: {parts}")
        return Result(measure, measure.tier(score), score, basis, rationale, tuple(ranked))

    def efi(self, measure: Measure, facts: PatientFacts, as_of: date) -> Result:
        baseline = Result(measure, measure.tier(0.0), 0.0, (f"Patient/{facts.id}",), "eFI 0 (no deficit)", ())
        for check in measure.applies:
            if not self.check(check, facts, as_of).holds:
                return baseline
        index = self.deficits.get(measure.code, {})
        present: dict[str, list[str]] = {}
        for entry in [*facts.problems, *facts.findings]:
            if entry.day is not None and entry.day > as_of:
                continue
            for pair in entry.codes:
                for deficit in index.get(pair, ()):
                    present.setdefault(deficit, []).append(f"{entry.type}/{entry.id}")
        since = add_months(as_of, -measure.polypharmacy_months)
        medicines: dict[str, str] = {}
        for medicine in facts.medicines:
            recent = (medicine.authored is not None and since < medicine.authored <= as_of) or \
                     (medicine.ended is not None and medicine.ended > since)
            if medicine.status == "active" or recent:
                medicines.setdefault(medicine.key, f"MedicationRequest/{medicine.id}")
        if len(medicines) >= measure.polypharmacy_min:
            present["polypharmacy"] = list(medicines.values())
        if not present:
            return baseline
        score = round(len(present) / measure.denominator, 4)
        names = sorted(present)
        basis = unique(ref for name in names for ref in present[name])
        rationale = f"eFI {score:g} ({len(present)} of {measure.denominator} deficits): " + ", ".join(names)
        return Result(measure, measure.tier(score), score, basis, rationale, tuple(names))


def method_matches(method: str, admission: Admission) -> bool:
    if method == "emergency":
        return admission.emergency
    if method == "elective":
        return admission.method.startswith("1")
    return True


def matching_groups(index: dict[tuple[str, str], list[CodeGroup]], entry: Coded,
                    groups: tuple[CodeGroup, ...]) -> list[CodeGroup]:
    found: dict[str, CodeGroup] = {}
    for pair in entry.codes:
        for group in index.get(pair, ()):
            found[group.id] = group
    for group in groups:
        if group.prefixes and group.id not in found and any(group.holds(s, c) for s, c in entry.codes):
            found[group.id] = group
    return list(found.values())
