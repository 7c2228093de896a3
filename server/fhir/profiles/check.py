"""Walking a resource against a compiled profile, collecting issues with their FHIRPath locations.

Checked: cardinality, fixed and pattern values, bindings, invariants, reference targets, slices and
extensions.
"""

from __future__ import annotations

import re
from typing import Any

from ..jsontext import dumps
from ..outcome import Issue
from .rules import Rule, Slicing
from .terminology import CompiledValueSet

REFERENCE_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")
TYPE_SUFFIX = re.compile(r"^[A-Z][A-Za-z]*$")
Where = str | tuple[Any, str, int | None]  # a location, rendered only when an issue needs it
PRIMITIVE_TYPES = frozenset({
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant", "date",
    "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid", "xhtml",
})


class Checker:
    """Collects the issues of one resource against one profile."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.issues: list[Issue] = []

    def add(self, code: str, message: str, location: Where, severity: str = "error") -> None:
        self.issues.append(Issue(code, f"{message} (profile {self.profile})", (render(location),), severity))

    # ----------------------------------------------------------------- walking

    def check_value(self, value: Any, rule: Rule, location: Where, value_type: str) -> None:
        """Everything about one value of an element (the element's own rules, then its children)."""
        if rule.fixed_kind:
            self.check_fixed(value, rule, location)
        if rule.binding is not None:
            self.check_binding(value, rule, location, value_type)
        if rule.targets is not None and value.__class__ is dict:
            self.check_target(value, rule, location)
        for invariant in rule.invariants:
            if not invariant.holds(value):
                code = "invariant" if invariant.severity == "error" else "informational"
                self.add(code, f"Constraint {invariant.key} failed: {invariant.human} ({rule.element_id})",
                         location, "error" if invariant.severity == "error" else "warning")
        if rule.extension is not None and value.__class__ is dict:
            self.check_children(value, rule.extension, location)
        if rule.children and value.__class__ is dict:
            self.check_children(value, rule, location)

    def check_children(self, node: dict[str, Any], rule: Rule, location: Where) -> None:
        for child in rule.children:
            self.check_element(node, child, location)

    def check_element(self, node: dict[str, Any], rule: Rule, location: Where) -> None:
        found = self.values_of(node, rule, location)
        if rule.check_cardinality:
            self.check_count(len(found), rule, location)
        if rule.slicing is not None:
            self.check_slices(found, rule.slicing, rule, location)
        if rule.active:
            for value, where, value_type in found:
                self.check_value(value, rule, where, value_type)

    def values_of(self, node: dict[str, Any], rule: Rule, location: Where) -> list[tuple[Any, Where, str]]:
        """(value, location, type) of every value of an element in a node."""
        found: list[tuple[Any, Where, str]] = []
        for key, value_type, fragment in rule.keys:
            value = node.get(key)
            if value is None:
                shadow = node.get("_" + key) if value_type in PRIMITIVE_TYPES else None
                if shadow is not None:  # a primitive present only through its extensions
                    if shadow.__class__ is list:
                        found.extend((None, (location, fragment, i), value_type) for i in range(len(shadow)))
                    else:
                        found.append((None, (location, fragment, None), value_type))
                continue
            if value.__class__ is list:
                found.extend((item, (location, fragment, index), value_type) for index, item in enumerate(value))
            else:
                found.append((value, (location, fragment, None), value_type))
        if rule.restricted_types:
            allowed = {key for key, _, _ in rule.keys}
            for key in node:
                if key.startswith(rule.name) and key not in allowed and TYPE_SUFFIX.match(key[len(rule.name):]):
                    self.add("processing", f"{rule.element_id}: type {key[len(rule.name):]} is not allowed here; "
                                           f"allowed: {', '.join(rule.types)}", (location, key, None))
        return found

    def check_count(self, count: int, rule: Rule, location: Where) -> None:
        where = (location, rule.name, None)
        if count < rule.min:
            self.add("required", f"{rule.element_id}: minimum cardinality is {rule.min}, found {count}", where)
        elif rule.max is not None and count > rule.max:
            self.add("processing", f"{rule.element_id}: maximum cardinality is {rule.max}, found {count}", where)

    def check_slices(self, found: list[tuple[Any, Where, str]], slicing: Slicing, rule: Rule, location: Where
                     ) -> None:
        counts = dict.fromkeys(slicing.by_value, 0)
        matched: list[tuple[Any, Where, str, Rule]] = []
        for value, where, value_type in found:
            key = value.get(slicing.path) if value.__class__ is dict else None
            chosen = slicing.by_value.get(key) if key.__class__ is str else None
            if chosen is None:
                if slicing.closed:
                    self.add("processing", f"{rule.element_id}: {render(where)} matches none of the slices of a "
                                           "closed slicing", where)
                continue
            counts[chosen.value] += 1
            matched.append((value, where, value_type, chosen.rule))
        for chosen in slicing.slices:
            if chosen.rule.check_cardinality:
                self.check_count(counts[chosen.value], chosen.rule, location)
        for value, where, value_type, slice_rule in matched:
            if slice_rule.active:
                self.check_value(value, slice_rule, where, value_type)

    # ----------------------------------------------------------------- value checks

    def check_fixed(self, value: Any, rule: Rule, location: Where) -> None:
        if rule.fixed_kind == "fixed":
            if value != rule.fixed:
                self.add("processing", f"{rule.element_id}: the value must be exactly {show(rule.fixed)} (fixed), "
                                       f"found {show(value)}", location)
        elif not matches_pattern(value, rule.fixed):
            self.add("processing", f"{rule.element_id}: the value must match the pattern {show(rule.fixed)}, "
                                   f"found {show(value)}", location)

    def check_target(self, value: dict[str, Any], rule: Rule, location: Where) -> None:
        target = value.get("type")
        reference = value.get("reference")
        if target is None and reference.__class__ is str:
            match = REFERENCE_TYPE.search(reference)
            target = match.group(1) if match else None
        if target.__class__ is str and target not in rule.targets:  # type: ignore[operator]
            self.add("processing", f"{rule.element_id}: a reference to a {target} is not allowed here; allowed: "
                                   f"{', '.join(sorted(rule.targets or ()))}", location)

    def check_binding(self, value: Any, rule: Rule, location: Where, value_type: str) -> None:
        binding = rule.binding
        assert binding is not None
        value_set = binding.value_set
        strength = binding.strength
        if value_type == "code":
            if value.__class__ is str and not value_set.contains_code(value):
                self.binding_issue(rule, f"code '{value}' is not in", location, "error")
        elif value_type == "Coding":
            if value.__class__ is dict:
                self.check_coding(value, rule, location, value_set, strength, alone=True)
        elif value_type == "CodeableConcept" and value.__class__ is dict:
            codings = value.get("coding")
            codings = codings if codings.__class__ is list else []  # anything else the FHIR JSON rules name
            matched = False
            for index, coding in enumerate(codings):
                if coding.__class__ is dict and self.check_coding(coding, rule, (location, "coding", index),
                                                                  value_set, strength, alone=False):
                    matched = True
            if not matched and not any(c.__class__ is dict and c.get("system").__class__ is str
                                       and value_set.covers(c["system"]) for c in codings):
                shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings if c.__class__ is dict)
                subject = f"none of the codings [{shown}] is from" if shown else "a concept with no coding is not from"
                self.binding_issue(rule, subject, location, "error" if strength == "required" else "warning")

    def check_coding(self, coding: dict[str, Any], rule: Rule, location: Where, value_set: CompiledValueSet,
                     strength: str, *, alone: bool) -> bool:
        """Whether the coding is in the value set; reports a code outside it in a system the set covers."""
        system, code = coding.get("system"), coding.get("code")
        if system.__class__ is not str or code.__class__ is not str:
            if alone:
                self.binding_issue(rule, "a coding with no system or code is not from", location, "error")
            return False
        if value_set.covers(system):
            if value_set.contains(system, code):
                return True
            self.binding_issue(rule, f"code '{system}|{code}' is not in", (location, "code", None), "error")
            return False
        if alone:
            self.binding_issue(rule, f"coding '{system}|{code}' is not from", location,
                               "error" if strength == "required" else "warning")
        return False

    def binding_issue(self, rule: Rule, subject: str, location: Where, severity: str) -> None:
        binding = rule.binding
        assert binding is not None
        self.add("code-invalid", f"{rule.element_id}: {subject} the {binding.strength} value set {binding.url}",
                 location, severity)


def render(location: Where) -> str:
    """A location chain as a FHIRPath expression (`Patient.identifier[0].value`)."""
    parts: list[str] = []
    while location.__class__ is tuple:
        location, fragment, index = location  # type: ignore[misc]
        parts.append(fragment if index is None else f"{fragment}[{index}]")
    parts.append(location)  # type: ignore[arg-type]
    return ".".join(reversed(parts))


def matches_pattern(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every element of the pattern appears in the value (lists: each pattern item
    matches some item of the value)."""
    if pattern.__class__ is dict:
        if value.__class__ is not dict:
            return False
        return all(key in value and matches_pattern(value[key], part) for key, part in pattern.items())
    if pattern.__class__ is list:
        if value.__class__ is not list:
            return False
        return all(any(matches_pattern(item, part) for item in value) for part in pattern)
    return bool(value == pattern)


def show(value: Any) -> str:
    return dumps(value).decode() if value.__class__ in (dict, list) else repr(value)
