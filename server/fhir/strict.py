"""The FHIR JSON rules (R4 json.html, datatypes.html) a resource meets before it is stored, per element type.

Each element's type comes from the vendored R4 element tables (`ElementModel`); a type's keys are compiled
once into slots (cached), and a resource is checked in one walk: every primitive has its JSON type
(boolean true/false, integer kinds and decimal JSON numbers, every other primitive a JSON string), its
lexical form, no empty or null values, strings at most MAX_STRING_CHARS, `_element` primitive extensions
lined up with their values, no unknown elements, and nesting at most MAX_JSON_DEPTH deep.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .elements import PRIMITIVES, ElementModel
from .jsontext import MAX_JSON_DEPTH, ExactNumber, dumps
from .outcome import Issue

# R4 datatypes.html: "strings SHALL NOT exceed 1MB (1024*1024 characters) in size"; counted in characters
MAX_STRING_CHARS = 1024 * 1024
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
NUMBER_CLASSES = (int, float, ExactNumber)
RESOURCE = "Resource"

# The lexical forms of datatypes.html (`regex` of each primitive's definition); base64Binary as RFC 4648
# (R4's own regex leaves out `/` by mistake), whitespace allowed between groups as R4 allows it.
YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
MONTH, DAY = r"(0[1-9]|1[0-2])", r"(0[1-9]|[1-2][0-9]|3[0-1])"
TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
LEXICAL_FORMS = {
    "date": f"{YEAR}(-{MONTH}(-{DAY})?)?",
    "dateTime": f"{YEAR}(-{MONTH}(-{DAY}(T{TIME}{ZONE})?)?)?",
    "instant": f"{YEAR}-{MONTH}-{DAY}T{TIME}{ZONE}",
    "time": TIME,
    "code": r"[^\s]+(\s[^\s]+)*",
    "id": r"[A-Za-z0-9\-.]{1,64}",
    "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
    "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "uri": r"\S*",
    "url": r"\S*",
    "canonical": r"\S*",
    "base64Binary": r"[A-Za-z0-9+/\s]*(=\s*){0,2}",
}
UNSIZED = frozenset({"base64Binary", "xhtml"})  # not strings in R4's sense: no 1 MB cap
INTEGER_RANGES = {"integer": (INT32_MIN, INT32_MAX), "unsignedInt": (0, INT32_MAX), "positiveInt": (1, INT32_MAX)}
WHITESPACE = str.maketrans("", "", " \t\r\n")

Problem = tuple[str, str]  # (OperationOutcome issue code, what is wrong)
Check = Callable[[Any], "Problem | None"]


def described(value: Any) -> str:
    """A JSON value as a message shows it: its JSON type and a short rendering."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "the string " + dumps(value if len(value) <= 40 else value[:37] + "...").decode()
    return "the number " + dumps(value).decode()[:40]


def a(kind: str) -> str:
    """The kind with its indefinite article (`an integer`, `a code`)."""
    return f"{'an' if kind in ('integer', 'unsignedInt', 'id', 'instant', 'oid', 'xhtml') else 'a'} {kind}"


def boolean_check(value: Any) -> Problem | None:
    if value is True or value is False:
        return None
    return "structure", f"a boolean is JSON true or false, not {described(value)}"


def decimal_check(value: Any) -> Problem | None:
    if value.__class__ in NUMBER_CLASSES:
        return None
    return "structure", f"a decimal is a JSON number, not {described(value)}"


def integer_check(kind: str) -> Check:
    low, high = INTEGER_RANGES[kind]

    def check(value: Any) -> Problem | None:
        if value.__class__ is int and low <= value <= high:
            return None
        code = "value" if value.__class__ is int else "structure"
        return code, f"{a(kind)} is a JSON integer (no fraction or exponent) from {low} to {high}, " \
                     f"not {described(value)}"
    return check


def string_check(kind: str) -> Check:
    """JSON string, not empty, no control characters, the lexical form of its kind, at most 1 MB."""
    form = re.compile(LEXICAL_FORMS[kind]) if kind in LEXICAL_FORMS else None
    sized = kind not in UNSIZED
    padded_groups = kind == "base64Binary"

    def check(value: Any) -> Problem | None:
        if value.__class__ is not str:
            return "structure", f"{a(kind)} is a JSON string, not {described(value)}"
        if not value:
            return "structure", f"{a(kind)} may not be empty (FHIR JSON has no empty strings)"
        if sized and len(value) > MAX_STRING_CHARS:
            return "too-long", f"{a(kind)} holds at most {MAX_STRING_CHARS} characters (1 MB), not {len(value)}"
        if not value.isprintable() and CONTROL.search(value) is not None:  # the test first: no regex mostly
            return "value", f"{a(kind)} may not hold control characters below U+0020 other than tab, CR and LF"
        if form is not None and form.fullmatch(value) is None:
            return "value", f"{described(value)} is not {a(kind)}"
        if padded_groups and len(value.translate(WHITESPACE)) % 4:
            return "value", f"{a(kind)} is base64 in groups of four characters"
        return None
    return check


def primitive_check(kind: str) -> Check:
    if kind == "boolean":
        return boolean_check
    if kind == "decimal":
        return decimal_check
    if kind in INTEGER_RANGES:
        return integer_check(kind)
    return string_check(kind)


# What a JSON key of a type holds (Slot.holds), most frequent first as the walk tests them
VALUE, OBJECT, OBJECTS, VALUES, EXTENSION, RESOURCE_TYPE = range(6)


@dataclass(frozen=True, slots=True)
class Slot:
    """One JSON key of a type: a primitive value or values (`check`), their `_key` extension (`partner` is
    the value key), a complex element (`owner`: the table its objects follow, RESOURCE for a contained
    resource) or `resourceType`."""

    key: str
    holds: int
    check: Check | None = None
    owner: str = "Element"
    partner: str = ""
    many: bool = False
    contained: bool = False


Shape = dict[str, Slot]


def repeating(value: Any, where: str, found: list[Issue]) -> bool:
    """Whether a repeating element's value is a JSON array with items (else say why not)."""
    if value.__class__ is list and value:
        return True
    problem = "FHIR JSON has no empty arrays" if value.__class__ is list else \
        f"a repeating element is a JSON array, not {described(value)}"
    found.append(Issue("structure", f"{where}: {problem}", (where,)))
    return False


def report(found: list[Issue], where: str, message: str, code: str = "structure") -> None:
    found.append(Issue(code, f"{where}: {message}", (where,)))


class StrictJson:
    """Checks resources against the FHIR JSON rules; type shapes are compiled on first use and kept."""

    def __init__(self, elements: ElementModel) -> None:
        self.elements = elements
        self.shapes: dict[str, Shape] = {}
        self.checks: dict[str, Check] = {kind: primitive_check(kind) for kind in PRIMITIVES}
        self.element_shape = self.shape("Element")

    def issues(self, resource: dict[str, Any], resource_type: str) -> list[Issue]:
        """Every departure from the FHIR JSON rules, each with its FHIRPath expression."""
        found: list[Issue] = []
        self.walk(resource, self.shape(resource_type), resource_type, 1, found)
        return found

    # ------------------------------------------------------------------ compiling

    def shape(self, owner: str) -> Shape:
        shape = self.shapes.get(owner)
        if shape is None:
            shape = self.shapes[owner] = self.compile(owner)
        return shape

    def compile(self, owner: str) -> Shape:
        is_resource = owner in self.elements.resource_types or owner in ("Resource", "DomainResource")
        shape: Shape = {"resourceType": Slot("resourceType", RESOURCE_TYPE)} if is_resource else {}
        for key, (element, type_name) in self.elements.by_json_key(owner).items():
            kind = "id" if is_resource and key == "id" else type_name
            if kind in PRIMITIVES:
                check = self.checks[kind]
                shape[key] = Slot(key, VALUES if element.many else VALUE, check, partner="_" + key)
                shape["_" + key] = Slot("_" + key, EXTENSION, check, partner=key, many=element.many)
                continue
            nested = f"{owner}.{element.name}"
            if kind == "Element" and not element.ref and self.elements.children(nested):
                kind = nested  # an element defined inline in a datatype (Timing.repeat)
            shape[key] = Slot(key, OBJECTS if element.many else OBJECT, owner=kind, contained=kind == RESOURCE)
        return shape

    # ------------------------------------------------------------------ walking

    def walk(self, node: dict[str, Any], shape: Shape, path: str, depth: int, found: list[Issue]) -> None:
        if not node:
            report(found, path, "FHIR JSON has no empty objects")
            return
        if depth > MAX_JSON_DEPTH:
            report(found, path, f"nested more than {MAX_JSON_DEPTH} deep, the most this server accepts",
                   "too-costly")
            return
        shapes = self.shapes
        for key, value in node.items():
            slot = shape.get(key)
            if slot is None:
                report(found, f"{path}.{key}", f"unknown element '{key}'")
                continue
            holds = slot.holds
            if value is None:
                report(found, f"{path}.{key}", "null is only allowed inside the arrays of a repeating primitive "
                                               "and its `_` extensions, to line them up")
            elif holds == VALUE:
                if value.__class__ is list:
                    report(found, f"{path}.{key}", "the element does not repeat: a single value, not an array")
                else:
                    problem = slot.check(value)  # type: ignore[misc]
                    if problem is not None:
                        report(found, f"{path}.{key}", problem[1], problem[0])
            elif holds == OBJECT:
                if value.__class__ is dict and not slot.contained:  # the common case, without a call more
                    child = shapes.get(slot.owner) or self.shape(slot.owner)
                    self.walk(value, child, f"{path}.{key}", depth + 1, found)
                else:
                    self.complex(slot, value, f"{path}.{key}", depth + 1, found)
            elif holds == OBJECTS:
                where = f"{path}.{key}"
                if repeating(value, where, found):
                    child = shapes.get(slot.owner) or self.shape(slot.owner)
                    for index, item in enumerate(value):
                        if item.__class__ is dict and not slot.contained:
                            self.walk(item, child, f"{where}[{index}]", depth + 2, found)
                        else:
                            self.complex(slot, item, f"{where}[{index}]", depth + 2, found)
            elif holds == VALUES:
                self.primitive_array(node, slot, value, path, found)
            elif holds == EXTENSION:
                self.primitive_extension(node, slot, value, path, depth, found)

    def complex(self, slot: Slot, value: Any, path: str, depth: int, found: list[Issue]) -> None:
        """An object of a complex type, or a contained resource of the type it names."""
        if value.__class__ is not dict:
            report(found, path, f"must be a JSON object, not {described(value)}")
            return
        owner = slot.owner
        if slot.contained:
            owner = value.get("resourceType")
            if owner.__class__ is not str or owner not in self.elements.resource_types:
                report(found, path, "a resource needs a 'resourceType' naming an R4 resource type")
                return
        shape = self.shapes.get(owner)
        self.walk(value, shape if shape is not None else self.shape(owner), path, depth, found)

    def primitive_array(self, node: dict[str, Any], slot: Slot, value: Any, path: str, found: list[Issue]) -> None:
        where = f"{path}.{slot.key}"
        if not repeating(value, where, found):
            return
        check = slot.check
        assert check is not None
        for index, item in enumerate(value):
            if item is None:
                extensions = node.get(slot.partner)
                if not (extensions.__class__ is list and index < len(extensions) and extensions[index] is not None):
                    null_item(f"{where}[{index}]", slot.key, found)
            else:
                problem = check(item)
                if problem is not None:
                    report(found, f"{where}[{index}]", problem[1], problem[0])

    def primitive_extension(self, node: dict[str, Any], slot: Slot, value: Any, path: str, depth: int,
                            found: list[Issue]) -> None:
        """`_key`: the id and extensions of a primitive, an object (an array lined up with the values when
        the element repeats)."""
        where = f"{path}.{slot.partner}"
        if not slot.many:
            if value.__class__ is dict:
                self.walk(value, self.element_shape, where, depth + 1, found)
            else:
                report(found, where, f"'{slot.key}' must be a JSON object, not {described(value)}")
            return
        values = node.get(slot.partner)
        if value.__class__ is not list or not value:
            report(found, where, f"'{slot.key}' must be a JSON array lined up with '{slot.partner}', not "
                                 f"{described(value)}")
            return
        if values is not None and values.__class__ is list and len(values) != len(value):
            report(found, where, f"'{slot.key}' has {len(value)} items and '{slot.partner}' {len(values)}; they "
                                 "must line up, with null where one has nothing")
            return
        for index, item in enumerate(value):
            if item.__class__ is dict:
                self.walk(item, self.element_shape, f"{where}[{index}]", depth + 2, found)
            elif item is not None:
                report(found, f"{where}[{index}]", f"'{slot.key}' items are JSON objects or null, not "
                                                   f"{described(item)}")
            elif values.__class__ is not list:  # a null lined up with a null value is named by the values
                null_item(f"{where}[{index}]", slot.key, found)


def null_item(where: str, key: str, found: list[Issue]) -> None:
    name = key.lstrip("_")
    report(found, where, f"null where neither '{name}' nor '_{name}' has anything")
