"""Resource templates: FHIR JSON skeletons with column values and operators, compiled once into closures.

A template is plain FHIR JSON in which
- a string ``"$name"`` is the (converted, typed) value of a column, loop variable or context value;
- a string holding ``{name}`` placeholders is interpolated (``{{`` and ``}}`` are literal braces);
- a mapping whose first key starts with ``$`` is an operator (``$map``, ``$lookup``, ``$if``, ``$ref``,
  ``$link``, ``$each``, ``$system``, ``$coding``); ``$needs: [columns]`` in a mapping leaves it out unless
  one of those values is present;
- anything that comes out empty (None, ``{}``, ``[]``) is left out, so optional columns need no care.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .terminology import Terminology

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RANGE = re.compile(r"^(.*)\{([0-9]+)\.\.([0-9]+)\}(.*)$")


class SpecError(ValueError):
    """A mapping specification that cannot be compiled (the message names the file and the place)."""


@dataclass
class Ctx:
    """Everything a compiled template reads while mapping one row."""

    values: dict[str, Any]
    env: dict[str, Any]
    refs: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    links: dict[tuple[str, str], str] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        if name in self.locals:
            return self.locals[name]
        if name in self.values:
            return self.values[name]
        return self.env.get(name)


Node = Callable[[Ctx], Any]


def expand_columns(pattern: str) -> list[tuple[str, str, int]]:
    """``DIAG_4_{01..20}`` -> [(column, "01", 1), ...]; a name without a range is itself."""
    match = RANGE.match(pattern)
    if match is None:
        return [(pattern, "", 0)]
    head, lo, hi, tail = match.groups()
    width = len(lo)
    return [(f"{head}{n:0{width}d}{tail}", f"{n:0{width}d}", n) for n in range(int(lo), int(hi) + 1)]


def empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


class Compiler:
    """Compiles templates and conditions against a terminology, a system table and known names."""

    def __init__(self, terminology: Terminology, systems: dict[str, str], where: str) -> None:
        self.terminology = terminology
        self.systems = systems
        self.where = where

    def fail(self, message: str) -> SpecError:
        return SpecError(f"{self.where}: {message}")

    # ------------------------------------------------------------------ values

    def compile(self, template: Any) -> Node:
        if isinstance(template, dict) and "$needs" in template:
            return self.guarded(template)
        if isinstance(template, dict):
            keys = list(template)
            if keys and isinstance(keys[0], str) and keys[0].startswith("$"):
                return self.operator(keys[0], template)
            return self.obj(template)
        if isinstance(template, list):
            return self.array(template)
        if isinstance(template, str):
            return self.text(template)
        if template is None or isinstance(template, (bool, int, float)):
            return lambda _ctx, v=template: v
        raise self.fail(f"cannot use {template!r} in a template")

    def guarded(self, template: dict[str, Any]) -> Node:
        """``{$needs: [col, ...], ...}``: the element is left out unless one of the named values is present."""
        needs = template["$needs"]
        names = [str(n) for n in (needs if isinstance(needs, list) else [needs])]
        inner = self.compile({k: v for k, v in template.items() if k != "$needs"})
        return lambda ctx: inner(ctx) if any(ctx.get(n) is not None for n in names) else None

    def obj(self, template: dict[str, Any]) -> Node:
        parts = [(str(key), self.compile(value)) for key, value in template.items()]

        def build(ctx: Ctx) -> dict[str, Any] | None:
            out = {}
            for key, node in parts:
                value = node(ctx)
                if not empty(value):
                    out[key] = value
            return out or None

        return build

    def array(self, template: list[Any]) -> Node:
        items = [(self.compile(item), isinstance(item, dict) and "$each" in item) for item in template]

        def build(ctx: Ctx) -> list[Any] | None:
            out: list[Any] = []
            for node, spread in items:
                value = node(ctx)
                if spread and isinstance(value, list):
                    out.extend(value)
                elif not empty(value):
                    out.append(value)
            return out or None

        return build

    def text(self, template: str) -> Node:
        if template.startswith("$") and PLACEHOLDER.fullmatch("{" + template[1:] + "}"):
            name = template[1:]
            return lambda ctx: ctx.get(name)
        if "{" not in template:
            return lambda _ctx: template
        pieces: list[str | tuple[str]] = []
        position = 0
        source = template.replace("{{", "\x00").replace("}}", "\x01")
        for match in PLACEHOLDER.finditer(source):
            pieces.append(source[position:match.start()])
            pieces.append((match.group(1),))
            position = match.end()
        pieces.append(source[position:])
        pieces = [p.replace("\x00", "{").replace("\x01", "}") if isinstance(p, str) else p for p in pieces]

        def build(ctx: Ctx) -> str | None:
            out = []
            for piece in pieces:
                if isinstance(piece, tuple):
                    value = ctx.get(piece[0])
                    if value is None or value == "":
                        return None
                    out.append(str(value))
                else:
                    out.append(piece)
            return "".join(out)

        return build

    # --------------------------------------------------------------- operators

    def operator(self, name: str, spec: dict[str, Any]) -> Node:
        handler = getattr(self, "op_" + name[1:], None)
        if handler is None:
            raise self.fail(f"unknown operator {name}")
        return handler(spec[name], spec)

    def op_system(self, alias: Any, _spec: dict[str, Any]) -> Node:
        if alias not in self.systems:
            raise self.fail(f"$system: unknown system {alias!r} (see mappings/systems.yaml)")
        return self.text(self.systems[alias])

    def op_map(self, concept_map: Any, spec: dict[str, Any]) -> Node:
        """``{$map: <ConceptMap name>, from: <value>, part: code|coding|display}``: a translation."""
        if concept_map not in self.terminology.concept_maps:
            raise self.fail(f"$map: no ConceptMap named {concept_map!r}")
        source = self.compile(spec.get("from"))
        part = spec.get("part", "code")
        if part not in ("code", "coding", "display"):
            raise self.fail("$map: part is one of code, coding, display")
        translate = self.terminology.translate

        def build(ctx: Ctx) -> Any:
            value = source(ctx)
            if value is None:
                return None
            found = translate(concept_map, str(value))
            if found is None:
                return None
            if part == "code":
                return found.code
            return found.as_fhir() if part == "coding" else found.display

        return build

    def op_coding(self, system: Any, spec: dict[str, Any]) -> Node:
        """``{$coding: <CodeSystem name>, code: <value>}``: a Coding of a bundled code system, with its display."""
        try:
            url = self.terminology.system_url(str(system))
        except KeyError as exc:
            raise self.fail(f"$coding: {exc.args[0]}") from None
        concepts = {str(c["code"]): c.get("display") for c in self.terminology.code_systems[str(system)]
                    .get("concept", [])}
        code_node = self.compile(spec.get("code"))

        def build(ctx: Ctx) -> dict[str, Any] | None:
            code = code_node(ctx)
            if code is None:
                return None
            coding = {"system": url, "code": str(code)}
            display = concepts.get(str(code))
            if display:
                coding["display"] = display
            return coding

        return build

    def op_lookup(self, table: Any, spec: dict[str, Any]) -> Node:
        """``{$lookup: {key: template, ...}, from: <value>, default: template}``."""
        if not isinstance(table, dict):
            raise self.fail("$lookup takes a mapping of keys to values")
        compiled = {str(k): self.compile(v) for k, v in table.items()}
        source = self.compile(spec.get("from"))
        default = self.compile(spec.get("default"))

        def build(ctx: Ctx) -> Any:
            key = source(ctx)
            node = compiled.get(str(key)) if key is not None else None
            return node(ctx) if node is not None else default(ctx)

        return build

    def op_if(self, condition: Any, spec: dict[str, Any]) -> Node:
        test = self.condition(condition)
        then = self.compile(spec.get("then"))
        otherwise = self.compile(spec.get("else"))
        return lambda ctx: then(ctx) if test(ctx) else otherwise(ctx)

    def op_ref(self, name: Any, _spec: dict[str, Any]) -> Node:
        """``{$ref: <reference name>}``: the resolved Reference of a row reference (None when absent)."""
        return lambda ctx: ctx.refs.get(str(name))

    def op_link(self, name: Any, spec: dict[str, Any]) -> Node:
        """``{$link: <resource name>, key: <loop key>}``: a Reference to a resource mapped from the same row."""
        key = self.compile(spec.get("key", ""))

        def build(ctx: Ctx) -> dict[str, str] | None:
            url = ctx.links.get((str(name), str(key(ctx) or "")))
            return {"reference": url} if url else None

        return build

    def op_each(self, pattern: Any, spec: dict[str, Any]) -> Node:
        """``{$each: "COL_{01..20}", as: x, do: template}``: one item per non-empty column; the body reads
        ``$x`` (the value), ``$x_key`` ("01") and ``$x_rank`` (1)."""
        name = str(spec.get("as", "item"))
        columns = expand_columns(str(pattern))
        body = self.compile(spec.get("do"))

        def build(ctx: Ctx) -> list[Any] | None:
            out = []
            saved = dict(ctx.locals)
            for column, key, rank in columns:
                value = ctx.values.get(column)
                if value is None:
                    continue
                ctx.locals[name], ctx.locals[f"{name}_key"], ctx.locals[f"{name}_rank"] = value, key, rank
                item = body(ctx)
                if not empty(item):
                    out.append(item)
            ctx.locals = saved
            return out or None

        return build

    # --------------------------------------------------------------- conditions

    def condition(self, spec: Any) -> Callable[[Ctx], bool]:
        """``{present: col}``, ``{absent: col}``, ``{value: $col, in: [..]}``, ``{value: $col, is: x}``,
        ``{value: $col, startswith: "2"}``, ``{value: $col, in-valueset: name}``, ``{all: [...]}``,
        ``{any: [...]}``, ``{not: {...}}``."""
        if not isinstance(spec, dict) or not spec:
            raise self.fail(f"a condition must be a mapping, not {spec!r}")
        if "all" in spec:
            tests = [self.condition(s) for s in spec["all"]]
            return lambda ctx: all(t(ctx) for t in tests)
        if "any" in spec:
            tests = [self.condition(s) for s in spec["any"]]
            return lambda ctx: any(t(ctx) for t in tests)
        if "not" in spec:
            inner = self.condition(spec["not"])
            return lambda ctx: not inner(ctx)
        if "present" in spec:
            name = str(spec["present"])
            return lambda ctx: ctx.get(name) is not None
        if "absent" in spec:
            name = str(spec["absent"])
            return lambda ctx: ctx.get(name) is None
        value = self.compile(spec.get("value"))
        if "in-valueset" in spec:
            try:
                codes = self.terminology.codes(str(spec["in-valueset"]))
            except (KeyError, ValueError) as exc:
                raise self.fail(f"in-valueset: {exc}") from None
            return lambda ctx: str(value(ctx)) in codes
        if "in" in spec:
            allowed = {str(v) for v in spec["in"]}
            return lambda ctx: str(value(ctx)) in allowed
        if "is" in spec:
            wanted = str(spec["is"])
            return lambda ctx: str(value(ctx)) == wanted
        if "startswith" in spec:
            prefix = str(spec["startswith"])
            return lambda ctx: str(value(ctx) or "").startswith(prefix)
        raise self.fail(f"unknown condition {spec!r}")
