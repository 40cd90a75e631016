"""Two submits of the same survey at the same moment, on two real database
connections (two threads, committed transactions): exactly one answer is stored."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import Client

from feedback import services
from feedback.models import FollowUpCase, SurveyAnswer
from tests.conftest import Cast
from tests.feedback.helpers import NOW, send_survey

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(work: Callable[[int], Any], count: int = 2) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at the same instant; each thread
    has its own database connection (Django's connections are per thread)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work(index)
        except Exception as error:  # returned to the test, which asserts on it
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_concurrent_submits_store_exactly_one_answer(cast: Cast) -> None:
    _invitation, token = send_survey(cast.rep)

    def submit(index: int) -> Any:
        # Different answers, so a second stored answer could not hide behind the first.
        return services.survey_answer(token=token, csat=1 + index, nps=index, now=NOW)

    with time_machine.travel(NOW, tick=False):
        results = run_together(submit)
    stored = [r for r in results if isinstance(r, SurveyAnswer)]
    refused = [r for r in results if isinstance(r, services.SurveyUnavailable)]
    assert len(stored) == 1 and len(refused) == 1, results
    assert refused[0].reason == "answered"
    assert SurveyAnswer.objects.count() == 1
    # Both answers would open a case; only the stored one did.
    assert FollowUpCase.objects.count() == 1


def test_two_concurrent_posts_to_the_page_store_one_answer(cast: Cast) -> None:
    cache.clear()
    _invitation, token = send_survey(cast.rep)

    def post(index: int) -> int:
        response = Client().post(f"/s/{token}/", {"csat": str(2 + index), "nps": "9"})
        return response.status_code

    with time_machine.travel(NOW, tick=False):
        statuses = run_together(post, count=4)
    assert sorted(statuses) == [303, 409, 409, 409], statuses
    assert SurveyAnswer.objects.count() == 1


def test_the_database_refuses_a_second_answer_even_without_the_lock(cast: Cast) -> None:
    """The UNIQUE(invitation) backstop: a second row for one invitation cannot exist."""
    from django.db import IntegrityError

    invitation, token = send_survey(cast.rep)
    first = services.survey_answer(token=token, csat=5, nps=10, now=NOW)
    with pytest.raises(IntegrityError):
        SurveyAnswer.objects.create(
            invitation=invitation,
            customer=first.customer,
            rep=first.rep,
            csat=1,
            nps=0,
            language="en",
        )
