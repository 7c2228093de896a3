"""Many searches of one type in one statement (the notification fan-out's and delivery's access checks)
answer, search by search, the ids the same searches give one at a time, for every kind of caller."""

from __future__ import annotations

import pytest

from server.fhir.outcome import FhirError
from server.security.context import Caller
from server.security.scopes import ScopeSet
from tests.security.conftest import SCOPES
from tests.security.world import ORGANISATIONS

KINDS = ["gp", "hospital", "council", "case-management", "voluntary-sector", "integration"]


def caller(kind: str) -> Caller:
    return Caller(subject=f"matching-{kind}", scopes=ScopeSet.of(SCOPES.get(kind, "system/*.cruds")),
                  organization=ORGANISATIONS[kind], kind=kind)


@pytest.mark.parametrize("kind", KINDS)
def test_matching_ids_answers_each_search_as_the_search_would(server, kind: str) -> None:
    services = server.app.extensions["sharedcare"].services
    with services.unit(Caller.system("test"), writing=False) as everything:
        ids = {resource_type: sorted(stored.id for stored in everything.search(
            resource_type, [("_count", "500")]).matches) for resource_type in ("Patient", "CarePlan", "Observation")}
    assert all(ids.values())
    for resource_type, known in ids.items():
        searches = [[("_id", ",".join(known))], [("_id", known[0])], [("_id", ",".join([*known, "nobody"]))],
                    [("_id", ",".join(known)), ("_lastUpdated", "gt2000-01-01")]]
        if resource_type != "Patient":
            searches.append([("_id", ",".join(known)), ("patient", "Patient/pa")])
        with services.unit(caller(kind), writing=False) as repo:
            try:
                together = repo.matching_ids(resource_type, searches)
            except FhirError as exc:
                assert exc.status == 403
                with pytest.raises(FhirError):
                    repo.search(resource_type, searches[0])
                continue
            one_by_one = [{stored.id for stored in repo.search(resource_type, [*params, ("_count", "500")]).matches}
                          for params in searches]
        assert together == one_by_one, (kind, resource_type)
    if kind == "integration":
        assert together[0] == set(ids["Observation"])
    if kind == "gp":
        assert 0 < len(together[0]) < len(ids["Observation"])  # the reach narrows it, within the statement
