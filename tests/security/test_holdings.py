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


def test_a_hospitals_rows_made_days_ago_are_brought_up_to_today_through_the_people_the_days_crossed(server) -> None:
    """A hospital holds the people of its last 30 days of admissions. Rows made five days ago held that day's
    30 days: the first request of today brings them up to today's, evaluating again only the people with an
    admission the five days have crossed (on PostgreSQL the other rows are left as they were, not rewritten),
    and the rows are then what evaluating the hospital whole today gives."""
    from server.security.policy import ODS as ODS_SYSTEM
    from server.store.search.holdings import basis_of, holder_key

    services = server.app.extensions["sharedcare"].services
    holdings = services.holdings
    policy = holdings.builder.book.policy("hospital")
    organization = f"{ODS_SYSTEM}|RAA"
    holder = holder_key(policy, organization)
    written = [("Patient", "pc", patient("pc", "B82002")), ("Patient", "pd", patient("pd", "B82002"))]
    for resource_type, resource_id, body in written:
        assert server.call("integration", "PUT", f"{resource_type}/{resource_id}", json=body).status_code == 201
    crossed = server.call("integration", "POST", "Encounter", json=admission("pc", "RAA", 40, 33)).json()["id"]
    standing = server.call("integration", "POST", "Encounter", json=admission("pd", "RAA", 12, 10)).json()["id"]

    def rows(connection: Any) -> list[tuple[str, str]]:
        identity = "xmin::text" if backend() == "postgresql" else "''"
        return sorted(connection.execute(text(f"SELECT patient, {identity} FROM reach_people WHERE holder = :h"),
                                         {"h": holder}).all())

    earlier = datetime.now(UTC) - timedelta(days=5)
    with services.database.writer.begin() as connection:  # the rows as the hospital's first request made them then
        holdings.evaluate(connection, policy, organization, earlier, None)
        connection.execute(text("DELETE FROM reach_holders WHERE holder = :h"), {"h": holder})
        connection.execute(text("INSERT INTO reach_holders (holder, day, basis) VALUES (:h, :d, :b)"),
                           {"h": holder, "d": earlier.date().isoformat(), "b": basis_of(policy)})
        made = rows(connection)
    assert {"pa", "pc", "pd"} <= {person for person, _ in made}
    holdings.ready.clear()  # as a process meeting the rows on a later day

    assert server.call("hospital", "GET", "Patient/pc").status_code == 404  # its admission ended 33 days ago
    assert server.call("hospital", "GET", "Patient/pd").status_code == 200
    with services.database.writer.connect() as connection:
        caught_up = rows(connection)
        day = connection.execute(text("SELECT day FROM reach_holders WHERE holder = :h"), {"h": holder}).scalar()
    with services.database.writer.connect() as connection, connection.begin() as whole:
        holdings.evaluate(connection, policy, organization, datetime.now(UTC), None)  # undone below
        evaluated = [person for person, _ in rows(connection)]
        whole.rollback()
    assert [person for person, _ in caught_up] == evaluated
    assert "pc" not in evaluated and {"pa", "pd"} <= set(evaluated)
    assert day == datetime.now(UTC).date().isoformat()
    untouched = [row for row in made if row[0] != "pc"]
    assert caught_up == untouched  # on PostgreSQL: the same row versions (xmin), none rewritten

    for resource_type, resource_id in [("Encounter", crossed), ("Encounter", standing), ("Patient", "pc"),
                                       ("Patient", "pd")]:
        assert server.call("integration", "DELETE", f"{resource_type}/{resource_id}").status_code in (200, 204)


def test_the_people_a_passing_day_can_change_are_those_whose_dated_values_it_crossed(server) -> None:
    """Bringing rows up to a new day follows each dated criterion through the values the moving date crossed:
    of a relationship whose matches are the people themselves (a birth date 1,000 days back, crossed by a
    person born 1,003 days ago between five days ago and today, not by one born 990 days ago); a criterion it
    cannot follow (an approximate date, `_lastUpdated`, which has no date index rows) or rows made over a
    month ago have the rows made whole instead."""
    from server.security.policy import AccessPolicy

    def born(resource_id: str, days_ago: int) -> dict[str, Any]:
        return {**patient(resource_id, "B82002"), "birthDate": stamp(days_ago)[:10]}

    for resource_id, days_ago in (("pf", 1003), ("pg", 990)):
        body = born(resource_id, days_ago)
        assert server.call("integration", "PUT", f"Patient/{resource_id}", json=body).status_code == 201
    holdings = server.app.extensions["sharedcare"].services.holdings
    today = datetime.now(UTC)
    made = (today - timedelta(days=5)).date().isoformat()
    toddlers = AccessPolicy.from_data({"kind": "gp", "patients": [{"search": "Patient?birthdate=le{days_ago:1000}"}]},
                                      "a test")
    approximate = AccessPolicy.from_data({"kind": "gp", "patients": [
        {"search": "Patient?birthdate=le{days_ago:1000}"},
        {"search": "Encounter?date=ap{days_ago:30}", "patient": "subject"}]}, "a test")
    with server.app.extensions["sharedcare"].services.database.writer.connect() as connection:
        assert holdings.passing_people(connection, toddlers, None, made, today) == ["pf"]
        assert holdings.passing_people(connection, toddlers, None, today.date().isoformat(), today) == []
        assert holdings.passing_people(connection, approximate, None, made, today) is None
        updated = AccessPolicy.from_data({"kind": "gp", "patients": [
            {"search": "Encounter?_lastUpdated=ge{days_ago:30}", "patient": "subject"}]}, "a test")
        assert holdings.passing_people(connection, updated, None, made, today) is None  # no date index rows
        long_ago = (today - timedelta(days=40)).date().isoformat()
        assert holdings.passing_people(connection, toddlers, None, long_ago, today) is None
    for resource_id in ("pf", "pg"):
        assert server.call("integration", "DELETE", f"Patient/{resource_id}").status_code in (200, 204)


def test_a_holders_rows_evaluated_by_an_edited_policy_are_made_whole_again(server) -> None:
    """A locality edits a kind's policy as data: rows evaluated by its former relationships are made whole again
    by the first caller that needs them, the same day (here the hospital's 30 days cut to 14)."""
    from server.security.policy import ODS as ODS_SYSTEM
    from server.security.policy import AccessPolicy

    services = server.app.extensions["sharedcare"].services
    holdings = services.holdings
    shipped = holdings.builder.book.policy("hospital")
    edited = AccessPolicy.from_data({"kind": "hospital", "patients": [{
        "search": "Encounter?service-provider:Organization.identifier={organization}&date=ge{days_ago:14}",
        "patient": "subject"}]}, "an edited policy")
    organization = f"{ODS_SYSTEM}|RAA"
    assert server.call("integration", "PUT", "Patient/ph", json=patient("ph", "B82002")).status_code == 201
    admitted = server.call("integration", "POST", "Encounter", json=admission("ph", "RAA", 25, 20)).json()["id"]
    assert server.call("hospital", "GET", "Patient/ph").status_code == 200  # ended 20 days ago: within 30

    def held() -> set[str]:
        with services.database.writer.connect() as connection:
            return set(connection.execute(text("SELECT patient FROM reach_people WHERE holder = :h"),
                                          {"h": f"hospital|{organization}"}).scalars())

    today = datetime.now(UTC)
    holdings.ready.clear()
    holdings.ensure(edited, organization, today)
    assert "ph" not in held() and "pa" in held()
    holdings.ready.clear()
    holdings.ensure(shipped, organization, today)  # and back
    assert {"ph", "pa"} <= held()
    for path in (f"Encounter/{admitted}", "Patient/ph"):
        assert server.call("integration", "DELETE", path).status_code in (200, 204)
