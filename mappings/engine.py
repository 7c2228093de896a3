"""The mapping engine: checks a row against its file's schema and turns it into FHIR resources (plain dicts)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from .rules import extract_day
from .schemas import build_schema
from .spec import FileMapping, ResourceSpec
from .template import Compiler, Ctx
from .terminology import Terminology


@dataclass
class Mapped:
    """A resource mapped from a row: the spec it came from, its loop key, fullUrl, body and identity."""

    spec: ResourceSpec
    key: str
    full_url: str
    resource: dict[str, Any]
    identity: tuple[str, str] | None  # (system URI, value) the resource is found by

    @property
    def type(self) -> str:
        return self.spec.type


@dataclass(frozen=True)
class RefKey:
    """A reference a row needs: found by ``system|value``; ``create`` is the resource to make if absent."""

    name: str
    type: str
    system: str
    value: str
    create: dict[str, Any] | None
    identifier: bool

    @property
    def lookup(self) -> tuple[str, str, str]:
        return self.type, self.system, self.value

    def reference(self, resource_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {"reference": f"{self.type}/{resource_id}"}
        if self.identifier:
            found["type"] = self.type
            found["identifier"] = {"system": self.system, "value": self.value}
        return found


class FileMapper:
    """Applies one FileMapping within one extract (organisation, extract date, provenance)."""

    def __init__(self, mapping: FileMapping, terminology: Terminology, env: dict[str, Any]) -> None:
        self.mapping = mapping
        self.env = dict(env)
        base = str(env["base"])
        blank = Ctx({}, self.env)
        compiler = Compiler(terminology, mapping.systems, mapping.path)
        self.systems = {alias: compiler.text(template)(blank) for alias, template in mapping.systems.items()}
        label = env.get("extract_date")
        self.as_of = extract_day(str(label)) if label else None
        self.schema = build_schema(mapping.files[0].split(".")[0].title().replace("_", ""), mapping.columns,
                                   mapping.checks, mapping.rules, self.as_of)
        self.recheck_rules = mapping.rules.tightening
        converters = {column.name: column.converter() for column in mapping.columns}
        self.recheck_columns = [(name, converters[name])
                                for name in sorted({c for rule in self.recheck_rules for c in rule.columns})]
        self.profiles = {spec.name: f"{base}/StructureDefinition/{spec.profile}"
                         for spec in mapping.resources if spec.profile}
        self.ref_profiles = {ref.name: f"{base}/StructureDefinition/{ref.profile}"
                             for ref in mapping.references if ref.profile}

    def system(self, alias: str) -> str:
        return self.systems[alias]

    def check(self, row: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
        """(converted values, {}) for a good row, (None, {column: [reasons]}) for a bad one."""
        try:
            return self.schema.load({k: v for k, v in row.items() if v}), {}
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
            return None, {str(k): [str(m) for m in (v if isinstance(v, list) else [v])]
                          for k, v in messages.items()}

    def still_plausible(self, row: dict[str, str]) -> bool:
        """Whether a row found unchanged since an earlier extract still meets the rules that may fail at a later
        extract date (an age grows with it); only the columns those rules read are converted."""
        values: dict[str, Any] = {}
        for name, conversion in self.recheck_columns:
            text = row.get(name)
            if text:
                try:
                    values[name] = conversion(text)
                except ValueError:
                    return False
        return all(rule.failure(values, self.as_of) is None for rule in self.recheck_rules)

    def references(self, values: dict[str, Any]) -> list[tuple[RefKey, bool]]:
        """The references a row needs (those whose value is present), each with whether it is required."""
        ctx = Ctx(values, self.env)
        found = []
        for ref in self.mapping.references:
            value = ref.value(ctx)
            if value is None:
                continue
            system = self.systems[ref.system]
            create = None
            if ref.create is not None:
                body = ref.create(ctx) or {}
                create = {"resourceType": ref.type}
                if ref.name in self.ref_profiles:
                    create["meta"] = {"profile": [self.ref_profiles[ref.name]]}
                create["identifier"] = [{"system": system, "value": str(value)}]
                create.update(body)
            found.append((RefKey(ref.name, ref.type, system, str(value), create, ref.identifier), ref.required))
        return found

    def map(self, values: dict[str, Any], refs: dict[str, dict[str, Any] | None]) -> list[Mapped]:
        """The resources of one checked row; ``refs`` holds each resolved reference by name."""
        ctx = Ctx(values, self.env, refs)
        planned: list[tuple[ResourceSpec, str, dict[str, Any]]] = []
        for spec in self.mapping.resources:
            if spec.when is not None and not spec.when(ctx):
                continue
            if spec.each is None:
                planned.append((spec, "", {}))
                continue
            for column, key, rank in spec.each:
                value = values.get(column)
                if value is not None:
                    planned.append((spec, key, {spec.each_as: value, f"{spec.each_as}_key": key,
                                                f"{spec.each_as}_rank": rank}))
        for spec, key, _local in planned:
            ctx.links[(spec.name, key)] = f"urn:uuid:{uuid.uuid4()}"
        mapped = []
        provenance = self.env.get("provenance")
        for spec, key, local in planned:
            ctx.locals = local
            body = spec.template(ctx) or {}
            identity = None
            if spec.identity_system is not None and spec.identity_value is not None:
                value = spec.identity_value(ctx)
                if value is None:
                    raise ValueError(f"{self.mapping.path}: {spec.name} has no identity value for this row")
                identity = (self.systems[spec.identity_system], str(value))
                identifier = {"system": identity[0], "value": identity[1]}
                others = [i for i in body.get("identifier", []) if i.get("system") != identity[0]]
                body["identifier"] = [identifier, *others]
            meta: dict[str, Any] = {}
            if spec.name in self.profiles:
                meta["profile"] = [self.profiles[spec.name]]
            if provenance:
                meta["source"] = provenance
            resource = {"resourceType": spec.type}
            if meta:
                resource["meta"] = meta
            resource.update((k, v) for k, v in body.items() if k not in ("resourceType", "meta"))
            mapped.append(Mapped(spec, key, ctx.links[(spec.name, key)], resource, identity))
        return mapped
