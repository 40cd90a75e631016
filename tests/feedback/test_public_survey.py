"""The customer's survey page: /s/<token>/. No login; GET only shows the form; POST
answers once; wrong, expired and used links get a friendly page and store nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from feedback.models import SurveyAnswer, SurveyTemplate, SurveyTemplateText
from feedback.services import survey_template_default
from tests.conftest import Cast, client_for
from tests.feedback.helpers import NOW, customer_of, send_survey, won_deal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_rate_limit() -> None:
    cache.clear()


@pytest.fixture
def at_now() -> Any:
    with time_machine.travel(NOW + dt.timedelta(hours=1), tick=False) as traveller:
        yield traveller


def url(token: str) -> str:
    return reverse("feedback:survey", args=[token])


def text(response: Any) -> str:
    return response.content.decode()


def kind(response: Any) -> str | None:
    """Which friendly message the page shows (None: the form)."""
    marker = 'data-kind="'
    body = text(response)
    return body.split(marker, 1)[1].split('"', 1)[0] if marker in body else None


VALID = {"csat": "4", "nps": "9", "free_text": "Quick delivery.", "may_contact": "yes"}


def test_opening_the_link_shows_the_form_and_answers_nothing(cast: Cast, at_now: Any) -> None:
    _invitation, token = send_survey(cast.rep)
    for _ in range(3):  # a mail server's link scanner, then the customer, then a reload
        response = Client().get(url(token))
        assert response.status_code == 200
        assert kind(response) is None
        assert "How satisfied are you with our service?" in text(response)
        # The scales: 1 to 5 and 0 to 10, each score a button to tap.
        for name, scores in (("csat", range(1, 6)), ("nps", range(0, 11))):
            for score in scores:
                assert f'name="{name}" id="{name}-{score}" value="{score}"' in text(response)
        assert f'value="{0}"' not in text(response).split('name="nps"')[0]
    assert not SurveyAnswer.objects.exists()


def test_a_head_request_answers_nothing_either(cast: Cast, at_now: Any) -> None:
    _invitation, token = send_survey(cast.rep)
    assert Client().head(url(token)).status_code == 200
    assert not SurveyAnswer.objects.exists()


def test_submitting_stores_the_answer_linked_to_customer_deal_rep_and_team(
    cast: Cast, at_now: Any
) -> None:
    deal = won_deal(cast.rep)
    invitation, token = send_survey(cast.rep, deal=deal)
    response = Client().post(url(token), VALID)
    assert response.status_code == 303
    assert response["Location"] == url(token)
    answer = SurveyAnswer.objects.get()
    assert (answer.csat, answer.nps, answer.free_text, answer.may_contact) == (
        4,
        9,
        "Quick delivery.",
        True,
    )
    assert (answer.customer, answer.deal, answer.rep, answer.team) == (
        deal.customer,
        deal,
        cast.rep,
        cast.team,
    )
    invitation.refresh_from_db()
    assert invitation.answered_at is not None
    # Following the redirect: a thank-you page.
    thanks = Client().get(url(token))
    assert thanks.status_code == 200 and kind(thanks) == "answered"


def test_a_second_submit_shows_a_friendly_page_and_stores_nothing(cast: Cast, at_now: Any) -> None:
    _invitation, token = send_survey(cast.rep)
    client = Client()
    client.post(url(token), VALID)
    second = client.post(url(token), {**VALID, "csat": "1", "nps": "0"})
    assert second.status_code == 409
    assert kind(second) == "answered"
    assert "Thank you" in text(second)
    answer = SurveyAnswer.objects.get()
    assert (answer.csat, answer.nps) == (4, 9)


def test_an_expired_link_shows_a_friendly_page_and_stores_nothing(cast: Cast) -> None:
    _invitation, token = send_survey(cast.rep)
    with time_machine.travel(NOW + dt.timedelta(days=30, seconds=1), tick=False):
        for response in (Client().get(url(token)), Client().post(url(token), VALID)):
            assert response.status_code == 410
            assert kind(response) == "expired"
            assert "closed" in text(response)
    assert not SurveyAnswer.objects.exists()


def test_the_link_still_works_just_before_it_expires(cast: Cast) -> None:
    _invitation, token = send_survey(cast.rep)
    with time_machine.travel(NOW + dt.timedelta(days=30, seconds=-1), tick=False):
        assert Client().post(url(token), VALID).status_code == 303
    assert SurveyAnswer.objects.count() == 1


@override_settings(SURVEY_LINK_VALID_DAYS=5)
def test_the_validity_is_a_setting(cast: Cast) -> None:
    _invitation, token = send_survey(cast.rep)
    with time_machine.travel(NOW + dt.timedelta(days=5, seconds=1), tick=False):
        assert Client().get(url(token)).status_code == 410


@pytest.mark.parametrize(
    "token",
    [
        "x" * 43,  # the right shape, unknown
        "short",
        "a" * 300,
        "%27%20OR%201=1--",
    ],
)
def test_a_wrong_token_shows_a_friendly_page_and_stores_nothing(
    cast: Cast, at_now: Any, token: str
) -> None:
    send_survey(cast.rep)
    for response in (
        Client().get(f"/s/{token}/"),
        Client().post(f"/s/{token}/", VALID),
    ):
        assert response.status_code == 404
        assert kind(response) == "invalid"
        assert "This link does not work" in text(response)
    assert not SurveyAnswer.objects.exists()


def test_a_token_differing_in_one_character_does_not_open_the_survey(
    cast: Cast, at_now: Any
) -> None:
    _invitation, token = send_survey(cast.rep)
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert Client().post(url(other), VALID).status_code == 404
    assert not SurveyAnswer.objects.exists()


@pytest.mark.parametrize(
    "data, field",
    [
        ({"nps": "9"}, "csat"),
        ({"csat": "4"}, "nps"),
        ({"csat": "6", "nps": "9"}, "csat"),
        ({"csat": "4", "nps": "11"}, "nps"),
        ({"csat": "4", "nps": "-1"}, "nps"),
        ({"csat": "four", "nps": "9"}, "csat"),
    ],
)
def test_a_bad_answer_gets_a_clear_message_and_saves_nothing(
    cast: Cast, at_now: Any, data: dict[str, str], field: str
) -> None:
    _invitation, token = send_survey(cast.rep)
    response = Client().post(url(token), data)
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert 'role="alert"' in text(response)
    # What the customer had chosen stays chosen.
    if data.get("nps") == "9":
        assert 'id="nps-9" value="9" autocomplete="off" checked' in text(response)
    assert not SurveyAnswer.objects.exists()
    # The link still works afterwards.
    assert Client().post(url(token), VALID).status_code == 303


def test_the_post_needs_no_csrf_cookie_the_token_authorises_it(cast: Cast, at_now: Any) -> None:
    """csrf_exempt on purpose (see the view): a customer's browser posting without any
    cookie — in-app mail browsers often keep none — is accepted."""
    _invitation, token = send_survey(cast.rep)
    client = Client(enforce_csrf_checks=True)
    page = client.get(url(token))
    assert not page.cookies  # no CSRF, session or language cookie is set
    assert "csrfmiddlewaretoken" not in text(page)
    assert client.post(url(token), VALID).status_code == 303
    assert SurveyAnswer.objects.count() == 1


def test_the_page_needs_no_login_and_sets_private_headers(cast: Cast, at_now: Any) -> None:
    _invitation, token = send_survey(cast.rep)
    response = Client().get(url(token))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]
    assert 'name="viewport"' in text(response)  # phone-sized screens


def test_the_page_shows_nothing_about_other_customers(cast: Cast, at_now: Any) -> None:
    mine = customer_of(cast.rep, name="Visible Customer AB")
    other = customer_of(cast.rep, name="Secret Other Customer AB", email="secret@other.example")
    _, other_token = send_survey(cast.rep, customer=other)
    Client().post(url(other_token), {**VALID, "free_text": "Private remark about prices"})
    _invitation, token = send_survey(cast.rep, customer=mine)
    body = text(Client().get(url(token)))
    for secret in ("Secret Other Customer", "secret@other.example", "Private remark"):
        assert secret not in body
    # Not even this customer's own data beyond the questions: no name, no email.
    assert mine.email not in body


@pytest.mark.parametrize(
    "language, question",
    [
        ("sv", "Hur nöjd är du med vår service?"),
        ("pt-br", "Qual é o seu nível de satisfação com o nosso atendimento?"),
        ("it", "Quanto è soddisfatto del nostro servizio?"),
        ("ru", "Насколько вы довольны нашим обслуживанием?"),
        ("en", "How satisfied are you with our service?"),
    ],
)
def test_the_customer_sees_the_survey_in_their_language(
    cast: Cast, at_now: Any, language: str, question: str
) -> None:
    _invitation, token = send_survey(cast.rep, customer=customer_of(cast.rep, language=language))
    # Whatever the browser asks for, the survey speaks the customer's language.
    response = Client().get(url(token), HTTP_ACCEPT_LANGUAGE="it")
    assert question in text(response)
    assert f'lang="{language}"' in text(response)


def test_a_text_missing_in_the_customers_language_falls_back_to_english(
    cast: Cast, at_now: Any
) -> None:
    template = survey_template_default()
    SurveyTemplateText.objects.filter(template=template, language="sv").update(
        nps_question="", contact_question=""
    )
    SurveyTemplateText.objects.filter(template=template, language="it").delete()
    _, sv_token = send_survey(cast.rep, customer=customer_of(cast.rep, language="sv"))
    _, it_token = send_survey(cast.rep, customer=customer_of(cast.rep, language="it"))
    sv_page = text(Client().get(url(sv_token)))
    assert "Hur nöjd är du med vår service?" in sv_page  # Swedish where there is Swedish
    assert "How likely are you to recommend us" in sv_page  # English where there is none
    it_page = text(Client().get(url(it_token)))
    assert "How satisfied are you with our service?" in it_page


def test_questions_the_template_does_not_ask_are_not_shown_or_stored(
    cast: Cast, at_now: Any
) -> None:
    SurveyTemplate.objects.filter(pk=survey_template_default().pk).update(
        ask_free_text=False, ask_contact=False
    )
    _invitation, token = send_survey(cast.rep)
    page = text(Client().get(url(token)))
    assert 'name="free_text"' not in page and 'name="may_contact"' not in page
    Client().post(url(token), VALID)
    answer = SurveyAnswer.objects.get()
    assert answer.free_text == "" and answer.may_contact is None


def test_opening_the_survey_takes_one_query(cast: Cast, at_now: Any) -> None:
    """Expected queries: the link joined with its invitation, template and rep; the
    template's texts are read once per process and template version (2 the first time)."""
    _invitation, token = send_survey(cast.rep)
    client = Client()
    with CaptureQueriesContext(connection) as first:
        assert client.get(url(token)).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url(token)).status_code == 200
    assert len(first) <= 2
    assert len(queries) == 1, [query["sql"] for query in queries]


def test_a_template_edited_in_the_admin_shows_its_new_texts(cast: Cast, at_now: Any) -> None:
    _invitation, token = send_survey(cast.rep)
    assert "How satisfied are you" in text(Client().get(url(token)))
    admin = client_for(cast.admin)
    template = survey_template_default()
    change = reverse("admin:feedback_surveytemplate_change", args=[template.pk])
    form = admin.get(change).context["adminform"].form
    data = {
        "name": template.name,
        "is_default": "on",
        "ask_free_text": "on",
        "ask_contact": "on",
        "texts-TOTAL_FORMS": str(template.texts.count()),
        "texts-INITIAL_FORMS": str(template.texts.count()),
        "texts-MIN_NUM_FORMS": "1",
        "texts-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(template.texts.order_by("pk")):
        prefix = f"texts-{index}-"
        data.update(
            {
                prefix + "id": str(row.pk),
                prefix + "template": str(template.pk),
                prefix + "language": row.language,
                prefix + "intro": row.intro,
                prefix + "csat_question": "How happy are you with us?"
                if row.language == "en"
                else row.csat_question,
                prefix + "nps_question": row.nps_question,
                prefix + "free_text_question": row.free_text_question,
                prefix + "contact_question": row.contact_question,
            }
        )
    assert form is not None
    at_now.shift(dt.timedelta(seconds=1))
    response = admin.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert "How happy are you with us?" in text(Client().get(url(token)))


def test_the_admin_requires_the_english_texts(cast: Cast) -> None:
    template = survey_template_default()
    change = reverse("admin:feedback_surveytemplate_change", args=[template.pk])
    data = {
        "name": template.name,
        "texts-TOTAL_FORMS": "1",
        "texts-INITIAL_FORMS": "0",
        "texts-MIN_NUM_FORMS": "1",
        "texts-MAX_NUM_FORMS": "1000",
        "texts-0-language": "sv",
        "texts-0-csat_question": "Nöjd?",
        "texts-0-nps_question": "Rekommendera?",
    }
    new = reverse("admin:feedback_surveytemplate_add")
    response = client_for(cast.admin).post(new, data)
    assert response.status_code == 200
    assert "Add the English texts" in text(response)
    assert change


def test_a_wrong_token_takes_at_most_one_query(cast: Cast, at_now: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        Client().get(url("y" * 43))
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        Client().get("/s/not-a-token/")
    assert len(queries) == 0


@override_settings(SURVEY_RATE_LIMIT=(5, 60))
def test_the_page_is_rate_limited_per_ip(cast: Cast, at_now: Any) -> None:
    _invitation, token = send_survey(cast.rep)
    responses = [Client(REMOTE_ADDR="203.0.113.7").get(url(token)) for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert kind(responses[-1]) == "rate_limited"
    # Guessing tokens counts too, and stores nothing.
    assert Client(REMOTE_ADDR="203.0.113.7").post(url(token), VALID).status_code == 429
    assert not SurveyAnswer.objects.exists()
    # Another address is not affected; the next window starts afresh.
    assert Client(REMOTE_ADDR="198.51.100.1").get(url(token)).status_code == 200
    at_now.shift(dt.timedelta(seconds=61))
    assert Client(REMOTE_ADDR="203.0.113.7").get(url(token)).status_code == 200


def test_the_page_still_works_when_the_cache_is_down(
    cast: Cast, at_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _invitation, token = send_survey(cast.rep)

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "add", down)
    assert Client().get(url(token)).status_code == 200


def test_other_methods_are_refused(cast: Cast, at_now: Any) -> None:
    _invitation, token = send_survey(cast.rep)
    assert Client().put(url(token), VALID).status_code == 405
    assert not SurveyAnswer.objects.exists()
