"""PATCH documents: JSON Patch (RFC 6902) and FHIRPath Patch (a Parameters resource)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from .elements import Element, shared_model
from .outcome import FhirError, Issue, bad_request

JSON_PATCH_TYPES = ("application/json-patch+json",)
FHIRPATH_PATCH_TYPES = ("application/fhir+json", "application/json")

Patcher = Callable[[dict[str, Any]], dict[str, Any]]


def json_patch(document: Any) -> Patcher:
    """A function applying a JSON Patch; 400 if the document is malformed, 422 if it cannot apply."""
    if not isinstance(document, list):
        raise bad_request("A JSON Patch body must be a JSON array of operations")
    try:
        patch = jsonpatch.JsonPatch(document)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError, AttributeError) as exc:
        raise bad_request(f"Invalid JSON Patch: {exc}") from exc

    def apply(resource: dict[str, Any]) -> dict[str, Any]:
        try:
            return patch.apply(resource)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
            raise FhirError(422, [Issue("processing", f"The JSON Patch cannot be applied: {exc}")]) from exc

    return apply


def fhirpath_patch(parameters: Any) -> Patcher:
    """A function applying a FHIRPath Patch Parameters resource (R4 fhirpatch.html): add, insert, delete,
    replace and move, at paths of element names, `[n]` indexes, `first()`, `last()` and
    `where(name = 'literal')`, the resource root included. 400 for a malformed document, 422 when an
    operation cannot apply (its path matches nothing or several elements, a wrong type, an index out of range)."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise bad_request("A FHIRPath Patch body must be a Parameters resource")
    listed = parameters.get("parameter", [])
    if not isinstance(listed, list) or not listed:
        raise bad_request("A FHIRPath Patch needs at least one operation parameter", "Parameters.parameter")
    operations = [PatchOperation.parse(p, f"Parameters.parameter[{i}]") for i, p in enumerate(listed)]

    def apply(resource: dict[str, Any]) -> dict[str, Any]:
        result = copy.deepcopy(resource)
        for operation in operations:
            operation.apply(result)
        return result

    return apply


@dataclass(frozen=True)
class Location:
    """Where an element sits: its parent object and that object's type, its JSON key, its index when it is
    a list item, and its own type."""

    parent: dict[str, Any] | None
    parent_type: str | None
    key: str
    index: int | None
    type: str | None

    def value(self, root: dict[str, Any]) -> Any:
        if self.parent is None:
            return root
        held = self.parent[self.key]
        return held if self.index is None else held[self.index]


@dataclass(frozen=True)
class PatchOperation:
    """One operation of a FHIRPath Patch, checked for form when parsed."""

    kind: str
    path: str
    steps: tuple[str, ...]
    where: str
    name: str | None = None
    value: Any = None
    value_type: str | None = None
    index: int | None = None
    source: int | None = None
    destination: int | None = None

    @classmethod
    def parse(cls, parameter: Any, where: str) -> PatchOperation:
        if not isinstance(parameter, dict) or parameter.get("name") != "operation":
            raise bad_request("Every FHIRPath Patch parameter must be named 'operation'", where)
        listed = parameter.get("part", [])
        if not isinstance(listed, list):
            raise bad_request("The parts of a FHIRPath Patch operation must be a list", f"{where}.part")
        parts = {p["name"]: p for p in listed if isinstance(p, dict) and isinstance(p.get("name"), str)}
        kind = parts.get("type", {}).get("valueCode")
        path = parts.get("path", {}).get("valueString")
        if kind not in OPERATIONS or not isinstance(path, str) or not path.strip():
            raise bad_request("A FHIRPath Patch operation needs a type (add, insert, delete, replace or move) and a "
                              "path", where)
        needed = OPERATIONS[kind]
        missing = [name for name in needed if name not in parts]
        if missing:
            raise bad_request(f"A FHIRPath Patch {kind} needs {', '.join(needed)}; {', '.join(missing)} is missing",
                              where)
        name = parts.get("name", {}).get("valueString")
        if "name" in needed and not (isinstance(name, str) and name.isidentifier()):
            raise bad_request(f"The name of a FHIRPath Patch {kind} must be an element name", f"{where}.part")
        integers = {}
        for key in ("index", "source", "destination"):
            number = parts.get(key, {}).get("valueInteger")
            if key in needed and (not isinstance(number, int) or isinstance(number, bool) or number < 0):
                raise bad_request(f"The {key} of a FHIRPath Patch {kind} must be a non-negative valueInteger",
                                  f"{where}.part")
            integers[key] = number
        value, value_type = part_value(parts.get("value"), where)
        return cls(kind, path, path_steps(path, where), where, name, value, value_type, **integers)

    def fail(self, message: str) -> FhirError:
        return FhirError(422, [Issue("processing", f"FHIRPath Patch {self.kind} at {self.path!r}: {message}",
                                     (self.where,))])

    def apply(self, resource: dict[str, Any]) -> None:
        if self.steps[0] != resource.get("resourceType"):
            raise self.fail(f"the path must start with {resource.get('resourceType')}")
        if self.kind in ("insert", "move"):
            self.apply_to_list(resource)
            return
        found = evaluate(resource, self.steps)
        if self.kind == "delete":
            if len(found) > 1:
                raise self.fail(f"it matches {len(found)} elements; only a single element can be deleted")
            if found and found[0].parent is None:
                raise self.fail("the resource itself cannot be deleted (DELETE the resource instead)")
            if found:
                remove(found[0])
            return
        if len(found) != 1:
            raise self.fail("it matches no element" if not found else f"it matches {len(found)} elements, not one")
        target = found[0]
        if self.kind == "replace":
            self.replace(resource, target)
        else:
            self.add(target.value(resource), target.type)

    def add(self, target: Any, owner: str | None) -> None:
        if not isinstance(target, dict):
            raise self.fail("elements can only be added to an element with children")
        assert self.name is not None
        element = shared_model().element(owner or "", self.name) if owner else None
        if owner and element is None:
            raise self.fail(f"{owner} has no element {self.name!r}")
        key, value = self.placed(element, self.name)
        if element is not None and element.many:
            held = target.setdefault(key, [])
            if not isinstance(held, list):
                raise self.fail(f"{self.name} is not a list")
            held.append(value)
            return
        variants = [k for k, _t in element.keys] if element is not None else [key]
        if any(k in target for k in variants):
            raise self.fail(f"{self.name} already exists; add only adds an element that repeats or is absent "
                            "(use replace)")
        target[key] = value

    def replace(self, resource: dict[str, Any], target: Location) -> None:
        if target.parent is None:
            raise self.fail("the resource itself cannot be replaced")
        element = element_of(target)
        key, value = self.placed(element, element.name if element is not None else target.key)
        if target.index is not None:
            target.parent[target.key][target.index] = value
        elif key != target.key:  # a choice element changing type: valueQuantity to valueString
            del target.parent[target.key]
            target.parent[key] = value
        else:
            target.parent[key] = value

    def apply_to_list(self, resource: dict[str, Any]) -> None:
        owners = evaluate(resource, self.steps[:-1])
        if len(owners) != 1 or not isinstance(owners[0].value(resource), dict):
            raise self.fail("the path must name one list" + ("" if owners else " (its parent does not exist)"))
        parent, owner = owners[0].value(resource), owners[0].type
        name = self.steps[-1]
        element = shared_model().element(owner or "", name) if owner else None
        if element is not None and not element.many:
            raise self.fail(f"{name} does not repeat")
        items = parent.get(name, [])
        if not isinstance(items, list):
            raise self.fail(f"{name} is not a list")
        if self.kind == "insert":
            assert self.index is not None
            if self.index > len(items):
                raise self.fail(f"index {self.index} is beyond the end of the list ({len(items)} elements)")
            _key, value = self.placed(element, name)
            items.insert(self.index, value)
            parent[name] = items
            return
        assert self.source is not None and self.destination is not None
        if self.source >= len(items) or self.destination >= len(items):
            raise self.fail(f"source {self.source} and destination {self.destination} must be indexes of the list "
                            f"({len(items)} elements)")
        items.insert(self.destination, items.pop(self.source))

    def placed(self, element: Element | None, name: str) -> tuple[str, Any]:
        """The JSON key and value for a value of this operation placed in `element` (checking its type)."""
        if self.value is None:
            raise self.fail("it needs a value")
        if element is None:
            return name, self.value
        if self.value_type is None:  # a value given as parts: an anonymous or complex element
            if element.choice:
                raise self.fail(f"{name} takes a typed value (value[x]), not parts")
            return name, shape_parts(self.value, type_of(element))
        chosen = next((t for t in element.types if t.lower() == self.value_type.lower()), None)
        if chosen is None:
            allowed = ", ".join(element.types) or "parts"
            raise self.fail(f"{name} takes {allowed}, not {self.value_type}")
        return (name + chosen[:1].upper() + chosen[1:] if element.choice else name), self.value


OPERATIONS = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}
STEP = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9_]*)(?:\[(?P<index>[0-9]+)\])?")
WHERE = re.compile(r"where\(\s*(?P<name>[A-Za-z][A-Za-z0-9_]*)\s*=\s*'(?P<value>(?:[^'\\]|\\.)*)'\s*\)")


def part_value(part: Any, where: str) -> tuple[Any, str | None]:
    """(value, its FHIR type) of a `value` part: `valueDate` -> ("1930-01-01", "Date"); parts -> (dict, None)."""
    if not isinstance(part, dict):
        return None, None
    for key, value in part.items():
        if key.startswith("value") and len(key) > 5:
            return value, key[5:]
    if isinstance(part.get("part"), list):
        return {"__parts__": [p for p in part["part"] if isinstance(p, dict)]}, None
    raise bad_request("A FHIRPath Patch value part needs a value[x] or parts", f"{where}.part")


def shape_parts(value: Any, owner: str | None) -> Any:
    """An element built from value parts (the spec's way to add anonymous elements such as Patient.contact):
    each part's name is a child element, repeated children become lists."""
    if not isinstance(value, dict) or "__parts__" not in value:
        return value
    model = shared_model()
    built: dict[str, Any] = {}
    for part in value["__parts__"]:
        name = part.get("name")
        if not isinstance(name, str):
            continue
        child_value, child_type = part_value(part, "")
        element = model.element(owner, name) if owner else None
        if child_value is not None and child_type is None:
            child_value = shape_parts(child_value, type_of(element))
        key = name + child_type if element is not None and element.choice and child_type else name
        if element is not None and element.many:
            built.setdefault(key, []).append(child_value)
        else:
            built[key] = child_value
    return built


def type_of(element: Element | None) -> str | None:
    """The type an element's value has (its backbone's name for an anonymous element)."""
    if element is None:
        return None
    return element.ref or (element.types[0] if element.types else None)


def path_steps(path: str, where: str) -> tuple[str, ...]:
    """`Patient.name[0].given` -> ("Patient", "name[0]", "given"): the steps outside quotes and brackets."""
    steps, current, depth, quoted = [], [], 0, False
    for char in path.strip():
        if char == "'" and (not current or current[-1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "." and not quoted and depth == 0:
            steps.append("".join(current))
            current = []
        else:
            current.append(char)
    steps.append("".join(current))
    if quoted or depth or not STEP.fullmatch(steps[0]) or "[" in steps[0]:
        raise bad_request(f"FHIRPath Patch path {path!r} must start with the resource type", where)
    for step in steps[1:]:
        if not (STEP.fullmatch(step) or WHERE.fullmatch(step) or step in ("first()", "last()")):
            raise bad_request(f"FHIRPath Patch path {path!r}: {step!r} is not an element name, [n], first(), "
                              "last() or where(name = 'value')", where)
    return tuple(steps)


def evaluate(resource: dict[str, Any], steps: tuple[str, ...]) -> list[Location]:
    """The elements a path selects, in document order."""
    found = [Location(None, None, "", None, resource.get("resourceType"))]
    model = shared_model()
    for step in steps[1:]:
        if step == "first()":
            found = found[:1]
            continue
        if step == "last()":
            found = found[-1:]
            continue
        condition = WHERE.fullmatch(step)
        if condition is not None:
            wanted = re.sub(r"\\(.)", r"\1", condition["value"])
            found = [loc for loc in found if isinstance(value := loc.value(resource), dict)
                     and value.get(condition["name"]) == wanted]
            continue
        matched = STEP.fullmatch(step)
        assert matched is not None
        name, index = matched["name"], matched["index"]
        following: list[Location] = []
        for location in found:
            value = location.value(resource)
            if not isinstance(value, dict):
                continue
            element = model.element(location.type, name) if location.type else None
            keys = [k for k, _t in element.keys] if element is not None else [name]
            for key in keys:
                if key not in value:
                    continue
                child_type = element.type_for_key(key) if element is not None else None
                held = value[key]
                if isinstance(held, list):
                    following.extend(Location(value, location.type, key, i, child_type) for i in range(len(held)))
                else:
                    following.append(Location(value, location.type, key, None, child_type))
        if index is not None:
            following = following[int(index):int(index) + 1]
        found = following
    return found


def element_of(location: Location) -> Element | None:
    """The element definition a location's JSON key belongs to (None when its parent's type is unknown)."""
    if location.parent_type is None:
        return None
    found = shared_model().by_json_key(location.parent_type).get(location.key)
    return None if found is None else found[0]


def remove(location: Location) -> None:
    """Delete the element at a location (a list left empty is removed too, as FHIR JSON has no empty lists)."""
    assert location.parent is not None
    if location.index is None:
        del location.parent[location.key]
        return
    items = location.parent[location.key]
    items.pop(location.index)
    if not items:
        del location.parent[location.key]
