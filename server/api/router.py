"""The routing table of the FHIR REST API: every interaction in one visible list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..fhir.outcome import FhirError, Issue, not_found

if TYPE_CHECKING:
    from ..store.repository import Repository
    from ..store.services import StoreServices
    from .model import FhirRequest, FhirResponse


@dataclass
class Interaction:
    """A request matched to a route: path variables, the repository and shared services."""

    request: FhirRequest
    repo: Repository
    services: StoreServices
    app: Any
    vars: dict[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.vars["type"]

    @property
    def id(self) -> str:
        return self.vars["id"]


Handler = Callable[[Interaction], "FhirResponse"]
OPERATION_LEVELS = {1: "system", 2: "type", 3: "instance"}  # path segments of an operation's URL -> its level


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    name: str

    @property
    def writing(self) -> bool:
        return self.method not in ("GET", "HEAD")


@dataclass(frozen=True)
class Operation:
    """A `$name` operation at system, type or instance level."""

    name: str
    handler: Handler
    levels: tuple[str, ...]
    types: tuple[str, ...] = ()
    writing: bool = False
    methods: tuple[str, ...] = ("GET", "POST")
    definition: str = ""
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    @property
    def __name__(self) -> str:
        return self.name

    def __call__(self, ix: Interaction) -> FhirResponse:
        return self.handler(ix)


class Router:
    """Matches paths to handlers; operations are registered by the modules that implement them."""

    def __init__(self, routes: list[Route], supported_types: frozenset[str],
                 type_check: Callable[[str], str]) -> None:
        self.routes = routes
        self.by_length: dict[int, list[Route]] = {}
        self.by_method: dict[tuple[str, int], list[Route]] = {}
        for candidate in routes:
            self.by_length.setdefault(len(candidate.pattern), []).append(candidate)
            self.by_method.setdefault((candidate.method, len(candidate.pattern)), []).append(candidate)
        self.operations: dict[str, list[Operation]] = {}
        self.supported_types = supported_types
        self.type_check = type_check

    def add_operation(self, operation: Operation) -> None:
        self.operations.setdefault(operation.name, []).append(operation)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str], bool]:
        """(handler, path variables, writing) for a request; raises 404/405 OperationOutcomes."""
        method = "GET" if method == "HEAD" else method
        segments = tuple(s for s in path.strip("/").split("/") if s) if path.strip("/") else ()
        if segments and segments[-1].startswith("$"):
            return self.match_operation(method, segments)
        for route in self.by_method.get((method, len(segments)), ()):
            variables = match_pattern(route.pattern, segments)
            if variables is not None:
                self.check_types(variables)
                return route.handler, variables, route.writing
        allowed: set[str] = set()
        for route in self.by_length.get(len(segments), ()):
            variables = match_pattern(route.pattern, segments)
            if variables is not None:
                self.check_types(variables)
                allowed.add(route.method)
        if allowed:
            raise FhirError(405, [Issue("not-supported", f"{method} is not allowed on /{path.strip('/')}; "
                                                         f"allowed: {', '.join(sorted(allowed))}")],
                            headers={"Allow": ", ".join(sorted(allowed))})
        raise not_found(f"No FHIR interaction at /{path.strip('/')}")

    def check_types(self, variables: dict[str, str]) -> None:
        """404 for a type in the path that this server does not serve."""
        if "type" in variables:
            self.type_check(variables["type"])
        if "compartment" in variables:
            self.type_check(variables["compartment"])

    def match_operation(self, method: str, segments: tuple[str, ...]) -> tuple[Handler, dict[str, str], bool]:
        name = segments[-1][1:]
        level = OPERATION_LEVELS.get(len(segments))
        if level is None:
            raise not_found(f"No operation at /{'/'.join(segments)}: operations run at system (/${name}), type "
                            f"(/[type]/${name}) or instance (/[type]/[id]/${name}) level")
        variables: dict[str, str] = {"operation": name}
        if level in ("type", "instance"):
            variables["type"] = self.type_check(segments[0])
        if level == "instance":
            variables["id"] = segments[1]
        candidates = [
            op for op in self.operations.get(name, [])
            if level in op.levels and (not op.types or variables.get("type") in op.types)
        ]
        if not candidates:
            where = f"{variables.get('type', '')} {level} level".strip()
            raise not_found(f"Operation ${name} is not supported at {where}")
        for operation in candidates:
            if method in operation.methods:
                return operation, variables, operation.writing
        raise FhirError(405, [Issue("not-supported", f"${name} does not accept {method}")])


def match_pattern(pattern: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    variables: dict[str, str] = {}
    for expected, actual in zip(pattern, segments, strict=True):
        if expected.startswith(":"):
            if actual.startswith(("_", "$")):
                return None
            if expected in (":type", ":compartment") and not actual[:1].isupper():
                return None
            variables[expected[1:]] = actual
        elif expected != actual:
            return None
    return variables


def route(method: str, pattern: str, handler: Handler) -> Route:
    return Route(method, tuple(s for s in pattern.split("/") if s), handler, handler.__name__)
