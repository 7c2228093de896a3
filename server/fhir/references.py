"""Literal references inside a resource: finding them, telling local ones apart, naming where they sit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

BUNDLE_URNS = ("urn:uuid:", "urn:oid:")
REFERENCE_IN_JSON = re.compile(r'"reference":"((?:[^"\\]|\\.)*)"')
"""A `reference` element with a string value in compact JSON text (an unescaped quote can only bound a
string, so this never matches inside one)."""
LOCAL_REFERENCE = re.compile(r"([A-Z][A-Za-z]{1,63})/([^/?#\s]+)(?:/_history/[^/?#\s]+)?")
"""`Type/id` (or a version of it): any id text, so one no resource can have (`a_b`, 65 characters) is looked up,
found missing and refused like any other missing target, never passed over as not a reference of this server."""


def reference_values_in_json(text: str) -> Iterator[str]:
    """Every `reference` string in a resource's compact JSON text (its contained resources too): one scan of
    the text instead of a walk of the parsed resource."""
    for match in REFERENCE_IN_JSON.finditer(text):
        value = match.group(1)
        yield value if "\\" not in value else json.loads(f'"{value}"')


def local_target(reference: str, base_url: str) -> tuple[str, str] | None:
    """(type, id) of a literal reference to a resource on this server: `Type/id`, `Type/id/_history/v`
    or either under the server's base URL; None for contained (`#x`), conditional, URN, logical and
    other servers' references."""
    if base_url and reference.startswith(base_url + "/"):
        reference = reference[len(base_url) + 1:]
    found = LOCAL_REFERENCE.fullmatch(reference)
    return None if found is None else (found.group(1), found.group(2))


def element_path(resource: Any, root: str, wanted: Callable[[str], bool]) -> str:
    """The FHIRPath (`Observation.performer[1].reference`) of the first `reference` element for which
    `wanted` holds, or `root` when there is none (for error messages only: it walks with paths)."""
    stack: list[tuple[Any, str]] = [(resource, root)]
    while stack:
        node, path = stack.pop(0)
        if isinstance(node, dict):
            value = node.get("reference")
            if isinstance(value, str) and wanted(value):
                return f"{path}.reference"
            stack.extend((item, f"{path}.{key}") for key, item in node.items() if isinstance(item, (dict, list)))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(node)
                         if isinstance(item, (dict, list)))
    return root
