"""Reading the YAML mapping specifications (one per extract file) into checked, compiled objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from .rules import Rules, parse_rules
from .schemas import CheckSpec, ColumnSpec
from .template import Compiler, Node, SpecError, expand_columns
from .terminology import Terminology

SOURCES = ("gp", "swift", "hospital")
WRITE_STRATEGIES = ("upsert", "patient", "keep-unchanged", "status-history")
FILE_KEYS = {"files", "order", "source", "title", "key", "columns", "checks", "rules", "references", "resources"}
RESOURCE_KEYS = {"name", "type", "profile", "when", "each", "as", "identity", "write", "disappear", "template"}
COLUMN_KEYS = {"required", "type", "format", "values", "valueset", "default", "true_values", "false_values"}
REFERENCE_KEYS = {"type", "system", "value", "required", "create", "profile", "identifier"}


@dataclass(frozen=True)
class ReferenceSpec:
    """A row's reference to another resource, found by identifier (and created when ``create`` is given)."""

    name: str
    type: str
    system: str  # alias in systems.yaml
    value: Node
    required: bool  # a row whose required reference cannot be resolved is held back
    create: Node | None
    profile: str | None
    identifier: bool  # the Reference carries the identifier as well as the literal reference


@dataclass(frozen=True)
class ResourceSpec:
    """One resource a row maps to."""

    name: str
    type: str
    profile: str | None
    when: Any  # compiled condition or None
    each: list[tuple[str, str, int]] | None
    each_as: str
    identity_system: str | None  # alias
    identity_value: Node | None
    write: dict[str, Any]
    disappear: dict[str, Any]
    template: Node

    @property
    def strategy(self) -> str:
        return str(self.write["strategy"])


@dataclass
class FileMapping:
    """The mapping of one extract file: its columns (row checks), references and resources."""

    path: str
    source: str
    files: list[str]
    title: str
    key: str
    columns: list[ColumnSpec]
    checks: list[CheckSpec]
    references: list[ReferenceSpec]
    resources: list[ResourceSpec]
    systems: dict[str, str]
    order: int = 0
    rules: Rules = field(default_factory=Rules)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def read_yaml(package: str, name: str) -> Any:
    return yaml.safe_load(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def load_systems() -> dict[str, str]:
    systems = read_yaml("mappings", "systems.yaml")
    if not isinstance(systems, dict):
        raise SpecError("mappings/systems.yaml must map aliases to system URIs")
    return {str(k): str(v) for k, v in systems.items()}


def load_all(terminology: Terminology) -> dict[tuple[str, str], FileMapping]:
    """Every bundled spec, by (source, file name) for each file name it applies to."""
    systems = load_systems()
    found: dict[tuple[str, str], FileMapping] = {}
    root = resources.files("mappings")
    for source in SOURCES:
        folder = root.joinpath(source)
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda item: item.name):
            if entry.name.endswith((".yaml", ".yml")):
                mapping = parse(f"mappings/{source}/{entry.name}", yaml.safe_load(entry.read_text("utf-8")),
                                terminology, systems)
                if mapping.source != source:
                    raise SpecError(f"{mapping.path}: source {mapping.source!r} but the file is under {source}/")
                for name in mapping.files:
                    if (source, name) in found:
                        raise SpecError(f"{mapping.path}: {name} is already mapped by {found[source, name].path}")
                    found[source, name] = mapping
    return found


def _unknown(where: str, given: dict[str, Any], allowed: set[str]) -> None:
    extra = set(given) - allowed
    if extra:
        raise SpecError(f"{where}: unknown keys {sorted(extra)}; allowed: {sorted(allowed)}")


def parse(path: str, raw: Any, terminology: Terminology, systems: dict[str, str]) -> FileMapping:
    """Check and compile one spec document."""
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a mapping spec is a YAML mapping")
    _unknown(path, raw, FILE_KEYS)
    for required in ("files", "source", "key", "columns", "resources"):
        if required not in raw:
            raise SpecError(f"{path}: '{required}' is required")
    if raw["source"] not in SOURCES:
        raise SpecError(f"{path}: source must be one of {SOURCES}")
    columns = [_column(path, name, options or {}, terminology) for pattern, options in raw["columns"].items()
               for name, _key, _rank in expand_columns(str(pattern))]
    names = {c.name for c in columns}
    if raw["key"] not in names:
        raise SpecError(f"{path}: key column {raw['key']!r} is not among the columns")
    checks = [_check(path, c, names) for c in raw.get("checks", [])]
    rules = parse_rules(path, raw.get("rules"), {c.name: c.type for c in columns})
    compiler = Compiler(terminology, systems, path)
    references = [_reference(path, name, options, compiler, systems)
                  for name, options in (raw.get("references") or {}).items()]
    specs = [_resource(path, index, r, compiler, systems) for index, r in enumerate(raw["resources"])]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise SpecError(f"{path}: two resources are named {spec.name!r}")
        seen.add(spec.name)
    return FileMapping(path, raw["source"], [str(f) for f in raw["files"]], str(raw.get("title", "")),
                       str(raw["key"]), columns, checks, references, specs, systems, int(raw.get("order", 0)),
                       rules, raw)


def _column(path: str, name: str, options: dict[str, Any], terminology: Terminology) -> ColumnSpec:
    where = f"{path}: column {name}"
    if not isinstance(options, dict):
        raise SpecError(f"{where}: options must be a mapping")
    _unknown(where, options, COLUMN_KEYS)
    values: frozenset[str] | None = None
    values_from = None
    if "values" in options:
        values = frozenset(str(v) for v in options["values"])
    if "valueset" in options:
        values_from = str(options["valueset"])
        try:
            values = terminology.codes(values_from)
        except (KeyError, ValueError) as exc:
            raise SpecError(f"{where}: {exc}") from None
    spec = ColumnSpec(
        name=name,
        required=bool(options.get("required", False)),
        type=str(options.get("type", "string")),
        format=options.get("format"),
        values=values,
        values_from=values_from,
        default=None if options.get("default") is None else str(options["default"]),
        true=frozenset(str(v) for v in options.get("true_values", ["Y"])),
        false=frozenset(str(v) for v in options.get("false_values", ["N"])),
    )
    try:
        spec.converter()
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from None
    return spec


def _check(path: str, raw: Any, names: set[str]) -> CheckSpec:
    if not isinstance(raw, dict) or not {"column", "type", "when"} <= set(raw):
        raise SpecError(f"{path}: a check needs column, type and when ({{column: X, in: [...]}} or "
                        "{{column: X, present: true}})")
    when = raw["when"]
    if raw["column"] not in names or when.get("column") not in names:
        raise SpecError(f"{path}: check {raw!r} names an unknown column")
    when_in = None if when.get("present") else frozenset(str(v) for v in when.get("in", []))
    check = CheckSpec(str(raw["column"]), str(raw["type"]), str(when["column"]), when_in)
    if check.type != "required":
        try:
            ColumnSpec(check.column, type=check.type).converter()
        except ValueError as exc:
            raise SpecError(f"{path}: {exc}") from None
    return check


def _reference(path: str, name: str, raw: Any, compiler: Compiler, systems: dict[str, str]) -> ReferenceSpec:
    where = f"{path}: reference {name}"
    if not isinstance(raw, dict) or not {"type", "system", "value"} <= set(raw):
        raise SpecError(f"{where}: needs type, system and value")
    _unknown(where, raw, REFERENCE_KEYS)
    if raw["system"] not in systems:
        raise SpecError(f"{where}: unknown system {raw['system']!r}")
    create = compiler.compile(raw["create"]) if raw.get("create") is not None else None
    return ReferenceSpec(name, str(raw["type"]), str(raw["system"]), compiler.compile(raw["value"]),
                         bool(raw.get("required", create is None)), create, raw.get("profile"),
                         bool(raw.get("identifier", False)))


def _resource(path: str, index: int, raw: Any, compiler: Compiler, systems: dict[str, str]) -> ResourceSpec:
    where = f"{path}: resources[{index}]"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a resource is a mapping")
    _unknown(where, raw, RESOURCE_KEYS)
    for required in ("name", "type", "template"):
        if required not in raw:
            raise SpecError(f"{where}: '{required}' is required")
    write = raw.get("write", "upsert")
    write = {"strategy": write} if isinstance(write, str) else dict(write)
    if write.get("strategy") not in WRITE_STRATEGIES:
        raise SpecError(f"{where}: write strategy must be one of {WRITE_STRATEGIES}")
    disappear = raw.get("disappear", "keep")
    disappear = {"action": disappear} if isinstance(disappear, str) else dict(disappear)
    identity = raw.get("identity")
    if identity is None and write["strategy"] != "patient":
        raise SpecError(f"{where}: an identity (system and value) is required to find the resource again")
    if identity is not None and identity.get("system") not in systems:
        raise SpecError(f"{where}: identity system {identity.get('system')!r} is not in systems.yaml")
    compiler.where = f"{where} ({raw['name']})"
    return ResourceSpec(
        name=str(raw["name"]),
        type=str(raw["type"]),
        profile=raw.get("profile"),
        when=compiler.condition(raw["when"]) if raw.get("when") else None,
        each=expand_columns(str(raw["each"])) if raw.get("each") else None,
        each_as=str(raw.get("as", "item")),
        identity_system=None if identity is None else str(identity["system"]),
        identity_value=None if identity is None else compiler.compile(identity["value"]),
        write=write,
        disappear=disappear,
        template=compiler.compile(raw["template"]),
    )
