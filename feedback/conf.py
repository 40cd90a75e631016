"""The feedback app's settings, with their defaults, read when used.

Each value can be set in ``salesperf/settings.py`` under the name given; reading
at call time (not import time) lets tests use ``override_settings``.
"""

from __future__ import annotations

from datetime import date, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

from django.conf import settings

# Words that make a free-text answer "a concern" (opens a follow-up case), per
# language, matched case-insensitively at the beginning of a word (a stem:
# "disappoint" finds "disappointed"); a word written "=late" must match whole.
# It errs on the side of opening a case ("no problem" counts): a person reads
# every case, a missed complaint costs more. Overridable with
# SURVEY_CONCERN_WORDS = {"en": [...], ...}.
DEFAULT_CONCERN_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "problem",
        "complain",
        "disappoint",
        "unhappy",
        "dissatisf",
        "broken",
        "defect",
        "faulty",
        "=late",
        "delay",
        "refund",
        "cancel",
        "wrong",
        "=bad",
        "badly",
        "poor",
        "terrible",
        "awful",
        "rude",
        "never again",
        "not working",
        "doesn't work",
        "does not work",
    ),
    "pt-br": (
        "problema",
        "reclama",
        "decepcion",
        "insatisf",
        "quebrad",
        "defeito",
        "atras",
        "reembolso",
        "cancel",
        "errad",
        "ruim",
        "péssim",
        "pessim",
        "horrível",
        "não funciona",
    ),
    "sv": (
        "problem",
        "klago",
        "klagom",
        "besvik",
        "missnöj",
        "trasig",
        "defekt",
        "försen",
        "sen leverans",
        "återbetal",
        "avbryt",
        "=fel",
        "felaktig",
        "dålig",
        "usel",
        "fungerar inte",
    ),
    "it": (
        "problem",
        "reclam",
        "lamentel",
        "delus",
        "insoddisf",
        "rott",
        "difett",
        "ritard",
        "rimbors",
        "annull",
        "sbagliat",
        "pessim",
        "scadent",
        "non funziona",
    ),
    "ru": (
        "проблем",
        "жалоб",
        "разочаров",
        "недовол",
        "сломан",
        "брак",
        "дефект",
        "задерж",
        "опоздал",
        "возврат",
        "отмен",
        "ошибк",
        "плох",
        "ужасн",
        "не работает",
    ),
}


def send_delay() -> timedelta:
    """SURVEY_SEND_DELAY: how long after a deal is won its survey is sent (default 1 day)."""
    return getattr(settings, "SURVEY_SEND_DELAY", timedelta(days=1))


def throttle() -> timedelta:
    """SURVEY_THROTTLE_DAYS: no new survey to a customer surveyed this recently (30)."""
    return timedelta(days=getattr(settings, "SURVEY_THROTTLE_DAYS", 30))


def link_validity() -> timedelta:
    """SURVEY_LINK_VALID_DAYS: a survey link works this long after it was first sent (30)."""
    return timedelta(days=getattr(settings, "SURVEY_LINK_VALID_DAYS", 30))


def reminder_after() -> timedelta:
    """SURVEY_REMINDER_AFTER_DAYS: the one reminder goes this long after the invitation (3)."""
    return timedelta(days=getattr(settings, "SURVEY_REMINDER_AFTER_DAYS", 3))


def rate_limit() -> tuple[int, int]:
    """SURVEY_RATE_LIMIT: (requests, seconds) one IP address may make to the public pages."""
    requests, seconds = getattr(settings, "SURVEY_RATE_LIMIT", (60, 60))
    return int(requests), int(seconds)


def claim_timeout() -> timedelta:
    """SURVEY_CLAIM_TIMEOUT: a claimed email not sent after this is given back (10 minutes)."""
    return getattr(settings, "SURVEY_CLAIM_TIMEOUT", timedelta(minutes=10))


def dispatch_batch_size() -> int:
    """SURVEY_DISPATCH_BATCH: emails claimed per transaction by the dispatcher (20)."""
    return int(getattr(settings, "SURVEY_DISPATCH_BATCH", 20))


def dispatch_max_per_run() -> int:
    """SURVEY_DISPATCH_MAX_PER_RUN: emails one dispatcher run sends at most (500)."""
    return int(getattr(settings, "SURVEY_DISPATCH_MAX_PER_RUN", 500))


def max_attempts() -> int:
    """SURVEY_MAX_ATTEMPTS: after this many failed sends an email is given up (8)."""
    return int(getattr(settings, "SURVEY_MAX_ATTEMPTS", 8))


def retry_delay(attempts: int) -> timedelta:
    """Back-off after a failed send: 5 minutes, doubling, at most 6 hours."""
    return min(timedelta(minutes=5) * (2 ** max(0, attempts - 1)), timedelta(hours=6))


def case_deadline_working_days() -> int:
    """CASE_DEADLINE_WORKING_DAYS: a follow-up case is due this many working days later (2)."""
    return int(getattr(settings, "CASE_DEADLINE_WORKING_DAYS", 2))


def holidays() -> frozenset[date]:
    """COMPANY_HOLIDAYS: days (dates or ISO strings) that are not working days."""
    days = getattr(settings, "COMPANY_HOLIDAYS", ())
    return frozenset(day if isinstance(day, date) else date.fromisoformat(day) for day in days)


def concern_words(language: str) -> tuple[str, ...]:
    """The concern words of ``language``, plus the English ones (customers mix languages)."""
    words = getattr(settings, "SURVEY_CONCERN_WORDS", DEFAULT_CONCERN_WORDS)
    return tuple(words.get(language, ())) + tuple(words.get("en", ()))


def company_name() -> str:
    """COMPANY_NAME, else the name in DEFAULT_FROM_EMAIL, else the site's host name."""
    name = getattr(settings, "COMPANY_NAME", "")
    if name:
        return name
    from_name, _address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return from_name or (urlsplit(settings.SITE_URL).hostname or "salesperf")


def from_address() -> str:
    """The address survey emails come from: the company's (DEFAULT_FROM_EMAIL)."""
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL


def message_id_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "salesperf.invalid"
