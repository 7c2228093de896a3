"""Turns a resource into search index rows, one table per parameter type."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from ..fhir.dates import MAX_US, MIN_US, DateFormatError, parse_range
from ..fhir.elements import ElementModel
from ..fhir.fhirpath import Node, Step, compile_expression, reference_type
from ..fhir.searchparams import SearchParam, SearchParamRegistry

TOKEN_MAX = 255
STRING_MAX = 200
EXACT_MAX = 1000
URI_MAX = 512
QUANTITY_TYPES = frozenset({"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"})
ISO_CURRENCY = "urn:iso:std:iso:4217"

Rows = dict[str, list[tuple[Any, ...]]]
"""Index rows per table, as tuples in the table's column order without the leading `pk`."""

COLUMNS: dict[str, tuple[str, ...]] = {
    "token": ("pk", "sp", "system", "code"),
    "string": ("pk", "sp", "norm", "exact"),
    "date": ("pk", "sp", "lo", "hi"),
    "number": ("pk", "sp", "value"),
    "quantity": ("pk", "sp", "value", "system", "code"),
    "reference": ("pk", "sp", "ttype", "tid", "tversion"),
    "uri": ("pk", "sp", "value"),
    "composite": ("pk", "sp", "system", "code", "text", "text_system", "lo", "hi"),
    "compartment": ("pk", "patient"),
}


def normalise(text: str) -> str:
    """Case- and accent-insensitive form of a string, for string search."""
    if text.isascii():
        return " ".join(text.lower().split())[:STRING_MAX]
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())[:STRING_MAX]


def token_values(value: Any, type_name: str) -> list[tuple[str, str]]:
    """(system, code) pairs a token parameter indexes for one value."""
    if isinstance(value, bool):
        return [("", "true" if value else "false")]
    if isinstance(value, (str, int, float)):
        return [("", str(value))]
    if not isinstance(value, dict):
        return []
    if type_name == "CodeableConcept" or "coding" in value:
        pairs = []
        for coding in value.get("coding", ()):
            pairs.extend(token_values(coding, "Coding"))
        return pairs
    if type_name == "Identifier":
        return [(value.get("system", ""), str(value["value"]))] if "value" in value else []
    if type_name == "ContactPoint":
        return [(value.get("system", ""), str(value["value"]))] if "value" in value else []
    if "code" in value:
        return [(value.get("system", ""), str(value["code"]))]
    return []


def token_texts(value: Any, type_name: str) -> list[str]:
    """Display texts a token parameter's `:text` modifier matches."""
    if not isinstance(value, dict):
        return []
    texts = []
    if type_name in ("CodeableConcept", "Identifier") or "coding" in value:
        if type_name == "Identifier":
            value = value.get("type", {})
        if isinstance(value.get("text"), str):
            texts.append(value["text"])
        for coding in value.get("coding", ()):
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                texts.append(coding["display"])
    elif isinstance(value.get("display"), str):
        texts.append(value["display"])
    return texts


def string_values(value: Any, type_name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    keys = {
        "HumanName": ("text", "family", "given", "prefix", "suffix"),
        "Address": ("text", "line", "city", "district", "state", "postalCode", "country"),
    }.get(type_name)
    if keys is None:
        keys = ("text", "display", "value") if type_name != "Element" else ()
    found: list[str] = []
    for key in keys:
        item = value.get(key)
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, list):
            found.extend(entry for entry in item if isinstance(entry, str))
    return found


def date_ranges(value: Any, type_name: str) -> list[tuple[int, int]]:
    try:
        if isinstance(value, str):
            return [parse_range(value)]
        if not isinstance(value, dict):
            return []
        if type_name == "Period" or "start" in value or "end" in value:
            low = parse_range(value["start"])[0] if "start" in value else MIN_US
            high = parse_range(value["end"])[1] if "end" in value else MAX_US
            return [(low, high)] if "start" in value or "end" in value else []
        if type_name == "Timing":
            # one row spanning every event and the repeat bounds, so a Timing is one value
            ranges = [parse_range(event) for event in value.get("event", ()) if isinstance(event, str)]
            bounds = value.get("repeat", {}).get("boundsPeriod")
            if isinstance(bounds, dict):
                ranges.extend(date_ranges(bounds, "Period"))
            return [(min(r[0] for r in ranges), max(r[1] for r in ranges))] if ranges else []
    except DateFormatError:
        return []
    return []


def numbers(value: Any, type_name: str) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        if type_name == "Range" or "low" in value or "high" in value:
            return [float(v["value"]) for v in (value.get("low"), value.get("high"))
                    if isinstance(v, dict) and isinstance(v.get("value"), (int, float))]
        if isinstance(value.get("value"), (int, float)) and not isinstance(value.get("value"), bool):
            return [float(value["value"])]
    return []


def quantities(value: Any, type_name: str) -> list[tuple[float, str, str]]:
    if not isinstance(value, dict):
        return []
    if type_name == "Range" or "low" in value or "high" in value:
        found = []
        for bound in (value.get("low"), value.get("high")):
            found.extend(quantities(bound, "Quantity"))
        return found
    amount = value.get("value")
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        return []
    if type_name == "Money" or "currency" in value:
        return [(float(amount), ISO_CURRENCY, str(value.get("currency", "")))]
    code = value.get("code") or value.get("unit") or ""
    return [(float(amount), str(value.get("system", "")), str(code))]


def parse_reference(literal: str) -> tuple[str, str, str | None]:
    """(type, id or URL, version) for a literal reference."""
    if literal.startswith(("urn:uuid:", "urn:oid:")):
        return "", literal, None
    path = literal.split("?", 1)[0]
    version = None
    parts = path.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        version = parts[-1]
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        type_name, ident = parts[-2], parts[-1]
        if len(parts) == 2:
            return type_name, ident, version
        return type_name, "/".join(parts), version
    return "", path, version


class Indexer:
    """Extracts index rows for a resource with the compiled search parameters of its type."""

    def __init__(self, registry: SearchParamRegistry, model: ElementModel, base_url: str = "",
                 compartment_keys: frozenset[int] = frozenset()) -> None:
        self.registry = registry
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.compartment_keys = compartment_keys  # reference parameters placing a resource in a compartment
        self.component_steps: dict[tuple[str, str], Callable[[Node, dict[str, Any]], list[Node]]] = {}
        self.writers: dict[str, Callable[[Rows, SearchParam, list[Node], dict[str, Any]], None]] = {
            "token": self.add_tokens,
            "string": self.add_strings,
            "date": self.add_dates,
            "number": self.add_numbers,
            "quantity": self.add_quantities,
            "reference": self.add_references,
            "uri": self.add_uris,
            "composite": self.add_composites,
        }

    def rows(self, resource: dict[str, Any]) -> Rows:
        """Every index row of a resource, without its key (the writer adds `pk`)."""
        rows: Rows = {}
        evaluated: dict[str, list[Node]] = {}
        for param in self.registry.indexed(resource["resourceType"]):
            nodes = evaluated.get(param.expression)
            if nodes is None:
                nodes = evaluated[param.expression] = param.extractor(resource)  # type: ignore[misc]
            if nodes:
                writer = self.writers.get(param.type)
                if writer:
                    writer(rows, param, nodes, resource)
        if self.compartment_keys and rows.get("reference"):
            keys = self.compartment_keys
            people = {tid for sp, ttype, tid, _v in rows["reference"] if ttype == "Patient" and sp in keys}
            if people:
                rows["compartment"] = [(patient,) for patient in sorted(people)]
        return rows

    def add_tokens(self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]) -> None:
        tokens = rows.setdefault("token", [])
        seen: set[tuple[int, str, str]] = set()
        for value, type_name in nodes:
            for system, code in token_values(value, type_name):
                key = (param.key, system[:TOKEN_MAX], code[:TOKEN_MAX])
                if key not in seen:
                    seen.add(key)
                    tokens.append(key)
            texts = token_texts(value, type_name)
            if texts:
                self.add_string_values(rows, param.derived_key("text"), texts)
            if type_name == "Identifier" and isinstance(value, dict) and "value" in value:
                for system, code in token_values(value.get("type", {}), "CodeableConcept"):
                    tokens.append((param.derived_key("of-type"), system[:TOKEN_MAX],
                                   f"{code}|{value['value']}"[:TOKEN_MAX]))

    def add_strings(self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]) -> None:
        values: list[str] = []
        for value, type_name in nodes:
            values.extend(string_values(value, type_name))
        self.add_string_values(rows, param.key, values)

    @staticmethod
    def add_string_values(rows: Rows, key: int, values: list[str]) -> None:
        strings = rows.setdefault("string", [])
        seen: set[str] = set()
        for text in values:
            exact = text[:EXACT_MAX]
            if exact and exact not in seen:
                seen.add(exact)
                strings.append((key, normalise(text), exact))

    def add_dates(self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]) -> None:
        dates = rows.setdefault("date", [])
        for value, type_name in nodes:
            for low, high in date_ranges(value, type_name):
                dates.append((param.key, low, high))

    def add_numbers(self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]) -> None:
        found = rows.setdefault("number", [])
        for value, type_name in nodes:
            for number in numbers(value, type_name):
                found.append((param.key, number))

    def add_quantities(
        self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]
    ) -> None:
        found = rows.setdefault("quantity", [])
        for value, type_name in nodes:
            for amount, system, code in quantities(value, type_name):
                found.append((param.key, amount, system[:TOKEN_MAX], code[:TOKEN_MAX]))

    def reference_target(self, literal: str, param: SearchParam) -> tuple[str, str, str | None]:
        if self.base_url and literal.startswith(self.base_url + "/"):
            literal = literal[len(self.base_url) + 1:]
        return parse_reference(literal)

    def add_references(
        self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]
    ) -> None:
        found = rows.setdefault("reference", [])
        seen: set[tuple[str, str]] = set()
        for value, _type_name in nodes:
            if isinstance(value, str):
                target = value.split("|", 1)
                ttype = param.targets[0] if len(param.targets) == 1 else ""
                entry = (ttype, target[0][:TOKEN_MAX], target[1][:64] if len(target) > 1 else None)
            elif isinstance(value, dict):
                identifier = value.get("identifier")
                if isinstance(identifier, dict):
                    for system, code in token_values(identifier, "Identifier"):
                        rows.setdefault("token", []).append(
                            (param.derived_key("identifier"), system[:TOKEN_MAX], code[:TOKEN_MAX]))
                literal = value.get("reference")
                if not isinstance(literal, str) or literal.startswith("#"):
                    continue
                ttype, tid, version = self.reference_target(literal, param)
                if not ttype:
                    ttype = reference_type(value, root) or ""
                entry = (ttype, tid[:TOKEN_MAX], version)
            else:
                continue
            if (entry[0], entry[1]) not in seen:
                seen.add((entry[0], entry[1]))
                found.append((param.key, entry[0], entry[1], entry[2]))

    def add_uris(self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]) -> None:
        found = rows.setdefault("uri", [])
        for value, _type_name in nodes:
            if isinstance(value, str):
                found.append((param.key, value[:URI_MAX]))

    def component_step(self, expression: str) -> Callable[[Node, dict[str, Any]], list[Node]]:
        key = ("", expression)
        step = self.component_steps.get(key)
        if step is None:
            compiled = compile_relative(expression, self.model)
            self.component_steps[key] = step = compiled
        return step

    def add_composites(
        self, rows: Rows, param: SearchParam, nodes: list[Node], root: dict[str, Any]
    ) -> None:
        if len(param.components) != 2:
            return
        first, second = param.components
        second_param = self.registry.component_param(param, second)
        if second_param is None:
            return
        found = rows.setdefault("composite", [])
        for node in nodes:
            tails = self.composite_tails(second_param.type, self.component_step(second.expression)(node, root))
            if not tails:
                continue
            heads = [
                pair for value, type_name in self.component_step(first.expression)(node, root)
                for pair in token_values(value, type_name)
            ]
            for tail in tails:
                for system, code in heads:
                    found.append((param.key, system[:TOKEN_MAX], code[:TOKEN_MAX], *tail))

    @staticmethod
    def composite_tails(kind: str, nodes: list[Node]) -> list[tuple[Any, ...]]:
        """(text, text_system, lo, hi) of a composite's second component."""
        tails: list[tuple[Any, ...]] = []
        for value, type_name in nodes:
            if kind == "token":
                tails.extend((c[:TOKEN_MAX], s[:TOKEN_MAX], None, None) for s, c in token_values(value, type_name))
            elif kind == "quantity":
                tails.extend((c[:TOKEN_MAX], s[:TOKEN_MAX], v, v) for v, s, c in quantities(value, type_name))
            elif kind == "number":
                tails.extend((None, None, v, v) for v in numbers(value, type_name))
            elif kind == "date":
                tails.extend((None, None, float(lo), float(hi)) for lo, hi in date_ranges(value, type_name))
            elif kind == "string":
                tails.extend((normalise(s), None, None, None) for s in string_values(value, type_name))
            elif kind in ("uri", "reference"):
                literal = value.get("reference") if isinstance(value, dict) else value
                if isinstance(literal, str):
                    tails.append((literal[:TOKEN_MAX], None, None, None))
        return tails


def compile_relative(expression: str, model: ElementModel) -> Callable[[Node, dict[str, Any]], list[Node]]:
    """Compile a component expression evaluated from a node of the composite's base expression."""
    from ..fhir.fhirpath import Parser, UnsupportedExpression

    try:
        step: Step = Parser(expression, model, "").parse()
    except (UnsupportedExpression, ValueError):
        fallback = compile_expression(expression, "", model)

        def evaluate_fallback(node: Node, root: dict[str, Any]) -> list[Node]:
            return fallback(node[0]) if isinstance(node[0], dict) else []

        return evaluate_fallback

    def evaluate(node: Node, root: dict[str, Any]) -> list[Node]:
        return step([node], root)

    return evaluate
