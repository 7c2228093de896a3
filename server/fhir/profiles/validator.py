"""ProfileValidator: which profiles a resource must meet (claimed in meta.profile or mandated) and the check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..outcome import Issue
from .check import Checker
from .rules import Rule, compile_profiles
from .source import DEFAULT_BASE, ConformanceSet, load_conformance
from .terminology import Terminology

CARE_RECORD = "care-record"
Json = dict[str, Any]
ExternalValueSet = Callable[[str], dict[str, frozenset[str]] | None]


@dataclass(frozen=True)
class Profile:
    """A compiled profile and the resource type it constrains."""

    url: str
    name: str
    type: str
    rule: Rule


class ProfileValidator:
    """Checks resources against the bundled profiles; compiled once, read-only afterwards."""

    def __init__(self, conformance: ConformanceSet, terminology: Terminology, mandatory: str = "",
                 native_fhirpath: bool = True) -> None:
        self.conformance = conformance
        self.terminology = terminology
        definitions = conformance.of("StructureDefinition")
        rules = compile_profiles(definitions, terminology, native_fhirpath)
        self.profiles = {d["url"]: Profile(d["url"], d["name"], d["type"], rules[d["url"]])
                         for d in definitions if d["url"] in rules}
        self.by_type: dict[str, list[str]] = {}
        for profile in self.profiles.values():
            self.by_type.setdefault(profile.type, []).append(profile.url)
        self.mandatory = self.parse_mandatory(mandatory)

    @classmethod
    def load(cls, base: str = DEFAULT_BASE, mandatory: str = "", external: ExternalValueSet | None = None,
             native_fhirpath: bool = True) -> ProfileValidator:
        conformance = load_conformance(base)
        terminology = Terminology(conformance.of("CodeSystem"), conformance.of("ValueSet"),
                                  conformance.of("ConceptMap"), external)
        return cls(conformance, terminology, mandatory, native_fhirpath)

    def parse_mandatory(self, setting: str) -> dict[str, tuple[str, ...]]:
        """`care-record` (every profile for its type) and/or `Type=url` items, comma-separated."""
        mandated: dict[str, list[str]] = {}
        for item in (part.strip() for part in setting.split(",")):
            if not item:
                continue
            if item == CARE_RECORD:
                for type_name, urls in self.by_type.items():
                    mandated.setdefault(type_name, []).extend(urls)
                continue
            type_name, _, url = item.partition("=")
            profile = self.profiles.get(url.strip())
            if profile is None:
                raise ValueError(f"MANDATORY_PROFILES: {url.strip()!r} is not a bundled profile")
            if profile.type != type_name.strip():
                raise ValueError(f"MANDATORY_PROFILES: {profile.url} constrains {profile.type}, not {type_name}")
            mandated.setdefault(profile.type, []).append(profile.url)
        return {type_name: tuple(dict.fromkeys(urls)) for type_name, urls in mandated.items()}

    def supported(self, resource_type: str) -> list[str]:
        """The bundled profiles of a type (for the CapabilityStatement)."""
        return sorted(self.by_type.get(resource_type, []))

    def required_profiles(self, resource: Json, resource_type: str) -> tuple[list[Profile], list[Issue]]:
        """The known profiles this resource must meet, and issues about the claim itself."""
        meta = resource.get("meta")
        claimed = meta.get("profile") if meta.__class__ is dict else None
        urls = [u.split("|", 1)[0] for u in claimed if u.__class__ is str] if claimed.__class__ is list else []
        issues: list[Issue] = []
        chosen: list[Profile] = []
        for url in urls:
            profile = self.profiles.get(url)
            if profile is None:
                continue  # an unknown profile is accepted unchecked
            if profile.type != resource_type:
                issues.append(Issue("processing", f"The resource claims {url}, a profile for {profile.type}, but "
                                                  f"it is a {resource_type}", (f"{resource_type}.meta.profile",)))
                continue
            chosen.append(profile)
        mandated = self.mandatory.get(resource_type)
        if mandated and not any(p.url in mandated for p in chosen):
            if len(mandated) == 1:
                chosen.append(self.profiles[mandated[0]])
            else:
                issues.append(Issue("processing", f"A {resource_type} must claim one of the profiles "
                                                  f"{', '.join(mandated)} in meta.profile",
                                    (f"{resource_type}.meta.profile",)))
        return chosen, issues

    def check(self, resource: Json, resource_type: str | None = None, also: list[str] | None = None) -> list[Issue]:
        """Issues (errors and warnings) of a resource against the profiles it must meet and any others named."""
        resource_type = resource_type or str(resource.get("resourceType"))
        chosen, issues = self.required_profiles(resource, resource_type)
        for url in also or ():
            profile = self.profiles.get(url.split("|", 1)[0])
            if profile is None:
                issues.append(Issue("not-supported", f"Profile {url} is not known to this server"))
            elif profile.type != resource_type:
                issues.append(Issue("processing", f"Profile {url} constrains {profile.type}, not {resource_type}"))
            elif profile not in chosen:
                chosen.append(profile)
        for profile in chosen:
            checker = Checker(profile.url)
            checker.check_value(resource, profile.rule, resource_type, resource_type)
            issues.extend(checker.issues)
        return issues
