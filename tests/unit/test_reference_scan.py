"""References found by scanning a resource's stored JSON text: every `reference` string, nothing else."""

from __future__ import annotations

from server.fhir import jsontext
from server.fhir.references import reference_values_in_json


def test_every_reference_string_is_found_and_nothing_inside_other_strings() -> None:
    resource = {
        "resourceType": "CarePlan",
        "subject": {"reference": "Patient/p1"},
        "note": [{"text": 'looks like "reference":"Patient/fake" but is text'}],
        "contained": [{"resourceType": "Practitioner", "id": "a",
                       "extension": [{"url": "x", "valueReference": {"reference": "Organization/o1"}}]}],
        "activity": [{"reference": {"display": "not a string"}}, {"reference": "#a"}],
        "author": {"reference": 'Practitioner/with\\"quote"é'},
    }
    found = sorted(reference_values_in_json(jsontext.dumps(resource).decode()))
    assert found == sorted(["Patient/p1", "Organization/o1", "#a", 'Practitioner/with\\"quote"é'])
