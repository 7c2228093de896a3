"""The people each organisation holds are kept as rows: every write that changes a relationship changes what
a client already using its rows reaches, at once, in every direction (registration, moving practice, an
organisation joining a locality, admissions made, moved and deleted, and admissions too old to count)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import backend
from tests.security.world import NHS, objection

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def stamp(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def patient(resource_id: str, practice: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": resource_id, "identifier": [{"system": NHS, "value": "9000000025"}],
            "name": [{"family": "Moved"}], "generalPractitioner": [{"reference": f"Organization/org-{practice}"}]}


def admission(person: str, hospital: str, start_days_ago: int, end_days_ago: int | None = None) -> dict[str, Any]:
    period = {"start": stamp(start_days_ago)}
    if end_days_ago is not None:
        period["end"] = stamp(end_days_ago)
    return {"resourceType": "Encounter", "status": "finished" if end_days_ago is not None else "in-progress",
            "class": {"system": ACT, "code": "IMP"}, "subject": {"reference": f"Patient/{person}"},
            "period": period, "serviceProvider": {"reference": f"Organization/org-{hospital}"}}


def test_a_registration_made_after_the_practice_first_read_is_reached_at_once(server) -> None:
    assert server.call("gp", "GET", "Patient/pa").status_code == 200  # the practice's rows are made now
    written = server.call("integration", "PUT", "Patient/pc", json=patient("pc", "A81001"))
    assert written.status_code == 201, written.text
    observation = {"resourceType": "Observation", "id": "obs-c", "status": "final", "code": {"text": "weight"},
                   "subject": {"reference": "Patient/pc"}}
    assert server.call("integration", "PUT", "Observation/obs-c", json=observation).status_code == 201
    assert server.call("gp", "GET", "Patient/pc").status_code == 200
    assert server.call("gp", "GET", "Observation/obs-c").status_code == 200

    moved = server.call("integration", "PUT", "Patient/pc", json=patient("pc", "B82002"))
    assert moved.status_code == 200, moved.text
    assert server.call("gp", "GET", "Patient/pc").status_code == 404
    assert server.call("gp", "GET", "Observation/obs-c").status_code == 404
    found = server.call("gp", "GET", "Observation", params={"subject": "Patient/pc"}).json()
    assert found.get("entry", []) == []

    assert server.call("integration", "PUT", "Patient/pc", json=patient("pc", "A81001")).status_code == 200
    assert server.call("gp", "GET", "Observation/obs-c").status_code == 200
    assert server.call("integration", "DELETE", "Observation/obs-c").status_code in (200, 204)
    assert server.call("integration", "DELETE", "Patient/pc").status_code in (200, 204)
    assert server.call("gp", "GET", "Patient", params={"_id": "pc"}).json().get("entry", []) == []


def test_an_organisation_joining_a_locality_brings_its_patients_to_the_locality_team(server) -> None:
    assert server.call("case-management", "GET", "Patient/pb").status_code == 404
    practice = server.call("integration", "GET", "Organization/org-B82002").json()
    joined = {**practice, "partOf": {"reference": "Organization/org-L0001"}}
    assert server.call("integration", "PUT", "Organization/org-B82002", json=joined).status_code == 200
    assert server.call("case-management", "GET", "Patient/pb").status_code == 200
    assert server.call("case-management", "GET", "Observation/obs-b").status_code == 200

    assert server.call("integration", "PUT", "Organization/org-B82002", json=practice).status_code == 200
    assert server.call("case-management", "GET", "Patient/pb").status_code == 404
    assert server.call("case-management", "GET", "Observation/obs-b").status_code == 404


def test_admissions_made_moved_deleted_and_too_old_change_what_a_hospital_holds(server) -> None:
    assert server.call("hospital", "GET", "Patient/pb").status_code == 404
    old = server.call("integration", "POST", "Encounter", json=admission("pb", "RAA", 45, 35))
    assert old.status_code == 201, old.text
    assert server.call("hospital", "GET", "Patient/pb").status_code == 404  # ended 35 days ago: not held

    recent = server.call("integration", "POST", "Encounter", json=admission("pb", "RAA", 3))
    assert recent.status_code == 201, recent.text
    assert server.call("hospital", "GET", "Patient/pb").status_code == 200
    encounter_id = recent.json()["id"]

    moved = {**recent.json(), "subject": {"reference": "Patient/pa"}}
    assert server.call("integration", "PUT", f"Encounter/{encounter_id}", json=moved).status_code == 200
    assert server.call("hospital", "GET", "Patient/pb").status_code == 404

    back = {**moved, "subject": {"reference": "Patient/pb"}}
    assert server.call("integration", "PUT", f"Encounter/{encounter_id}", json=back).status_code == 200
    assert server.call("hospital", "GET", "Patient/pb").status_code == 200
    assert server.call("integration", "DELETE", f"Encounter/{encounter_id}").status_code in (200, 204)
    assert server.call("hospital", "GET", "Patient/pb").status_code == 404
    assert server.call("integration", "DELETE", f"Encounter/{old.json()['id']}").status_code in (200, 204)


def test_holders_rows_are_made_again_when_a_reindex_changes_what_searches_find(server) -> None:
    """The rows are the relationships evaluated: wiping them and evaluating every holder again (what a
    reindex does) gives back exactly the same rows."""
    assert server.call("gp", "GET", "Patient/pa").status_code == 200
    services = server.app.extensions["sharedcare"].services
    engine = services.database.writer
    with engine.connect() as connection:
        before = sorted(connection.execute(text("SELECT holder, patient FROM reach_people")).all())
    assert ("gp|https://fhir.nhs.uk/Id/ods-organization-code|A81001", "pa") in before
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM reach_people"))
        services.holdings.evaluate_all(connection)
    with engine.connect() as connection:
        after = sorted(connection.execute(text("SELECT holder, patient FROM reach_people")).all())
    assert after == before


def kept_objections(server) -> list[tuple[str, int]]:
    with server.app.extensions["sharedcare"].services.database.writer.connect() as connection:
        return sorted(connection.execute(text("SELECT patient, consent_pk FROM reach_objections")).all())


def evaluated_objections(server) -> list[tuple[str, int]]:
    services = server.app.extensions["sharedcare"].services
    with services.database.writer.connect() as connection:
        return sorted(connection.execute(services.holdings.builder.objections()).all())


def assert_objections(server, people: list[str]) -> None:
    """The kept rows name these people, and are what evaluating every Consent gives."""
    kept = kept_objections(server)
    assert [patient for patient, _ in kept] == people
    assert kept == evaluated_objections(server)


def test_objections_are_kept_as_rows_through_every_write_of_a_consent(server) -> None:
    """An objection made, withdrawn, made again, moved to another person, recorded by the person's own practice
    and deleted: each write changes who is hidden at once, and the kept rows are always what evaluating every
    Consent gives."""
    assert server.call("council", "GET", "Patient/pa").status_code == 200  # the objection rows are made now
    recorded_elsewhere = {**objection("x", "B82002"), "patient": {"reference": "Patient/pa"}}
    assert server.call("integration", "PUT", "Consent/objection-x", json=recorded_elsewhere).status_code == 201
    assert server.call("council", "GET", "Patient/pa").status_code == 404
    assert server.call("gp", "GET", "Patient/pa").status_code == 404  # recorded by another practice
    assert_objections(server, ["pa"])

    withdrawn = {**recorded_elsewhere, "status": "inactive"}
    assert server.call("integration", "PUT", "Consent/objection-x", json=withdrawn).status_code == 200
    assert server.call("council", "GET", "Patient/pa").status_code == 200
    assert_objections(server, [])

    assert server.call("integration", "PUT", "Consent/objection-x", json=recorded_elsewhere).status_code == 200
    moved = {**recorded_elsewhere, "patient": {"reference": "Patient/pb"}}
    assert server.call("integration", "PUT", "Consent/objection-x", json=moved).status_code == 200
    assert server.call("council", "GET", "Patient/pa").status_code == 200
    assert_objections(server, ["pb"])

    own_practice = {**recorded_elsewhere, "organization": [{"reference": "Organization/org-A81001"}]}
    assert server.call("integration", "PUT", "Consent/objection-x", json=own_practice).status_code == 200
    assert server.call("gp", "GET", "Patient/pa").status_code == 200  # the practice that recorded it
    assert server.call("council", "GET", "Patient/pa").status_code == 404
    assert server.call("integration", "DELETE", "Consent/objection-x").status_code in (200, 204)
    assert server.call("council", "GET", "Patient/pa").status_code == 200
    assert_objections(server, [])


def test_objection_rows_are_made_whole_when_a_process_first_needs_them(server) -> None:
    """A database whose objection rows were never made (one migrated from before them, or wiped) gets them
    from its Consents before the first caller that honours objections is answered."""
    assert server.call("integration", "PUT", "Consent/objection-a", json=objection("a", "B82002")).status_code == 201
    services = server.app.extensions["sharedcare"].services
    with services.database.writer.begin() as connection:
        connection.execute(text("DELETE FROM reach_objections"))
        connection.execute(text("DELETE FROM reach_holders WHERE holder = 'objections'"))
    services.holdings.ready.clear()  # as a process starting on that database
    assert server.call("council", "GET", "Patient/pa").status_code == 404
    assert_objections(server, ["pa"])
    assert server.call("integration", "DELETE", "Consent/objection-a").status_code in (200, 204)
    assert server.call("council", "GET", "Patient/pa").status_code == 200


@pytest.mark.skipif(backend() != "postgresql", reason="PostgreSQL's planner statistics")
def test_a_holders_rows_made_whole_are_analyzed_at_once(server) -> None:
    """A holder's rows arrive at once (thousands, for a practice): the planner learns of them straight away,
    not when the statistics upkeep next finds the table doubled, since every gp statement joins through them."""
    services = server.app.extensions["sharedcare"].services

    def analyzed() -> int:
        with services.database.writer.connect() as connection:
            return connection.execute(text("SELECT analyze_count FROM pg_stat_user_tables "
                                            "WHERE relname = 'reach_people'")).scalar_one()

    before = analyzed()
    with services.database.writer.begin() as connection:
        connection.execute(text("DELETE FROM reach_holders WHERE holder LIKE 'gp|%'"))
    services.holdings.ready.clear()  # as a process meeting a holder not made yet
    assert server.call("gp", "GET", "Patient/pa").status_code == 200
    assert analyzed() == before + 1


@pytest.mark.skipif(backend() != "postgresql", reason="PostgreSQL's advisory locks")
def test_a_batch_entry_rolled_back_leaves_the_next_entry_keeping_rows_under_the_shared_lock(server) -> None:
    """A holder's rows are kept under a shared lock (so none is made whole meanwhile). A lock taken inside a
    batch entry's savepoint goes with it when the entry fails: the next entry takes it again."""
    from server.security.context import Caller

    services = server.app.extensions["sharedcare"].services
    holdings = services.holdings

    def shared_locks(connection: Any) -> int:
        return connection.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                       "AND pid = pg_backend_pid() AND mode = 'ShareLock'")).scalar_one()

    with services.unit(Caller.system("test"), writing=True) as repo:
        assert shared_locks(repo.connection) == 0
        with pytest.raises(RuntimeError), repo.connection.begin_nested():
            holdings.holders(repo)  # the first entry keeps rows: the shared lock is taken inside its savepoint
            assert shared_locks(repo.connection) == 1
            raise RuntimeError("the entry fails")
        repo.discard_pending()  # as a batch does for a failed entry
        assert shared_locks(repo.connection) == 0  # gone with the savepoint
        holdings.holders(repo)  # the next entry keeps rows
        assert shared_locks(repo.connection) == 1
