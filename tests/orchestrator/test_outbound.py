"""Outbound requests to non-public addresses are refused when the setting says so (SSRF),
judged on the address each connection is made to, after name resolution."""

from __future__ import annotations

import pytest

from orchestrator_app.models import Status
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.transport import KeepAliveTransport, address_refusal
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory
from tests.orchestrator.hostile import HostileReceiver


@pytest.fixture
def hostile():
    made = HostileReceiver()
    yield made
    made.stop()


@pytest.mark.parametrize("ip", [
    "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "224.0.0.1", "240.0.0.1", "198.18.0.1",
])
def test_non_public_addresses_are_refused(ip):
    assert address_refusal(ip) is not None


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(ip):
    assert address_refusal(ip) is None


def _deliver(url: str):
    TargetFactory(name="t", url=url)
    milestone_emit(event=MilestoneEventFactory())
    delivery, = deliveries_run(transport=KeepAliveTransport())
    return delivery


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_target_is_refused_when_private_addresses_are_not_allowed(
        settings, hostile, host):
    settings.CLAWDBOT_OUTBOUND_ALLOW_PRIVATE = False
    delivery = _deliver(hostile.url("ok").replace("127.0.0.1", host))
    assert (delivery.status, delivery.last_status_code) == (Status.RETRYING, None)
    assert "loopback" in delivery.last_error
    assert hostile.seen("ok") == []  # not a byte reached it


@pytest.mark.django_db
def test_a_loopback_target_is_reached_when_private_addresses_are_allowed(settings, hostile):
    settings.CLAWDBOT_OUTBOUND_ALLOW_PRIVATE = True
    assert _deliver(hostile.url("ok")).status == Status.DELIVERED
