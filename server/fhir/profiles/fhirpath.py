"""Invariant expressions compiled once: to Python closures for a common FHIRPath subset, else fhirpathpy.

fhirpathpy interprets its parse tree on every call (about 400 us for the NHS number check), which is
more than the whole R4B validation of a resource. Invariants are therefore compiled to closures over
collections (Python lists) for the subset profiles use: paths (choice elements included), literals,
`$this`, `[n]`, arithmetic, comparison, equality, `|`, `&`, `and`/`or`/`xor`/`implies`, `is`/`as`/
`ofType()` right after a path step to a choice element, and the functions exists, empty, not, count,
first, last, where, all, select, startsWith, endsWith, contains, matches, substring, length, toInteger,
toString, upper, lower and extension. An expression outside the subset is compiled by fhirpathpy
instead; a type test that meets a non-choice element at run time (its type needs the FHIR model) is
answered by fhirpathpy too. Both give the same answers (tests/unit/test_profiles_fhirpath.py compares
them on every invariant and on the whole subset).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

Collection = list[Any]
Node = Callable[[Collection, Any], Collection]  # (focus, $this) -> result
FUNCTION_ARITY = {
    "exists": (0, 1), "empty": (0, 0), "not": (0, 0), "count": (0, 0), "first": (0, 0), "last": (0, 0),
    "where": (1, 1), "all": (1, 1), "select": (1, 1), "startsWith": (1, 1), "endsWith": (1, 1),
    "contains": (1, 1), "matches": (1, 1), "substring": (1, 2), "length": (0, 0), "toInteger": (0, 0),
    "toString": (0, 0), "upper": (0, 0), "lower": (0, 0), "extension": (1, 1), "ofType": (1, 1),
}
PRIMITIVES = frozenset({
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant", "date",
    "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid",
})
LAMBDA_FUNCTIONS = frozenset({"exists", "where", "all", "select"})
TYPE_NAMES = frozenset({
    "Address", "Age", "Annotation", "Attachment", "Base64Binary", "Boolean", "Canonical", "Code", "CodeableConcept",
    "Coding", "ContactDetail", "ContactPoint", "Contributor", "Count", "DataRequirement", "Date", "DateTime",
    "Decimal", "Distance", "Dosage", "Duration", "Expression", "HumanName", "Id", "Identifier", "Instant",
    "Integer", "Markdown", "Meta", "Money", "Oid", "ParameterDefinition", "Period", "PositiveInt", "Quantity",
    "Range", "Ratio", "Reference", "RelatedArtifact", "SampledData", "Signature", "String", "Time", "Timing",
    "TriggerDefinition", "UnsignedInt", "Uri", "Url", "UsageContext", "Uuid",
})
TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>\d+(?:\.\d+)?)|(?P<special>\$this)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|[-+*/&|=<>().,\[\]{}]))"
)
ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class Unsupported(ValueError):
    """The expression is outside the compiled subset."""


class NeedsModel(Exception):
    """At run time, a type test met an element whose type only the FHIR model knows."""


@dataclass(frozen=True)
class Invariant:
    """A compiled constraint: `holds(value)` is True when the expression evaluates to true."""

    key: str
    human: str
    expression: str
    severity: str
    native: bool
    evaluate: Callable[[Any], Collection]

    def holds(self, value: Any) -> bool:
        try:
            result = self.evaluate(value)
        except Exception:  # an expression that cannot be evaluated on this input does not hold
            return False
        return result == [True]


def compile_invariant(key: str, human: str, expression: str, severity: str, base_path: str,
                      native: bool = True) -> Invariant:
    """Compile natively when the subset allows (and `native`), else with fhirpathpy and the R4 model."""
    fallback = fhirpathpy_function(expression, base_path)
    if native:
        try:
            compiled = compile_native(expression)
        except Unsupported:
            pass
        else:
            def evaluate(value: Any) -> Collection:
                try:
                    return compiled(value)
                except NeedsModel:
                    return fallback(value)
            return Invariant(key, human, expression, severity, True, evaluate)
    return Invariant(key, human, expression, severity, False, fallback)


def fhirpathpy_function(expression: str, base_path: str) -> Callable[[Any], Collection]:
    """fhirpathpy compiled once, evaluated with the element's path so choice types resolve."""
    function = fhirpathpy.compile(expression, r4_model())

    def evaluate(value: Any) -> Collection:
        if isinstance(value, dict) and "resourceType" in value:
            return function(value, {})
        return function(ResourceNode.create_node(value, base_path), {})

    return evaluate


@cache
def r4_model() -> dict[str, Any]:
    return models["r4"]


def compile_native(expression: str) -> Callable[[Any], Collection]:
    node = Parser(expression).parse()

    def evaluate(value: Any) -> Collection:
        focus = [value]
        return node(focus, value)

    return evaluate


# ---------------------------------------------------------------------------- parsing


def tokenize(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class Parser:
    """Precedence climbing over FHIRPath's operator table, emitting closures."""

    LEVELS: tuple[tuple[str, ...], ...] = (
        ("implies",), ("or", "xor"), ("and",), ("in", "contains"), ("=", "!="), ("<", ">", "<=", ">="),
        ("|",), ("is", "as"), ("+", "-", "&"), ("*", "/", "div", "mod"),
    )

    def __init__(self, expression: str) -> None:
        self.tokens = tokenize(expression)
        self.position = 0

    def parse(self) -> Node:
        node = self.binary(0)
        if self.position != len(self.tokens):
            raise Unsupported(f"unexpected {self.peek()[1]!r}")
        return node

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (text is not None and token[1] != text):
            raise Unsupported(f"expected {text!r}, found {token[1]!r}")
        self.position += 1
        return token

    def binary(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[1] in self.LEVELS[level] and self.peek()[0] in ("op", "ident"):
            operator = self.take()[1]
            if operator in ("is", "as"):
                left = type_test(left, operator, self.type_name())
                continue
            right = self.binary(level + 1)
            left = binary_node(operator, left, right)
        return left

    def type_name(self) -> str:
        kind, text = self.take()
        if kind != "ident":
            raise Unsupported("a type name is expected")
        if text == "FHIR" and self.peek()[1] == ".":
            self.take(".")
            text = self.take()[1]
        return text

    def unary(self) -> Node:
        if self.peek() == ("op", "-"):
            self.take()
            operand = self.unary()
            return lambda focus, this: [-v for v in operand(focus, this)]
        if self.peek() == ("op", "+"):
            self.take()
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token == ("op", "."):
                self.take()
                node = self.invocation(node)
            elif token == ("op", "["):
                self.take()
                index = self.binary(0)
                self.take("]")
                node = indexer(node, index)
            else:
                return node

    def term(self) -> Node:
        kind, text = self.peek()
        if kind == "string":
            self.take()
            return constant(unescape(text[1:-1]))
        if kind == "number":
            self.take()
            return constant(float(text) if "." in text else int(text))
        if kind == "special":
            self.take()
            return lambda focus, this: [this]
        if text == "(":
            self.take()
            inner = self.binary(0)
            self.take(")")
            return inner
        if text == "{":
            self.take()
            self.take("}")
            return lambda focus, this: []
        if kind == "ident":
            if text in ("true", "false"):
                self.take()
                return constant(text == "true")
            return self.invocation(None)
        raise Unsupported(f"unexpected {text!r}")

    def invocation(self, source: Node | None) -> Node:
        kind, name = self.take()
        if kind != "ident":
            raise Unsupported(f"a name is expected, found {name!r}")
        if self.peek() == ("op", "("):
            self.take()
            arguments: list[Node] = []
            type_argument = None
            if name == "ofType":
                type_argument = self.type_name()
            elif self.peek() != ("op", ")"):
                arguments.append(self.binary(0))
                while self.peek() == ("op", ","):
                    self.take()
                    arguments.append(self.binary(0))
            self.take(")")
            return function_node(source, name, arguments, type_argument)
        return path_node(source, name)


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, position = [], 0
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            following = text[position + 1]
            if following not in ESCAPES:
                raise Unsupported(f"escape \\{following}")
            out.append(ESCAPES[following])
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


# ---------------------------------------------------------------------------- node builders


def constant(value: Any) -> Node:
    """A literal; its value is kept on the node so operators and functions can use it directly."""
    result = [value]

    def literal(focus: Collection, this: Any) -> Collection:
        return result

    literal.constant = value  # type: ignore[attr-defined]
    return literal


def evaluator(node: Node) -> Callable[[Collection, Any], Any]:
    """A function giving the singleton value of a node (None when empty), constants precomputed."""
    if hasattr(node, "constant"):
        value = node.constant  # type: ignore[attr-defined]
        return lambda focus, this: value
    return lambda focus, this: singleton(node(focus, this))


def children(item: Any, name: str) -> Collection:
    """The values of element `name` of one item (choice elements `value` -> `valueQuantity`...)."""
    if item.__class__ is not dict:
        return []
    value = item.get(name)
    if value is None:
        for key, candidate in item.items():
            if key.startswith(name) and key[len(name):] in TYPE_NAMES:
                value = candidate
                break
        else:
            return []
    return value if value.__class__ is list else [value]


def path_node(source: Node | None, name: str) -> Node:
    if source is None and name[:1].isupper():
        def root(focus: Collection, this: Any) -> Collection:
            return [item for item in focus if item.__class__ is dict and item.get("resourceType") == name]
        return root

    def step(focus: Collection, this: Any) -> Collection:
        items = source(focus, this) if source is not None else focus
        out: Collection = []
        for item in items:
            if item.__class__ is not dict:
                continue
            value = item.get(name)
            if value is None:
                out.extend(children(item, name))
            elif value.__class__ is list:
                out.extend(value)
            else:
                out.append(value)
        return out

    step.path_name = name  # type: ignore[attr-defined]
    step.path_source = source  # type: ignore[attr-defined]
    return step


def choice_of(node: Node, type_name: str) -> Node:
    """`value.ofType(Quantity)` / `value as Quantity`: the `valueQuantity` key of the parent items."""
    name = getattr(node, "path_name", None)
    if name is None:
        raise Unsupported("type tests are compiled only right after a path step")
    if type_name[:1].isupper() and type_name[:1].lower() + type_name[1:] in PRIMITIVES:
        raise Unsupported(f"System type {type_name}")
    source = node.path_source  # type: ignore[attr-defined]
    key = name + type_name[:1].upper() + type_name[1:]

    def typed(focus: Collection, this: Any) -> Collection:
        items = source(focus, this) if source is not None else focus
        out: Collection = []
        for item in items:
            if item.__class__ is not dict:
                continue
            if key in item:
                value = item[key]
                out.extend(value if value.__class__ is list else [value])
            elif name in item:
                raise NeedsModel(name)
        return out

    return typed


def type_test(node: Node, operator: str, type_name: str) -> Node:
    typed = choice_of(node, type_name)
    if operator == "as":
        return typed

    def test(focus: Collection, this: Any) -> Collection:
        values = node(focus, this)
        if len(values) != 1:
            return []
        return [len(typed(focus, this)) == 1]

    return test


def indexer(node: Node, index: Node) -> Node:
    def pick(focus: Collection, this: Any) -> Collection:
        items = node(focus, this)
        position = index(focus, this)
        if len(position) != 1 or position[0].__class__ is not int:
            return []
        at = position[0]
        return [items[at]] if 0 <= at < len(items) else []
    return pick


def singleton(values: Collection) -> Any:
    if len(values) == 1:
        return values[0]
    if not values:
        return None
    raise ValueError("a singleton is expected")


def truth(values: Collection) -> bool | None:
    """Singleton evaluation of a collection as a boolean (None = empty)."""
    if not values:
        return None
    if len(values) > 1:
        raise ValueError("a single boolean is expected")
    value = values[0]
    return value if value.__class__ is bool else True


def equal(left: Collection, right: Collection) -> Collection:
    if not left or not right:
        return []
    if len(left) != len(right):
        return [False]
    return [all(same(a, b) for a, b in zip(left, right, strict=True))]


def same(a: Any, b: Any) -> bool:
    if (a.__class__ is bool) != (b.__class__ is bool):
        return False
    return bool(a == b)


def arithmetic(operator: str, a: Any, b: Any) -> Any:
    if operator == "+":
        return a + b
    if operator == "-":
        return a - b
    if operator == "*":
        return a * b
    if b == 0:
        return None
    if operator == "/":
        return a / b
    if operator == "mod":
        return a % b  # floored, as fhirpathpy (the reference) computes it
    return int(a / b)


def binary_node(operator: str, left: Node, right: Node) -> Node:
    if operator in ("and", "or", "xor", "implies"):
        return logic_node(operator, left, right)
    if operator == "|":
        def union(focus: Collection, this: Any) -> Collection:
            out: Collection = []
            for value in left(focus, this) + right(focus, this):
                if not any(same(value, seen) for seen in out):
                    out.append(value)
            return out
        return union
    if operator in ("=", "!="):
        negate = operator == "!="

        def equality(focus: Collection, this: Any) -> Collection:
            result = equal(left(focus, this), right(focus, this))
            return [not result[0]] if result and negate else result
        return equality
    if operator in ("in", "contains"):
        element, container = (left, right) if operator == "in" else (right, left)

        def membership(focus: Collection, this: Any) -> Collection:
            value = element(focus, this)
            if not value:
                return []
            return [any(same(singleton(value), item) for item in container(focus, this))]
        return membership
    if operator == "&":
        def concatenate(focus: Collection, this: Any) -> Collection:
            a, b = singleton(left(focus, this)), singleton(right(focus, this))
            return [("" if a is None else str(a)) + ("" if b is None else str(b))]
        return concatenate

    left_value, right_value = evaluator(left), evaluator(right)

    def apply(focus: Collection, this: Any) -> Collection:
        a, b = left_value(focus, this), right_value(focus, this)
        if a is None or b is None:
            return []
        if operator in ("<", ">", "<=", ">="):
            if (a.__class__ is str) != (b.__class__ is str):
                raise ValueError("cannot compare")
            return [{"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[operator]]
        if operator == "+" and a.__class__ is str and b.__class__ is str:
            return [a + b]
        if a.__class__ in (str, bool) or b.__class__ in (str, bool):
            raise ValueError("arithmetic on a non-number")
        result = arithmetic(operator, a, b)
        return [] if result is None else [result]
    return apply


def logic_node(operator: str, left: Node, right: Node) -> Node:
    def evaluate(focus: Collection, this: Any) -> Collection:
        a = truth(left(focus, this))
        if operator == "and" and a is False:
            return [False]
        if operator == "or" and a is True:
            return [True]
        if operator == "implies" and a is False:
            return [True]
        b = truth(right(focus, this))
        if operator == "and":
            result = False if b is False else (True if a is True and b is True else None)
        elif operator == "or":
            result = True if b is True else (False if a is False and b is False else None)
        elif operator == "xor":
            result = None if a is None or b is None else a != b
        else:
            result = True if b is True else (None if a is None or b is None else b)
        return [] if result is None else [result]
    return evaluate


def function_node(source: Node | None, name: str, arguments: list[Node], type_argument: str | None) -> Node:
    arity = FUNCTION_ARITY.get(name)
    if arity is None:
        raise Unsupported(f"function {name}()")
    if not arity[0] <= len(arguments) + (1 if type_argument else 0) <= arity[1]:
        raise Unsupported(f"{name}() with {len(arguments)} arguments")
    if name == "ofType":
        return choice_of(source if source is not None else _identity, type_argument or "")

    def input_of(focus: Collection, this: Any) -> Collection:
        return source(focus, this) if source is not None else focus

    if name in LAMBDA_FUNCTIONS:
        return lambda_function(name, input_of, arguments[0] if arguments else None)
    implementation = STRING_FUNCTIONS.get(name)
    if implementation is not None:
        argument_values = [evaluator(argument) for argument in arguments]

        def string_function(focus: Collection, this: Any) -> Collection:
            value = singleton(source(focus, this) if source is not None else focus)
            if value is None:
                return []
            values = [argument(focus, this) for argument in argument_values]
            if values and values[0] is None and name != "substring":
                return []
            if value.__class__ is not str:
                if name == "toString":
                    return [str(value).lower() if value.__class__ is bool else str(value)]
                if name == "toInteger":
                    return [int(value)] if value.__class__ in (int, bool) else []
                raise ValueError(f"{name}() on a non-string")
            return implementation(value, values)
        return string_function
    return collection_function(name, input_of, arguments)


def _identity(focus: Collection, this: Any) -> Collection:
    return focus


def lambda_function(name: str, input_of: Node, criteria: Node | None) -> Node:
    def evaluate(focus: Collection, this: Any) -> Collection:
        items = input_of(focus, this)
        if name == "exists":
            if criteria is None:
                return [bool(items)]
            return [any(criteria([item], item) == [True] for item in items)]
        if name == "all":
            return [all(criteria([item], item) == [True] for item in items)]  # type: ignore[misc]
        if name == "where":
            return [item for item in items if criteria([item], item) == [True]]  # type: ignore[misc]
        out: Collection = []
        for item in items:
            out.extend(criteria([item], item))  # type: ignore[misc]
        return out
    return evaluate


def collection_function(name: str, input_of: Node, arguments: list[Node]) -> Node:
    def evaluate(focus: Collection, this: Any) -> Collection:
        items = input_of(focus, this)
        if name == "empty":
            return [not items]
        if name == "count":
            return [len(items)]
        if name == "first":
            return items[:1]
        if name == "last":
            return items[-1:]
        if name == "not":
            value = truth(items)
            return [] if value is None else [not value]
        url = singleton(arguments[0](focus, this))
        out: Collection = []
        for item in items:
            out.extend(e for e in children(item, "extension") if e.__class__ is dict and e.get("url") == url)
        return out
    return evaluate


def _substring(value: str, arguments: list[Any]) -> Collection:
    start = arguments[0]
    if start is None or start < 0 or start >= len(value):
        return []
    if len(arguments) > 1 and arguments[1] is not None:
        return [value[start:start + max(arguments[1], 0)]]
    return [value[start:]]


def _to_integer(value: str, arguments: list[Any]) -> Collection:
    return [int(value)] if re.fullmatch(r"[+-]?\d+", value) else []


STRING_FUNCTIONS: dict[str, Callable[[str, list[Any]], Collection]] = {
    "startsWith": lambda value, a: [value.startswith(a[0])],
    "endsWith": lambda value, a: [value.endswith(a[0])],
    "contains": lambda value, a: [a[0] in value],
    "matches": lambda value, a: [re.search(a[0], value) is not None],
    "substring": _substring,
    "length": lambda value, a: [len(value)],
    "toInteger": _to_integer,
    "toString": lambda value, a: [value],
    "upper": lambda value, a: [value.upper()],
    "lower": lambda value, a: [value.lower()],
}
