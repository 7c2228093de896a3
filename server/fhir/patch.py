"""PATCH documents: JSON Patch (RFC 6902) and FHIRPath Patch (a Parameters resource)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

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
    except (jsonpatch.InvalidJsonPatch, TypeError) as exc:
        raise bad_request(f"Invalid JSON Patch: {exc}") from exc

    def apply(resource: dict[str, Any]) -> dict[str, Any]:
        try:
            return patch.apply(resource)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
            raise FhirError(422, [Issue("processing", f"The JSON Patch cannot be applied: {exc}")]) from exc

    return apply


def fhirpath_patch(parameters: Any) -> Patcher:
    """A function applying a FHIRPath Patch Parameters resource (simple element paths)."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise bad_request("A FHIRPath Patch body must be a Parameters resource")
    operations = [operation_of(p, i) for i, p in enumerate(parameters.get("parameter", []))]

    def apply(resource: dict[str, Any]) -> dict[str, Any]:
        result = copy.deepcopy(resource)
        for operation in operations:
            operation(result)
        return result

    return apply


def operation_of(parameter: Any, index: int) -> Callable[[dict[str, Any]], None]:
    where = f"Parameters.parameter[{index}]"
    if not isinstance(parameter, dict) or parameter.get("name") != "operation":
        raise bad_request("Every FHIRPath Patch parameter must be named 'operation'", where)
    parts = {p.get("name"): p for p in parameter.get("part", []) if isinstance(p, dict)}
    kind = parts.get("type", {}).get("valueCode")
    path = parts.get("path", {}).get("valueString")
    if kind not in ("add", "insert", "delete", "replace", "move") or not isinstance(path, str):
        raise bad_request("A FHIRPath Patch operation needs a type (add|insert|delete|replace|move) and a path",
                          where)
    value = part_value(parts.get("value"))
    name = parts.get("name", {}).get("valueString")
    index_value = parts.get("index", {}).get("valueInteger")
    steps = path_steps(path, where)

    def run(resource: dict[str, Any]) -> None:
        parent, key, position = locate(resource, steps, where)
        if kind == "add":
            if not isinstance(name, str):
                raise bad_request("An add operation needs a name", where)
            target = container(parent, key, position, where)
            existing = target.get(name)
            if isinstance(existing, list):
                existing.append(value)
            else:
                target[name] = value
        elif kind == "replace":
            set_value(parent, key, position, value, where)
        elif kind == "delete":
            delete_value(parent, key, position)
        elif kind == "insert":
            items = parent.setdefault(key, []) if position is None else None
            if not isinstance(items, list) or not isinstance(index_value, int):
                raise bad_request("An insert operation needs a list path and an index", where)
            items.insert(index_value, value)
        else:
            source = parts.get("source", {}).get("valueInteger")
            destination = parts.get("destination", {}).get("valueInteger")
            items = parent.get(key)
            if not isinstance(items, list) or not isinstance(source, int) or not isinstance(destination, int):
                raise bad_request("A move operation needs a list path, source and destination", where)
            items.insert(destination, items.pop(source))

    return run


def part_value(part: Any) -> Any:
    if not isinstance(part, dict):
        return None
    for key, value in part.items():
        if key.startswith("value"):
            return value
    if "part" in part:
        return {p["name"]: part_value(p) for p in part["part"] if isinstance(p, dict) and "name" in p}
    return None


def path_steps(path: str, where: str) -> list[tuple[str, int | None]]:
    """`Patient.name[0].given` -> [("name", 0), ("given", None)] (the type name is dropped)."""
    pieces = path.split(".")
    if len(pieces) < 2:
        raise bad_request(f"FHIRPath Patch path {path!r} must start with the resource type", where)
    steps: list[tuple[str, int | None]] = []
    for piece in pieces[1:]:
        name, _, rest = piece.partition("[")
        index = None
        if rest:
            if not rest.endswith("]") or not rest[:-1].isdigit():
                raise bad_request(f"Unsupported FHIRPath Patch path {path!r}", where)
            index = int(rest[:-1])
        if not name.isidentifier():
            raise bad_request(f"Unsupported FHIRPath Patch path {path!r}", where)
        steps.append((name, index))
    return steps


def locate(resource: dict[str, Any], steps: list[tuple[str, int | None]], where: str
           ) -> tuple[dict[str, Any], str, int | None]:
    node: Any = resource
    for name, index in steps[:-1]:
        node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, list):
            node = node[index or 0] if len(node) > (index or 0) else None
        if not isinstance(node, dict):
            raise FhirError(422, [Issue("processing", "The FHIRPath Patch path does not exist", (where,))])
    return node, steps[-1][0], steps[-1][1]


def container(parent: dict[str, Any], key: str, position: int | None, where: str) -> dict[str, Any]:
    target = parent.get(key)
    if isinstance(target, list):
        target = target[position or 0] if target else None
    if not isinstance(target, dict):
        raise FhirError(422, [Issue("processing", "The FHIRPath Patch add target does not exist", (where,))])
    return target


def set_value(parent: dict[str, Any], key: str, position: int | None, value: Any, where: str) -> None:
    if key not in parent:
        raise FhirError(422, [Issue("processing", "The FHIRPath Patch replace target does not exist", (where,))])
    if position is not None and isinstance(parent[key], list):
        parent[key][position] = value
    else:
        parent[key] = value


def delete_value(parent: dict[str, Any], key: str, position: int | None) -> None:
    if key not in parent:
        return
    if position is not None and isinstance(parent[key], list):
        if position < len(parent[key]):
            parent[key].pop(position)
        if not parent[key]:
            del parent[key]
    else:
        del parent[key]
