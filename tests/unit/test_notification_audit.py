"""A notification's audit record: the owner as the one who accessed, and the people the versions it carried
name (not those the focus names now)."""

from __future__ import annotations

import json

from server.events.disclosure import disclosure
from server.events.notifications import Event
from server.events.subscriptions import Definition
from server.security.context import Caller
from server.security.scopes import ScopeSet

OWNER = Caller(subject="gp-system", scopes=ScopeSet.of("system/CarePlan.rs"),
               organization="https://fhir.nhs.uk/Id/ods-organization-code|A81001", kind="gp")


def observation(patient: str) -> str:
    return json.dumps({"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "weight"},
                       "subject": {"reference": f"Patient/{patient}"}}, separators=(",", ":"))  # as stored


def test_the_record_names_the_people_of_the_versions_sent_and_its_owner() -> None:
    definition = Definition("topic", "https://receiver.example/hook", content="full-resource")
    events = [Event(7, "Observation", "o1", 1, 0, True, observation("before-correction")),
              Event(8, "Observation", "o1", 2, 0, True, observation("after-correction")),
              Event(9, "Observation", "o2", 1, 0, False, observation("withheld"))]  # not shown: not sent
    record = disclosure(OWNER, "sub-1", definition, events, 200)
    assert record.patients == {"before-correction", "after-correction"}
    assert (record.client, record.organization, record.kind) == ("gp-system", OWNER.organization, "gp")
    assert (record.resource_type, record.resource_id, record.status) == ("Subscription", "sub-1", 200)
    assert record.detail == "notification of events 7-9 (full-resource) to https://receiver.example/hook"


def test_an_id_only_notification_names_no_body_and_an_unanswered_one_is_a_gateway_failure() -> None:
    definition = Definition("topic", "https://receiver.example/hook", content="id-only")
    record = disclosure(OWNER, "sub-2", definition, [Event(1, "CarePlan", "p1", 3, 0, True, None)], 0)
    assert record.patients == set()  # the patients of id-only focuses come from their index rows (focus_keys)
    assert record.status == 502
