"""Web-to-lead: the public endpoint for website forms and chat widgets (leads/api.py),
its keys, and their admin (leads/api_admin.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from django.contrib import admin
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path, reverse
from django.utils import timezone

from accounts.models import Role
from leads import api, urls_api
from leads.api import web_lead_key_check, web_lead_key_create, web_lead_key_issue
from leads.api_admin import WebLeadKeyAdmin
from leads.models import (
    Lead,
    LeadEventKind,
    LeadSource,
    RoutingRule,
    RoutingStrategy,
    Stage,
    WebLeadKey,
)
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, TerritoryFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/web-leads/"
KEY_FORMAT = re.compile(r"spk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")

# This module is also the URLconf of the admin tests: the key admin on a site of its own
# (leads/admin.py registers it on the real one).
test_site = admin.AdminSite(name="admin")
test_site.register(WebLeadKey, WebLeadKeyAdmin)
urlpatterns = [path("admin/", test_site.urls), path("", include((urls_api.urlpatterns, "leads")))]


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    # Rate-limit counters and resubmission marks live in the (real, test-prefixed) cache.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def web_key(db: None) -> tuple[WebLeadKey, str]:
    return web_lead_key_create(name="Website contact form", source=LeadSource.INBOUND_CONTENT)


def post(
    raw_key: str | None,
    data: Any,
    *,
    header: str = "bearer",
    client: Client | None = None,
    **extra: Any,
) -> Any:
    """POST ``data`` as JSON with the key in the Authorization (or X-Api-Key) header."""
    # CSRF checks on, as for a real browser: the key, not a token, lets the POST in.
    client = client or Client(enforce_csrf_checks=True)
    if raw_key is not None:
        if header == "bearer":
            extra["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
        else:
            extra["HTTP_X_API_KEY"] = raw_key
    return client.post(URL, json.dumps(data), content_type="application/json", **extra)


FULL = {
    "name": "Anna Svensson",
    "company": "Svensson Bygg AB",
    "email": "Anna@Svensson.example",
    "phone": "+46 70 123 45 67",
    "message": "We need 40 units before the summer.",
}


# --- Keys --------------------------------------------------------------------------


def test_a_key_is_shown_once_and_only_its_hash_is_stored(web_key: tuple[WebLeadKey, str]) -> None:
    key, raw = web_key
    assert KEY_FORMAT.fullmatch(raw)
    assert raw.startswith(f"spk_{key.prefix}_")
    stored = WebLeadKey.objects.values().get(pk=key.pk)
    assert stored["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.split("_", 2)[2] not in json.dumps(stored, default=str)
    assert web_lead_key_check(raw) == key


def test_key_check_refuses_wrong_unknown_malformed_and_inactive(
    web_key: tuple[WebLeadKey, str],
) -> None:
    key, raw = web_key
    wrong_secret = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    unknown_prefix = raw.replace(key.prefix, "0" * 8 if key.prefix != "0" * 8 else "1" * 8)
    for bad in (wrong_secret, unknown_prefix, "", "spk_", raw + "x" * 200, "Bearer " + raw):
        assert web_lead_key_check(bad) is None, bad
    WebLeadKey.objects.filter(pk=key.pk).update(is_active=False)
    assert web_lead_key_check(raw) is None


def test_a_new_secret_replaces_the_old_one(web_key: tuple[WebLeadKey, str]) -> None:
    key, old = web_key
    new = web_lead_key_issue(key=key)
    assert new != old
    assert web_lead_key_check(old) is None
    assert web_lead_key_check(new) == key
    assert WebLeadKey.objects.count() == 1


def test_a_key_needs_a_name_and_a_known_source(db: None) -> None:
    with pytest.raises(ValidationError) as blank:
        web_lead_key_create(name="  ", source=LeadSource.LIVE_CHAT)
    assert "name" in blank.value.message_dict
    with pytest.raises(ValidationError) as source:
        web_lead_key_create(name="Chat", source="carrier_pigeon")
    assert "source" in source.value.message_dict
    assert not WebLeadKey.objects.exists()


# --- Creating leads ----------------------------------------------------------------


def test_json_post_creates_a_scored_suspect_lead_from_the_keys_source(
    web_key: tuple[WebLeadKey, str],
) -> None:
    key, raw = web_key
    line = ProductLineFactory(name="Heat pumps")
    territory = TerritoryFactory(name="Stockholm", code="sthlm")
    timeframe = timezone.localdate() + dt.timedelta(days=20)

    response = post(
        raw,
        {
            **FULL,
            "product_line": "heat PUMPS",
            "territory": "STHLM",
            "timeframe": timeframe.isoformat(),
        },
    )

    assert response.status_code == 201
    lead = Lead.objects.get()
    assert response.json() == {"id": lead.pk, "status": "received"}
    assert lead.stage == Stage.SUSPECT
    assert lead.source == LeadSource.INBOUND_CONTENT
    assert lead.created_by is None
    assert (lead.contact_name, lead.company_name) == ("Anna Svensson", "Svensson Bygg AB")
    assert lead.email == "anna@svensson.example"
    assert lead.phone_normalised == "46701234567"
    assert list(lead.product_lines.all()) == [line]
    assert lead.territory == territory
    assert lead.timeframe == timeframe
    assert lead.score > 0
    assert lead.score_breakdown
    assert sum(item["points"] for item in lead.score_breakdown) == lead.score
    created = lead.events.get(kind=LeadEventKind.CREATED)
    assert created.comment == FULL["message"]
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_form_encoded_post_creates_the_lead(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    response = Client(enforce_csrf_checks=True).post(
        URL,
        urlencode(FULL),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_API_KEY=raw,
    )
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert response.json() == {"id": lead.pk, "status": "received"}
    assert lead.contact_name == "Anna Svensson"
    assert lead.events.get(kind=LeadEventKind.CREATED).comment == FULL["message"]


def test_multipart_post_creates_the_lead(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    # The test client's default: multipart/form-data, as a form with enctype set sends.
    response = Client(enforce_csrf_checks=True).post(
        URL, {"email": "multi@part.example"}, HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 201
    assert Lead.objects.get().email == "multi@part.example"


def test_a_phone_alone_is_enough_and_numbers_in_json_are_read_as_text(
    web_key: tuple[WebLeadKey, str],
) -> None:
    _key, raw = web_key
    response = post(raw, {"phone": 46701234567, "name": None})
    assert response.status_code == 201
    assert Lead.objects.get().phone == "46701234567"


def test_a_lead_matching_a_routing_rule_goes_to_a_rep_who_is_emailed(
    cast: Cast,
    web_key: tuple[WebLeadKey, str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    _key, raw = web_key
    RoutingRule.objects.create(
        name="Website leads",
        source=LeadSource.INBOUND_CONTENT,
        team=cast.team,
        strategy=RoutingStrategy.ROUND_ROBIN,
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post(raw, FULL)

    assert response.status_code == 201
    lead = Lead.objects.get()
    assert lead.owner == cast.rep  # round robin starts with the team's first rep
    assert lead.team == cast.team
    assert "Website leads" in lead.assigned_by_rule
    assert [message.to for message in mail.outbox] == [[cast.rep.email]]
    # The caller learns nothing of who got it or how it scored.
    assert response.json() == {"id": lead.pk, "status": "received"}
    body = response.content.decode()
    for secret in (cast.rep.email, cast.rep.display_name, cast.team.name, "score"):
        assert secret not in body


def test_a_lead_no_rule_matches_stays_unassigned_with_its_message(
    cast: Cast, web_key: tuple[WebLeadKey, str]
) -> None:
    _key, raw = web_key
    RoutingRule.objects.create(name="Chat only", source=LeadSource.LIVE_CHAT, team=cast.team)
    response = post(raw, FULL)
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert lead.owner is None
    assert lead.events.get(kind=LeadEventKind.CREATED).comment == FULL["message"]


# --- Resubmissions ----------------------------------------------------------------


def test_a_double_submit_gives_the_same_answer_and_one_lead(
    web_key: tuple[WebLeadKey, str],
) -> None:
    _key, raw = web_key
    first = post(raw, FULL)
    second = post(raw, {**FULL, "email": FULL["email"].upper(), "message": "Again"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Lead.objects.count() == 1
    assert Lead.objects.get().events.get(kind=LeadEventKind.CREATED).comment == FULL["message"]


@pytest.mark.django_db(transaction=True)
def test_a_double_click_racing_itself_makes_one_lead() -> None:
    """Two requests at the same moment: the second waits for the first and answers alike."""
    _key, raw = web_lead_key_create(name="Website", source=LeadSource.INBOUND_CONTENT)
    start = threading.Barrier(2)
    answers: list[Any] = []

    def submit() -> None:
        try:
            start.wait(timeout=10)
            answers.append(post(raw, FULL))
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [answer.status_code for answer in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert Lead.objects.count() == 1


def test_the_same_phone_without_email_is_a_resubmission(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    first = post(raw, {"phone": "070-123 45 67"})
    second = post(raw, {"phone": "070 1234567"})
    assert first.json() == second.json()
    assert Lead.objects.count() == 1


def test_the_same_email_is_a_new_lead_on_another_key_or_after_the_window(
    web_key: tuple[WebLeadKey, str],
) -> None:
    _key, raw = web_key
    _chat, chat_raw = web_lead_key_create(name="Chat", source=LeadSource.LIVE_CHAT)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        first = post(raw, FULL)
        other_key = post(chat_raw, FULL)
    with time_machine.travel(start + dt.timedelta(seconds=api.DUPLICATE_WINDOW + 1), tick=False):
        later = post(raw, FULL)
    ids = {first.json()["id"], other_key.json()["id"], later.json()["id"]}
    assert len(ids) == 3
    assert Lead.objects.get(pk=other_key.json()["id"]).source == LeadSource.LIVE_CHAT


def test_a_resubmission_of_a_deleted_lead_creates_it_again(
    web_key: tuple[WebLeadKey, str],
) -> None:
    _key, raw = web_key
    first = post(raw, FULL)
    Lead.objects.all().delete()
    second = post(raw, FULL)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert Lead.objects.count() == 1


# --- Authentication ----------------------------------------------------------------


def test_both_header_styles_are_accepted(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    assert post(raw, {"email": "a@example.org"}, header="bearer").status_code == 201
    assert post(raw, {"email": "b@example.org"}, header="x-api-key").status_code == 201
    lower = Client(enforce_csrf_checks=True).post(
        URL,
        json.dumps({"email": "c@example.org"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"bearer {raw}",
    )
    assert lower.status_code == 201
    assert Lead.objects.count() == 3


@pytest.mark.parametrize("case", ["none", "empty", "malformed", "wrong", "unknown", "inactive"])
def test_a_missing_or_bad_key_is_refused_alike(web_key: tuple[WebLeadKey, str], case: str) -> None:
    key, raw = web_key
    other_prefix = "0" * 8 if key.prefix != "0" * 8 else "1" * 8
    sent = {
        "none": None,
        "empty": "",
        "malformed": "let-me-in",
        "wrong": raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB"),
        "unknown": raw.replace(key.prefix, other_prefix),
        "inactive": raw,
    }[case]
    if case == "inactive":
        WebLeadKey.objects.filter(pk=key.pk).update(is_active=False)

    response = post(sent, FULL)

    assert response.status_code == 401
    # The same answer whatever was wrong: nothing says whether a key exists.
    assert response.json() == {"errors": {"__all__": ["A valid API key is required."]}}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Lead.objects.exists()
    key.refresh_from_db()
    assert key.last_used_at is None


@pytest.mark.parametrize("role", ["owner_rep", "manager", "other_rep", "marketing", "admin"])
def test_a_logged_in_session_is_no_key(cast: Cast, role: str) -> None:
    response = post(None, FULL, client=client_for(cast.roles()[role]))
    assert response.status_code == 401
    assert not Lead.objects.exists()


# --- Bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"phone": "call me maybe"}, "phone", "Enter a phone number"),
        ({"phone": "12 34"}, "phone", "Enter a phone number"),
        ({"name": "N" * 201, "email": "a@b.example"}, "name", "at most 200 characters"),
        ({"company": "C" * 201, "email": "a@b.example"}, "company", "at most 200 characters"),
        ({"message": "m" * 5001, "email": "a@b.example"}, "message", "at most 5000 characters"),
        ({"name": "Nul\x00l", "email": "a@b.example"}, "name", "Null characters"),
        ({"product_line": "Rockets", "email": "a@b.example"}, "product_line", "Rockets is not"),
        ({"product_line": "Old line", "email": "a@b.example"}, "product_line", "is not one of"),
        ({"territory": "Atlantis", "email": "a@b.example"}, "territory", "Atlantis is not"),
        ({"timeframe": "31/12/2030", "email": "a@b.example"}, "timeframe", "YYYY-MM-DD"),
        ({"timeframe": "2020-01-01", "email": "a@b.example"}, "timeframe", "in the past"),
        ({"name": "Anna", "company": "Bygg AB"}, "__all__", "email address or a phone"),
        ({"email": ["a@b.example"]}, "email", "Send this field as text."),
        ({"email": "a@b.example", "name": {"first": "Anna"}}, "name", "Send this field as text."),
        ({"email": True}, "email", "Send this field as text."),
    ],
)
def test_bad_fields_get_a_message_and_save_nothing(
    web_key: tuple[WebLeadKey, str], data: dict[str, Any], field: str, message: str
) -> None:
    _key, raw = web_key
    ProductLineFactory(name="Old line", is_active=False)
    TerritoryFactory(name="Inactive land", code="gone", is_active=False)

    response = post(raw, data)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {field}
    assert any(message in text for text in errors[field]), errors
    assert not Lead.objects.exists()


def test_form_encoded_errors_look_the_same(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    response = Client(enforce_csrf_checks=True).post(
        URL,
        urlencode({"email": "nope", "timeframe": "soon"}),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_API_KEY=raw,
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "email": ["Enter a valid email address."],
            "timeframe": ["Enter the date as YYYY-MM-DD."],
        }
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"email": "a@b.example"', "The body is not valid JSON."),
        (b"\xff\xfe not text", "The body is not valid JSON."),
        (b'["a@b.example"]', "Send one JSON object with the lead's fields."),
        (b'{"email": "a@b.example"}{}', "The body is not valid JSON."),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(
    web_key: tuple[WebLeadKey, str], body: bytes, message: str
) -> None:
    _key, raw = web_key
    response = Client(enforce_csrf_checks=True).post(
        URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 400
    assert response.json() == {"errors": {"__all__": [message]}}
    assert not Lead.objects.exists()


def test_form_data_that_cannot_be_read_is_refused(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    response = Client(enforce_csrf_checks=True).post(
        URL,
        "a=&" * 1001 + "email=a@b.example",  # more fields than Django parses
        content_type="application/x-www-form-urlencoded",
        HTTP_X_API_KEY=raw,
    )
    assert response.status_code == 400
    assert response.json() == {"errors": {"__all__": ["The form data cannot be read."]}}
    assert not Lead.objects.exists()


def test_a_body_over_16_kb_is_refused(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    response = post(raw, {"email": "a@b.example", "message": "x" * (16 * 1024)})
    assert response.status_code == 413
    assert "too large" in response.json()["errors"]["__all__"][0]
    assert not Lead.objects.exists()


@pytest.mark.parametrize(("body", "content_type"), [("email=a@b.example", "text/plain"), ("", "")])
def test_another_content_type_is_refused(
    web_key: tuple[WebLeadKey, str], body: str, content_type: str
) -> None:
    _key, raw = web_key
    response = Client(enforce_csrf_checks=True).post(
        URL, body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["errors"]["__all__"][0]
    assert not Lead.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_refused_in_json(method: str) -> None:
    response = getattr(Client(), method)(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert response.json() == {"errors": {"__all__": ["Send the lead with POST."]}}
    assert response["Access-Control-Allow-Origin"] == "*"


# --- Rate limits ------------------------------------------------------------------


def test_one_ip_is_limited_per_minute_with_retry_after(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    start = dt.datetime(2026, 3, 2, 10, 0, 20, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        # Failed attempts count too: guessing keys is slowed down as well.
        for _ in range(api.IP_RATE_LIMIT):
            assert post("guess", FULL).status_code == 401
        limited = post(raw, FULL)
        elsewhere = post(raw, FULL, REMOTE_ADDR="203.0.113.9")
    assert limited.status_code == 429
    assert limited["Retry-After"] == "40"
    assert limited.json() == {"errors": {"__all__": ["Too many requests: try again in a moment."]}}
    assert limited["Access-Control-Allow-Origin"] == "*"
    assert elsewhere.status_code == 201  # another visitor is not held up
    with time_machine.travel(start + dt.timedelta(seconds=40), tick=False):
        assert post(raw, {"email": "next@minute.example"}).status_code == 201
    assert Lead.objects.count() == 2


def test_one_key_is_limited_per_hour_whatever_the_ip(
    web_key: tuple[WebLeadKey, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _key, raw = web_key
    monkeypatch.setattr(api, "KEY_RATE_LIMIT", 2)
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 15, 0, tzinfo=dt.UTC), tick=False):
        for number in range(2):
            response = post(raw, {"email": f"p{number}@x.example"}, REMOTE_ADDR=f"10.0.0.{number}")
            assert response.status_code == 201
        limited = post(raw, {"email": "p9@x.example"}, REMOTE_ADDR="10.0.0.9")
        _chat, chat_raw = web_lead_key_create(name="Chat", source=LeadSource.LIVE_CHAT)
        other_key = post(chat_raw, {"email": "p9@x.example"}, REMOTE_ADDR="10.0.0.9")
    assert limited.status_code == 429
    assert limited["Retry-After"] == str(45 * 60)
    assert other_key.status_code == 201
    assert Lead.objects.count() == 3


# --- CORS ----------------------------------------------------------------------------


def test_a_preflight_allows_any_origin_without_credentials() -> None:
    response = Client().options(
        URL,
        HTTP_ORIGIN="https://shop.customer.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-api-key"} <= allowed
    assert "Access-Control-Allow-Credentials" not in response
    assert not Lead.objects.exists()


def test_answers_to_a_cross_origin_post_can_be_read(web_key: tuple[WebLeadKey, str]) -> None:
    _key, raw = web_key
    origin = {"HTTP_ORIGIN": "https://shop.customer.example"}
    for response in (post(raw, FULL, **origin), post(raw, {}, **origin), post(None, {}, **origin)):
        assert response["Access-Control-Allow-Origin"] == "*"
        assert "no-store" in response["Cache-Control"]


# --- Queries --------------------------------------------------------------------------


def test_a_post_costs_the_same_queries_whatever_the_data(
    cast: Cast, web_key: tuple[WebLeadKey, str]
) -> None:
    _key, raw = web_key
    line = ProductLineFactory(name="Heat pumps")
    TerritoryFactory(name="Stockholm", code="sthlm")
    RoutingRule.objects.create(name="Web", source=LeadSource.INBOUND_CONTENT, team=cast.team)
    data = {**FULL, "product_line": "Heat pumps", "territory": "sthlm"}

    def count(email: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert post(raw, {**data, "email": email}).status_code == 201
        return len(queries)

    count("warm-up@example.org")  # the round-robin pointer is set from here on
    few = count("one@example.org")
    # More of everything the request touches: rules, reps, their leads, product lines.
    for number in range(3):
        rep = UserFactory(team=cast.team, role=Role.REP)
        RoutingRule.objects.create(
            name=f"Line {number}", product_line=line, team=cast.team, priority=200 + number
        )
        for n in range(2):
            post(raw, {**data, "email": f"{rep.pk}-{n}@example.org"})
    cache.clear()  # the rate-limit counters above are not what is measured
    many = count("two@example.org")
    # Per successful POST, whatever the number of rules, reps, leads and lines (23, plus
    # the SAVEPOINT/RELEASE pairs of the nested atomic blocks):
    #  1 SELECT the key by its prefix           2-3 SELECT the product line, the territory
    #  4 SELECT pg_advisory_xact_lock           lead_create: 5 territory exists (full_clean),
    #  6-7 the lead's two CHECK constraints (full_clean), 8 INSERT lead, 9-10 product lines
    #  (SELECT + INSERT), 11 INSERT "created" event; scoring: 12 SELECT features, 13 SELECT
    #  win model, 14 UPDATE score, 15 INSERT score event; routing: 16 SELECT rules FOR
    #  UPDATE, 17 SELECT reps with loads, 18 UPDATE the round-robin pointer, lead_assign:
    #  19 SELECT lead FOR UPDATE, 20 UPDATE owner, 21 INSERT owner event;
    #  22 UPDATE the "created" event's comment (the message), 23 UPDATE key.last_used_at.
    assert few == many


# --- Admin ----------------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_admin_adds_a_key_and_shows_it_once(cast: Cast) -> None:
    client = client_for(cast.admin)
    assert client.get("/admin/leads/webleadkey/add/").status_code == 200
    response = client.post(
        "/admin/leads/webleadkey/add/",
        {"name": "Shop chat", "source": LeadSource.LIVE_CHAT, "is_active": "on"},
    )
    assert response.status_code == 200
    raw = KEY_FORMAT.search(response.content.decode())
    assert raw is not None
    assert "no-store" in response["Cache-Control"]
    key = WebLeadKey.objects.get()
    assert (key.name, key.source, key.is_active) == ("Shop chat", LeadSource.LIVE_CHAT, True)
    assert web_lead_key_check(raw[0]) == key
    # Not shown again: the change page has the prefix only.
    page = client.get(f"/admin/leads/webleadkey/{key.pk}/change/").content.decode()
    assert key.prefix in page
    assert raw[0] not in page
    assert KEY_FORMAT.search(page) is None


@pytest.mark.urls(__name__)
def test_admin_issues_a_new_secret_and_the_old_one_stops(
    cast: Cast, web_key: tuple[WebLeadKey, str]
) -> None:
    key, old = web_key
    response = client_for(cast.admin).post(
        "/admin/leads/webleadkey/",
        {"action": "issue_new_secret", "_selected_action": [key.pk]},
    )
    assert response.status_code == 200
    new = KEY_FORMAT.search(response.content.decode())
    assert new is not None and new[0] != old
    assert web_lead_key_check(old) is None
    assert web_lead_key_check(new[0]) == key


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("role", ["owner_rep", "manager", "other_rep", "marketing"])
def test_only_admins_reach_the_key_admin(cast: Cast, role: str) -> None:
    response = client_for(cast.roles()[role]).post(
        "/admin/leads/webleadkey/add/", {"name": "Mine", "source": LeadSource.OTHER}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not WebLeadKey.objects.exists()
