"""No target can stall or crash the outbox: hostile answers over real HTTP on loopback.

Every answer must end in a recorded attempt within the target's timeout, and the other
targets' deliveries in the same batch must be recorded as usual.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator_app import retry
from orchestrator_app.models import Delivery, DeliveryAttempt, Status
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.transport import KeepAliveTransport
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory
from tests.orchestrator.hostile import HostileReceiver

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


@pytest.fixture
def hostile():
    made = HostileReceiver()
    yield made
    made.stop()


def _send(hostile: HostileReceiver, url: str, **target: object) -> dict[str, Delivery]:
    """One milestone to the hostile URL and to a healthy target; one batch; both results."""
    TargetFactory(name="hostile", url=url, **target)
    TargetFactory(name="healthy", url=hostile.url("ok"))
    milestone_emit(event=MilestoneEventFactory())
    done = {d.target: d for d in deliveries_run(transport=KeepAliveTransport())}
    assert done["healthy"].status == Status.DELIVERED
    return done


def _attempt(delivery: Delivery) -> DeliveryAttempt:
    return DeliveryAttempt.objects.exclude(outcome="started").get(delivery=delivery)


@pytest.mark.parametrize("value", [
    "²", "-1", "1e9", "9" * 40, "", " ", "soon", "Sat, 28 Feb 2026 12:01:00 GMT",
    "Thu, 01 Jan 2099 00:00:00 GMT", "Fri, 31 Feb 2026 12:00:00 GMT", "3600, 7", "\xa0\xff",
])
def test_any_retry_after_ends_in_a_recorded_retry_within_bounds(hostile, value):
    url = hostile.url("headers", code=503, h=[f"Retry-After:{value}"])
    delivery = _send(hostile, url, retry_schedule="60")["hostile"]
    assert delivery.status == Status.RETRYING
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert retry.RETRY_AFTER_MIN_S - 1 <= wait <= retry.RETRY_AFTER_MAX_S + 1


def test_a_retry_after_of_thousands_of_digits_is_ignored(hostile):
    url = hostile.url("headers", code=503, long="Retry-After:9:5000")
    delivery = _send(hostile, url, retry_schedule="60")["hostile"]
    assert delivery.status == Status.RETRYING
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert retry.RETRY_AFTER_MIN_S - 1 <= wait <= retry.RETRY_AFTER_MAX_S + 1


def test_repeated_retry_after_headers_are_ignored_not_guessed(hostile):
    url = hostile.url("headers", code=503, h=["Retry-After:5", "Retry-After:7200"])
    delivery = _send(hostile, url, retry_schedule="60")["hostile"]
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 48 <= wait <= 72  # the schedule's 60 s with jitter


def test_a_huge_reply_is_cut_off_not_drained(hostile):
    url = hostile.url("huge", bytes=200 * MiB)
    delivery = _send(hostile, url)["hostile"]
    assert (delivery.status, delivery.last_status_code) == (Status.DELIVERED, 200)
    # What the server got to write before the client closed: a cap plus socket buffers.
    request, = hostile.seen("huge")
    assert request.sent < 32 * MiB


def test_a_huge_chunked_reply_is_cut_off_not_drained(hostile):
    url = hostile.url("huge", bytes=200 * MiB, chunked=1)
    _send(hostile, url)
    request, = hostile.seen("huge")
    assert request.sent < 32 * MiB


def test_a_dripping_body_is_cut_at_the_attempts_deadline(hostile):
    # 31 bytes at 0.2 s each would take 6 s: each read is quick, the whole is not.
    url = hostile.url("drip", interval=0.2)
    delivery = _send(hostile, url, timeout_s=1.0)["hostile"]
    assert delivery.status == Status.RETRYING
    assert delivery.last_error.startswith("timeout after 1s")
    request, = hostile.seen("drip")
    assert not request.done


def test_dripping_headers_are_cut_at_the_attempts_deadline(hostile):
    url = hostile.url("drip-headers", interval=0.1)
    delivery = _send(hostile, url, timeout_s=1.0)["hostile"]
    assert delivery.status == Status.RETRYING
    assert delivery.last_error.startswith("timeout after 1s")


def test_a_target_that_never_answers_times_out(hostile):
    delivery = _send(hostile, hostile.url("silent"), timeout_s=0.5)["hostile"]
    assert delivery.status == Status.RETRYING
    assert delivery.last_error.startswith("timeout after 0.5s")


def test_a_connection_closed_mid_body_is_a_failed_attempt(hostile):
    delivery = _send(hostile, hostile.url("close-mid-body"))["hostile"]
    assert (delivery.status, delivery.last_status_code) == (Status.RETRYING, None)
    assert "IncompleteRead" in delivery.last_error


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(hostile, code):
    delivery = _send(hostile, hostile.url("redirect", code=code))["hostile"]
    assert (delivery.status, delivery.last_status_code) == (Status.REJECTED, code)
    assert len(hostile.seen("ok")) == 1  # the healthy target's request, nothing more


@pytest.mark.parametrize(("code", "status"), [
    (199, Status.REJECTED), (299, Status.DELIVERED), (399, Status.REJECTED),
    (499, Status.REJECTED), (600, Status.RETRYING), (999, Status.RETRYING),
])
def test_odd_statuses_are_classified(hostile, code, status):
    delivery = _send(hostile, hostile.url("status", code=code))["hostile"]
    assert (delivery.status, delivery.last_status_code) == (status, code)


@pytest.mark.parametrize("line", ["HTTP/1.1 2000 Big", "HTTP/1.1 20 Small", "ICY 200 OK",
                                  "HTTP/1.1 200 \x00\x01 nul", "HTTP/1.1 abc"])
def test_a_malformed_status_line_is_a_failed_attempt_with_a_storable_error(hostile, line):
    delivery = _send(hostile, hostile.url("status", line=line))["hostile"]
    assert delivery.status in (Status.RETRYING, Status.DELIVERED)
    assert "\x00" not in delivery.last_error


@pytest.mark.parametrize("data", ["hello\r\n\r\n", "\x00" * 64, ""])
def test_a_reply_that_is_not_http_is_a_failed_attempt(hostile, data):
    delivery = _send(hostile, hostile.url("raw", data=data))["hostile"]
    assert (delivery.status, delivery.last_status_code) == (Status.RETRYING, None)
    assert "\x00" not in delivery.last_error


def test_a_body_nested_too_deep_to_parse_is_still_classified(hostile):
    url = hostile.url("status", code=200, nest=3000)
    delivery = _send(hostile, url)["hostile"]
    assert delivery.status == Status.DELIVERED


def test_a_body_with_nul_and_invalid_utf8_is_recorded_readably(hostile):
    url = hostile.url("status", code=500, body="bad \x00 \xff\xfe")
    delivery = _send(hostile, url)["hostile"]
    assert delivery.status == Status.RETRYING
    assert "\x00" not in _attempt(delivery).response_excerpt


def test_hundreds_of_headers_are_a_failed_attempt(hostile):
    url = hostile.url("headers", code=200, many=150)
    delivery = _send(hostile, url)["hostile"]
    assert delivery.status == Status.RETRYING
    assert "headers" in delivery.last_error


def test_every_hostile_target_in_one_batch_is_recorded_with_the_healthy_one(hostile):
    urls = {
        "a": hostile.url("headers", code=503, h=["Retry-After:²"]),
        "b": hostile.url("status", line="HTTP/1.1 200 \x00"),
        "c": hostile.url("status", code=200, nest=3000),
        "d": hostile.url("huge", bytes=20 * MiB),
        "e": hostile.url("silent"),
    }
    for name, url in urls.items():
        TargetFactory(name=name, url=url, timeout_s=0.5, retry_schedule="60")
    TargetFactory(name="healthy", url=hostile.url("ok"))
    milestone_emit(event=MilestoneEventFactory())
    done = {d.target: d for d in deliveries_run(transport=KeepAliveTransport())}
    assert done["healthy"].status == Status.DELIVERED
    assert all(d.attempts == 1 for d in done.values())
    assert all(d.lease_owner == "" for d in Delivery.objects.all())
    assert done["a"].next_attempt_at - done["a"].last_attempt_at > timedelta(seconds=40)
