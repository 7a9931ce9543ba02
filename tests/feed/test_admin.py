"""The dead-letter in the admin: browsable, filterable by reason and date, never editable."""

from __future__ import annotations

import pytest

from feed_app.models import DeadLetter
from tests.factories import EnvelopeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_letters(client, ingest, admin_user):
    ingest.post(b"not json", {"x-openclaw-signature": "s", "x-openclaw-timestamp": "t"})
    ingest.post(b"{}", {})
    client.force_login(admin_user)
    return client


def test_dead_letter_list_filters_by_reason(admin_client_with_letters):
    page = admin_client_with_letters.get(
        "/admin/feed_app/deadletter/?reason_code=invalid_json").content.decode()
    assert "invalid_json" in page
    assert "missing_signature</td>" not in page


def test_dead_letter_list_filters_by_date(admin_client_with_letters):
    day = DeadLetter.objects.first().recorded_at
    url = (f"/admin/feed_app/deadletter/?recorded_at__year={day.year}"
           f"&recorded_at__month={day.month}&recorded_at__day={day.day}")
    assert admin_client_with_letters.get(url).status_code == 200


def test_dead_letter_detail_is_read_only(admin_client_with_letters):
    letter = DeadLetter.objects.first()
    url = f"/admin/feed_app/deadletter/{letter.pk}/change/"
    page = admin_client_with_letters.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    # A POST missing the other fields would not save even on an editable admin: the 403
    # is what proves the admin refuses edits.
    assert admin_client_with_letters.post(url, {"reason": "edited"}).status_code == 403
    letter.refresh_from_db()
    assert letter.reason != "edited"


def test_dead_letter_page_names_field_errors_pretty_prints_and_links_the_delivery(
        ingest, client, admin_user):
    envelope = EnvelopeFactory()
    envelope["event"]["riskStatus"] = "sideways"
    ingest.send(envelope)
    letter = DeadLetter.objects.get(reason_code="invalid_event")
    client.force_login(admin_user)
    page = client.get(f"/admin/feed_app/deadletter/{letter.pk}/change/").content.decode()
    errors = page[page.index('<ul class="cb-field-errors">'):]
    assert "riskStatus</code>: " in errors[:errors.index("</ul>")]
    assert '\n  &quot;idempotencyKey&quot;' in page  # indented, not one long line
    key = envelope["idempotencyKey"]
    assert f"/admin/orchestrator_app/delivery/?idempotency_key={key}" in page
