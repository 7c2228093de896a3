"""A notification is checked against its owner's access as it is sent, objections included, even by a worker
whose first act is to deliver: events numbered before the objection rows existed (a database upgraded from
before them) are checked on the rows the delivery makes first, never on none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from server.events.delivery import Deliverer
from server.events.fanout import fan_out
from server.events.install import delivery_settings
from tests.events.conftest import World, start_world, subscription
from tests.events.receiver import receiving
from tests.security.world import objection


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world of its own and no worker process: the test runs the fan-out and the delivery itself."""
    live, stop = start_world(tmp_path_factory, "delivery-order")
    yield live
    stop()


def deliver_all(deliverer: Deliverer) -> None:
    while deliverer.deliver_one():
        pass


def test_an_event_numbered_before_the_objection_rows_existed_is_checked_on_them(world: World) -> None:
    services = world.app.extensions["sharedcare"].services
    settings = world.app.extensions["sharedcare.settings"]
    deliverer = Deliverer(services, delivery_settings(settings), world.base)
    with receiving() as receiver:
        hospital = world.subscribe("hospital", subscription("care-plan-changed", receiver.url,
                                                            "CarePlan?patient=Patient/pa"))
        fan_out(services)
        deliver_all(deliverer)  # the handshake
        world.care_plan("pa")
        assert fan_out(services)  # numbered for the hospital: no objection stands yet
        recorded = world.call("integration", "PUT", "Consent/objection-a", json=objection("a", "A81001"))
        assert recorded.status_code in (200, 201), recorded.text
        with services.database.writer.begin() as connection:  # as a database upgraded from before the rows
            connection.execute(text("DELETE FROM reach_objections"))
            connection.execute(text("DELETE FROM reach_holders WHERE holder = 'objections'"))
        services.holdings.ready.clear()  # and a worker process just started on it
        deliver_all(deliverer)  # delivers before any fan-out of its own
        assert receiver.numbers(hospital) == [1]  # the event is counted, its focus withheld
        assert [e for n in receiver.of(hospital) for e in n.events if "focus" in e] == []
        assert world.scalar("SELECT count(*) FROM reach_objections WHERE patient = 'pa'") == 1
        assert world.call("integration", "DELETE", "Consent/objection-a").status_code in (200, 204)
