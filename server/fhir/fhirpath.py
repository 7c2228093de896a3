"""A compiler for the FHIRPath subset search parameters use, producing fast typed extractors.

Search parameter expressions are mostly paths with `|`, `as`/`ofType`, `where(resolve() is T)`,
`where(field='literal')`, `extension('url')` and `[n]`. Those compile to Python closures that walk
the JSON and keep each value's FHIR type (needed to index it). Anything else falls back to
fhirpathpy, with types then inferred from the JSON shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .elements import PRIMITIVES, ElementModel

Node = tuple[Any, str]
"""A value and its FHIR type name (or the backbone path that types it)."""

Step = Callable[[list[Node], dict[str, Any]], list[Node]]
Extractor = Callable[[dict[str, Any]], list[Node]]

TOKEN_PATTERN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>\d+)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>!=|[|().\[\]=,]))"
)


class UnsupportedExpression(ValueError):
    """The expression uses FHIRPath beyond the compiled subset."""


@dataclass
class Token:
    kind: str
    text: str


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    expression = expression.strip()
    while position < len(expression):
        match = TOKEN_PATTERN.match(expression, position)
        if not match or match.end() == position:
            raise UnsupportedExpression(f"cannot read {expression[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
    return tokens


class Parser:
    """Recursive descent over the supported subset, emitting step functions."""

    def __init__(self, expression: str, model: ElementModel, root_type: str) -> None:
        self.tokens = tokenize(expression)
        self.position = 0
        self.model = model
        self.root_type = root_type

    def peek(self, offset: int = 0) -> Token | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text) or (kind and token.kind != kind):
            raise UnsupportedExpression(f"expected {text or kind}, found {token.text if token else 'end'}")
        self.position += 1
        return token

    def parse(self) -> Step:
        step = self.union()
        if self.peek() is not None:
            raise UnsupportedExpression(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return step

    def union(self) -> Step:
        parts = [self.term()]
        while self.peek() and self.peek().text == "|":  # type: ignore[union-attr]
            self.take("|")
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]

        def union_step(nodes: list[Node], root: dict[str, Any]) -> list[Node]:
            out: list[Node] = []
            for part in parts:
                out.extend(part(nodes, root))
            return out

        return union_step

    def term(self) -> Step:
        token = self.peek()
        if token is None:
            raise UnsupportedExpression("empty expression")
        steps: list[Step] = []
        if token.text == "(":
            self.take("(")
            steps.append(self.union())
            self.take(")")
        elif token.kind == "ident":
            self.take()
            if token.text in (self.root_type, "Resource", "DomainResource"):
                pass  # the extractor only ever runs on resources of its root type
            elif token.text[0].isupper():
                steps.append(root_filter(token.text))
            else:
                steps.append(navigate(self.model, token.text))
        else:
            raise UnsupportedExpression(f"unexpected {token.text!r}")
        while True:
            token = self.peek()
            if token is None:
                break
            if token.text == ".":
                self.take(".")
                steps.append(self.invocation())
            elif token.text == "[":
                self.take("[")
                index = int(self.take(kind="number").text)
                self.take("]")
                steps.append(index_step(index))
            elif token.kind == "ident" and token.text in ("as", "is"):
                if token.text == "is":
                    raise UnsupportedExpression("'is' outside where(resolve() is T)")
                self.take()
                steps.append(type_filter(self.take(kind="ident").text))
            else:
                break
        return chain(steps)

    def invocation(self) -> Step:
        name = self.take(kind="ident").text
        if not (self.peek() and self.peek().text == "("):  # type: ignore[union-attr]
            return navigate(self.model, name)
        self.take("(")
        if name in ("as", "ofType"):
            type_name = self.take(kind="ident").text
            self.take(")")
            return type_filter(type_name)
        if name == "where":
            step = self.where_criteria()
            self.take(")")
            return step
        if name == "extension":
            url = unquote(self.take(kind="string").text)
            self.take(")")
            return extension_step(url)
        if name == "first":
            self.take(")")
            return index_step(0)
        raise UnsupportedExpression(f"function {name}()")

    def where_criteria(self) -> Step:
        token = self.peek()
        if token and token.text == "resolve":
            self.take("resolve")
            self.take("(")
            self.take(")")
            self.take("is")
            return resolves_to(self.take(kind="ident").text)
        field = self.take(kind="ident").text
        self.take("=")
        literal = unquote(self.take(kind="string").text)
        return field_equals(field, literal)


def unquote(text: str) -> str:
    return text[1:-1].replace("\\'", "'")


def chain(steps: list[Step]) -> Step:
    if not steps:
        return identity
    if len(steps) == 1:
        return steps[0]

    def chained(nodes: list[Node], root: dict[str, Any]) -> list[Node]:
        for step in steps:
            nodes = step(nodes, root)
            if not nodes:
                return nodes
        return nodes

    return chained


def identity(nodes: list[Node], _root: dict[str, Any]) -> list[Node]:
    return nodes


def root_filter(type_name: str) -> Step:
    generic = type_name in ("Resource", "DomainResource")

    def step(nodes: list[Node], _root: dict[str, Any]) -> list[Node]:
        return [node for node in nodes if generic or node[1] == type_name]

    return step


def navigate(model: ElementModel, name: str) -> Step:
    """Step into a child element, expanding choice keys and lists, keeping types."""
    keys_by_owner: dict[str, tuple[tuple[str, str], ...]] = {}

    def keys_for(owner: str) -> tuple[tuple[str, str], ...]:
        element = model.element(owner, name)
        keys_by_owner[owner] = keys = element.keys if element is not None else ()
        return keys

    def step(nodes: list[Node], _root: dict[str, Any]) -> list[Node]:
        out: list[Node] = []
        for value, type_name in nodes:
            if value.__class__ is not dict:
                continue
            keys = keys_by_owner.get(type_name)
            if keys is None:
                keys = keys_for(type_name)
            for key, child_type in keys:
                item = value.get(key)
                if item is None:
                    continue
                if child_type == "Resource":
                    extend(out, item, child_type)
                elif item.__class__ is list:
                    out.extend([(entry, child_type) for entry in item if entry is not None])
                else:
                    out.append((item, child_type))
        return out

    return step


def extend(out: list[Node], value: Any, type_name: str) -> None:
    if isinstance(value, list):
        for item in value:
            if item is not None:
                out.append((item, resource_type_of(item, type_name)))
    elif value is not None:
        out.append((value, resource_type_of(value, type_name)))


def resource_type_of(value: Any, type_name: str) -> str:
    if type_name == "Resource" and isinstance(value, dict):
        return str(value.get("resourceType", "Resource"))
    return type_name


def index_step(index: int) -> Step:
    def step(nodes: list[Node], _root: dict[str, Any]) -> list[Node]:
        return nodes[index:index + 1]

    return step


def type_filter(type_name: str) -> Step:
    accepted = {type_name}
    if type_name == "Quantity":
        accepted |= {"Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"}

    def step(nodes: list[Node], _root: dict[str, Any]) -> list[Node]:
        return [node for node in nodes if node[1] in accepted]

    return step


def extension_step(url: str) -> Step:
    def step(nodes: list[Node], _root: dict[str, Any]) -> list[Node]:
        out: list[Node] = []
        for value, _type in nodes:
            if isinstance(value, dict):
                for extension in value.get("extension", ()):
                    if isinstance(extension, dict) and extension.get("url") == url:
                        out.append((extension, "Extension"))
        return out

    return step


def field_equals(field: str, literal: str) -> Step:
    def step(nodes: list[Node], _root: dict[str, Any]) -> list[Node]:
        return [node for node in nodes if isinstance(node[0], dict) and node[0].get(field) == literal]

    return step


def reference_type(reference: Any, root: dict[str, Any]) -> str | None:
    """The resource type a Reference points at, from its literal reference or its `type`."""
    if not isinstance(reference, dict):
        return None
    literal = reference.get("reference")
    if isinstance(literal, str):
        if literal.startswith("#"):
            for contained in root.get("contained", ()):
                if isinstance(contained, dict) and contained.get("id") == literal[1:]:
                    return contained.get("resourceType")
            return None
        parts = literal.split("?", 1)[0].split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and parts[-2][:1].isupper():
            return parts[-2]
    declared = reference.get("type")
    return declared if isinstance(declared, str) else None


def resolves_to(type_name: str) -> Step:
    def step(nodes: list[Node], root: dict[str, Any]) -> list[Node]:
        return [node for node in nodes if reference_type(node[0], root) == type_name]

    return step


FIRST_STEP = re.compile(r"^\(*\s*([A-Za-z]+)\.([a-z][A-Za-z0-9]*)\b")


def first_keys(expression: str, root_type: str, model: ElementModel) -> frozenset[str] | None:
    """The top-level JSON keys an expression can start from; None when that cannot be told."""
    keys: set[str] = set()
    for part in expression.split("|"):
        match = FIRST_STEP.match(part.strip())
        if not match or match.group(1) not in (root_type, "Resource", "DomainResource"):
            return None
        element = model.element(root_type, match.group(2))
        if element is None:
            return None
        keys.update(key for key, _type in element.keys)
    return frozenset(keys)


def compile_expression(expression: str, root_type: str, model: ElementModel) -> Extractor:
    """Compile an expression for resources of `root_type`; fall back to fhirpathpy if needed.

    The extractor returns nothing at once when none of the top-level keys it starts from is present.
    """
    try:
        step = Parser(expression, model, root_type).parse()
    except (UnsupportedExpression, ValueError):
        return fallback_extractor(expression)
    starts = first_keys(expression, root_type, model) if root_type else None

    if starts is None:
        def extract(resource: dict[str, Any]) -> list[Node]:
            return step([(resource, resource.get("resourceType", root_type))], resource)

        return extract

    def extract_present(resource: dict[str, Any]) -> list[Node]:
        for key in starts:
            if key in resource:
                return step([(resource, root_type)], resource)
        return []

    return extract_present


def fallback_extractor(expression: str) -> Extractor:
    """Evaluate with fhirpathpy; value types are inferred from JSON shapes."""
    import fhirpathpy

    compiled = fhirpathpy.compile(expression)

    def extract(resource: dict[str, Any]) -> list[Node]:
        try:
            values = compiled(resource)
        except Exception:  # fhirpathpy raises bare exceptions on odd data; index nothing then
            return []
        return [(value, infer_type(value)) for value in values if value is not None]

    return extract


def infer_type(value: Any) -> str:
    """Guess a FHIR type from a JSON value's shape (fallback evaluation only)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if not isinstance(value, dict):
        return "Element"
    if "coding" in value or ("text" in value and len(value) <= 2):
        return "CodeableConcept"
    if "reference" in value or ("identifier" in value and "display" in value):
        return "Reference"
    if "start" in value or "end" in value:
        return "Period"
    if "value" in value and ("unit" in value or "code" in value or "system" in value):
        return "Quantity"
    if "system" in value and "code" in value:
        return "Coding"
    if "family" in value or "given" in value:
        return "HumanName"
    if "line" in value or "city" in value or "postalCode" in value:
        return "Address"
    return "Element"


def is_primitive(type_name: str) -> bool:
    return type_name in PRIMITIVES
