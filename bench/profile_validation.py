"""Profile validation: cost per resource with the SCR profiles against base-only validation, same run.

The sample care record is built from the sample extracts (`data/extracts-sample`: GP, SWIFT and
hospital files for the six fictional people) with tests/scr_examples.py, plus one example of every
profile. Base-only = what every write costs without profiles: fhir.resources R4B structure, FHIR JSON
rules and required bindings. With profiles = the same plus the profiles the resources claim. Rounds
alternate the two and the medians are reported (the machine's speed drifts). For reference it also
times the profiles with every invariant evaluated by fhirpathpy instead of the compiled closures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from server.fhir.bindings import BindingChecker  # noqa: E402
from server.fhir.profiles import ProfileValidator  # noqa: E402
from server.fhir.types import TypeRegistry  # noqa: E402
from server.fhir.validate import ResourceValidator  # noqa: E402
from tests.scr_examples import care_record, examples  # noqa: E402

TARGET = 2.0


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
    profiled = ResourceValidator(types, bindings, profiles)
    interpreted = ResourceValidator(types, bindings, ProfileValidator.load(external=bindings.systems,
                                                                           native_fhirpath=False))
    for resource in resources:  # every resource is valid: a refusal would make the timing meaningless
        profiled.validate(resource)
    time_per_resource(base.validate, resources, 2)
    time_per_resource(profiled.validate, resources, 2)

    base_times, profiled_times = [], []
    for _ in range(args.rounds):
        base_times.append(time_per_resource(base.validate, resources, args.repeat))
        profiled_times.append(time_per_resource(profiled.validate, resources, args.repeat))
    base_us, profiled_us = statistics.median(base_times), statistics.median(profiled_times)
    interpreted_us = statistics.median(time_per_resource(interpreted.validate, resources, max(1, args.repeat // 4))
                                       for _ in range(3))

    by_profile: dict[str, list[dict]] = defaultdict(list)
    for resource in resources:
        by_profile[resource["meta"]["profile"][0].rsplit("/", 1)[1]].append(resource)
    print(f"profile validation: {len(resources)} resources of the sample care record, {len(by_profile)} profiles, "
          f"{args.rounds} alternating rounds of {args.repeat} passes, medians")
    print(f"  profiles loaded and compiled once:      {load_ms:7.1f} ms")
    print(f"  base-only (R4B structure + bindings):   {base_us:7.1f} us/resource")
    print(f"  with profiles:                          {profiled_us:7.1f} us/resource")
    print(f"  ratio profiles / base-only:             {profiled_us / base_us:7.2f}  (target <= {TARGET:.1f})")
    print(f"  reference: invariants by fhirpathpy:    {interpreted_us:7.1f} us/resource, ratio "
          f"{interpreted_us / base_us:.2f}")
    print("  per profile (resources, base us, profiled us, ratio):")
    for name, group in sorted(by_profile.items()):
        repeat = max(1, args.repeat * len(resources) // (len(group) * 4))
        b = statistics.median(time_per_resource(base.validate, group, repeat) for _ in range(3))
        p = statistics.median(time_per_resource(profiled.validate, group, repeat) for _ in range(3))
        print(f"    {name:38s} {len(group):4d} {b:8.1f} {p:8.1f} {p / b:6.2f}")


if __name__ == "__main__":
    main()
