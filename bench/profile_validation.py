"""Profile validation: cost per resource with the SCR profiles against base-only validation, same run.

The sample care record is built from the sample extracts (`data/extracts-sample`: GP, SWIFT and
hospital files for the six fictional people) with tests/scr_examples.py, plus one example of every
profile. Base-only = what every write costs without profiles: FHIR JSON rules (server/fhir/strict.py),
fhir.resources R4B structure and required bindings. With profiles = the same plus the profiles the
resources claim. Rounds alternate the two and the medians are reported (the machine's speed drifts). For
reference it also times the profiles with every invariant evaluated by fhirpathpy instead of the compiled
closures, and base-only against the structural validation before the strict FHIR JSON rules (`previous`:
R4B structure, an empty-element and control-character screen, required bindings), also alternating.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from server.fhir.bindings import BindingChecker  # noqa: E402
from server.fhir.outcome import Issue  # noqa: E402
from server.fhir.profiles import ProfileValidator  # noqa: E402
from server.fhir.types import TypeRegistry  # noqa: E402
from server.fhir.validate import ResourceValidator  # noqa: E402
from tests.scr_examples import care_record, examples  # noqa: E402

TARGET = 2.0
STRICT_TARGET = 1.15
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
SUSPECT_MARKERS = (b"{}", b"[]", b'""', b"\\u00", b"\\b", b"\\f")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class PreviousValidator(ResourceValidator):
    """The structural validation as it was before the strict FHIR JSON rules (at 6a980dd): the resource id's
    form, empty elements and control characters (walked only when a screen of the serialised text finds a
    suspect), then the R4B model and required bindings."""

    def structure_issues(self, resource: dict[str, Any], resource_type: str, modelled: dict[str, Any],
                         indexes: list[int] | None = None) -> list[Issue]:
        issues = []
        if not ID_PATTERN.match(resource.get("id", "x")):
            issues.append(Issue("value", "Invalid id", expression=(f"{resource_type}.id",)))
        empties: list[str] = []
        if any(marker in orjson.dumps(resource) for marker in SUSPECT_MARKERS):
            empty_elements(resource, resource_type, empties)
        issues += [Issue("structure", "Empty element", expression=(path,)) for path in empties]
        issues += self.model_issues(resource, resource_type)
        if not issues:
            issues += [Issue("code-invalid", problem.message, expression=(problem.expression,))
                       for problem in self.bindings.check(resource)]
        return issues


def empty_elements(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            found.append(path)
        for key, item in value.items():
            if isinstance(item, (dict, list, str)):
                empty_elements(item, f"{path}.{key}", found)
    elif isinstance(value, list):
        if not value:
            found.append(path)
        for index, item in enumerate(value):
            if isinstance(item, (dict, list, str)):
                empty_elements(item, f"{path}[{index}]", found)
    elif value == "" or (CONTROL.search(value) is not None):
        found.append(path)


def time_per_resource(validate, resources: list[dict], repeat: int) -> float:
    """Microseconds per resource over `repeat` passes."""
    start = time.perf_counter()
    for _ in range(repeat):
        for resource in resources:
            validate(resource)
    return (time.perf_counter() - start) / (repeat * len(resources)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20, help="passes over the record per round")
    args = parser.parse_args()

    resources = care_record(args.shared / "data" / "extracts-sample") + list(examples().values())
    types, bindings = TypeRegistry.load(), BindingChecker.load()
    start = time.perf_counter()
    profiles = ProfileValidator.load(external=bindings.systems)
    load_ms = (time.perf_counter() - start) * 1000
    base = ResourceValidator(types, bindings)
    previous = PreviousValidator(types, bindings)
    profiled = ResourceValidator(types, bindings, profiles)
    interpreted = ResourceValidator(types, bindings, ProfileValidator.load(external=bindings.systems,
                                                                           native_fhirpath=False))
    for resource in resources:  # every resource is valid: a refusal would make the timing meaningless
        profiled.validate(resource)
    time_per_resource(base.validate, resources, 2)
    time_per_resource(profiled.validate, resources, 2)

    time_per_resource(previous.validate, resources, 2)
    base_times, profiled_times, previous_times, strict_times = [], [], [], []
    for _ in range(args.rounds):
        base_times.append(time_per_resource(base.validate, resources, args.repeat))
        profiled_times.append(time_per_resource(profiled.validate, resources, args.repeat))
        previous_times.append(time_per_resource(previous.validate, resources, args.repeat))
        strict_times.append(time_per_resource(lambda r: base.strict.issues(r, r["resourceType"]), resources,
                                              args.repeat))
    base_us, profiled_us = statistics.median(base_times), statistics.median(profiled_times)
    previous_us, strict_us = statistics.median(previous_times), statistics.median(strict_times)
    interpreted_us = statistics.median(time_per_resource(interpreted.validate, resources, max(1, args.repeat // 4))
                                       for _ in range(3))

    by_profile: dict[str, list[dict]] = defaultdict(list)
    for resource in resources:
        by_profile[resource["meta"]["profile"][0].rsplit("/", 1)[1]].append(resource)
    print(f"profile validation: {len(resources)} resources of the sample care record, {len(by_profile)} profiles, "
          f"{args.rounds} alternating rounds of {args.repeat} passes, medians")
    print(f"  profiles loaded and compiled once:      {load_ms:7.1f} ms")
    print(f"  base-only (JSON rules, R4B, bindings):  {base_us:7.1f} us/resource")
    print(f"  with profiles:                          {profiled_us:7.1f} us/resource")
    print(f"  ratio profiles / base-only:             {profiled_us / base_us:7.2f}  (target <= {TARGET:.1f})")
    print(f"  reference: invariants by fhirpathpy:    {interpreted_us:7.1f} us/resource, ratio "
          f"{interpreted_us / base_us:.2f}")
    print(f"  previous base-only (before strict JSON): {previous_us:6.1f} us/resource")
    print(f"  of which now the FHIR JSON rules walk:  {strict_us:7.1f} us/resource")
    paired = sorted(b / p for b, p in zip(base_times, previous_times, strict=True))
    print(f"  ratio base-only / previous base-only:   {statistics.median(paired):7.2f}  "
          f"(target <= {STRICT_TARGET:.2f}; median of the rounds' ratios, {paired[0]:.2f}-{paired[-1]:.2f})")
    print("  per profile (resources, base us, profiled us, ratio):")
    for name, group in sorted(by_profile.items()):
        repeat = max(1, args.repeat * len(resources) // (len(group) * 4))
        b = statistics.median(time_per_resource(base.validate, group, repeat) for _ in range(3))
        p = statistics.median(time_per_resource(profiled.validate, group, repeat) for _ in range(3))
        print(f"    {name:38s} {len(group):4d} {b:8.1f} {p:8.1f} {p / b:6.2f}")


if __name__ == "__main__":
    main()
