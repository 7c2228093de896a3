"""Token requests and refused credentials are audited too (refusals as security alerts), without the secrets."""

from __future__ import annotations

import requests
from sqlalchemy import text

from tests.auth import register_client, token_answer


def rows(server, where: str, **params) -> list:
    engine = server.app.extensions["sharedcare"].services.database.writer
    with engine.connect() as connection:
        return list(connection.execute(text(f"SELECT * FROM audit_events WHERE {where}"), params))


def test_token_requests_and_refused_bearers_are_audited(server) -> None:
    client = register_client(server.app, kind="gp", organization="https://fhir.nhs.uk/Id/ods-organization-code|A81001",
                             scope="system/Patient.rs")
    status, body = token_answer(server.base, client, scope="system/Patient.rs system/CarePlan.rs")
    assert status == 200
    issued = rows(server, "client = :c AND interaction = 'token'", c=client.client_id)
    assert [(r.status, bool(r.alert)) for r in issued] == [(200, False)]
    assert "system/Patient.rs" in issued[0].detail
    refused = requests.get(f"{server.base}/Patient/pa", timeout=30,
                           headers={"Authorization": "Bearer not-a-token", "X-Request-ID": "refused-bearer-1"})
    assert refused.status_code == 401
    alert = rows(server, "request_id = 'refused-bearer-1'")
    assert [(r.status, bool(r.alert), r.interaction) for r in alert] == [(401, True, "bearer")]
    unsigned = requests.post(f"{server.base}/auth/token", timeout=30, headers={"X-Request-ID": "refused-token-1"},
                             data={"grant_type": "client_credentials", "client_assertion": "x.y.z",
                                   "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
    assert unsigned.status_code in (400, 401)
    assert [bool(r.alert) for r in rows(server, "request_id = 'refused-token-1'")] == [True]
    secrets = rows(server, "query LIKE :t OR detail LIKE :t", t=f"%{body['access_token'][:40]}%")
    assert secrets == []
