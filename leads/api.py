"""Web-to-lead: the public endpoint that website forms and chat widgets post to.

``POST /api/web-leads/`` with a key of one source (``Authorization: Bearer spk_…``
or ``X-Api-Key: spk_…``) and a JSON, form-encoded or multipart body:

    name, company, email, phone      who (an email or a phone is required)
    message                          free text, kept on the lead's "created" event
    product_line                     a product line's name
    territory                        a territory's code or name
    timeframe                        the buying timeframe, YYYY-MM-DD

Answers are JSON and carry nothing the caller did not send:

    201 {"id": <lead id>, "status": "received"}
    400 / 401 / 405 / 413 / 415 / 429 {"errors": {"<field>": ["message", ...]}}
        (errors that belong to no field are under "__all__", as in Django forms)

The key authenticates, never a cookie: the view is CSRF-exempt and answers any
origin (CORS ``*``, no credentials). A wrong, unknown and inactive key get the
same 401. Requests are rate-limited per client IP (before the key is even
looked at, which also slows key guessing) and per key. A double-clicked form
(same email, or phone, for the same key within ``DUPLICATE_WINDOW``) gets the
first lead's answer and creates nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django import forms
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt

from accounts.models import ProductLine, Territory
from leads.models import Lead, LeadSource, WebLeadKey, normalise_phone
from leads.services import lead_create

# Limits. A fixed window per bucket: at most LIMIT requests per PERIOD seconds.
IP_RATE_LIMIT = 30
IP_RATE_PERIOD = 60
KEY_RATE_LIMIT = 600
KEY_RATE_PERIOD = 60 * 60
MAX_BODY_BYTES = 16 * 1024
# Seconds within which the same email (or phone) on the same key is a resubmission.
DUPLICATE_WINDOW = 10 * 60

NON_FIELD = "__all__"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    # A browser script may read Retry-After to wait before trying again.
    "Access-Control-Expose-Headers": "Retry-After",
}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Api-Key",
    "Access-Control-Max-Age": "86400",
}
# Lead fields named differently in the API, for the lead rules' messages.
MODEL_TO_API = {"contact_name": "name", "company_name": "company", "product_lines": "product_line"}
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# --- Keys --------------------------------------------------------------------------

KEY_WORD = "spk"
# spk_<8 hex prefix>_<token_urlsafe(32): 43 characters of A-Z a-z 0-9 _ ->
KEY_PATTERN = re.compile(r"spk_([0-9a-f]{8})_([A-Za-z0-9_-]{32,128})")
KEY_ISSUE_ATTEMPTS = 5


def _key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# Compared against when the prefix is unknown, so that both paths do the same work.
_NO_KEY_HASH = _key_hash(f"{KEY_WORD}_00000000_{'0' * 43}")


@transaction.atomic
def web_lead_key_issue(*, key: WebLeadKey) -> str:
    """Give ``key`` (new or saved) a fresh secret, save it, and return the raw key.

    The raw key exists only in the return value: the database keeps its prefix (to
    find it) and the SHA-256 of the whole key. On a saved key the previous secret
    stops working at once. Each call issues a new secret; nothing else changes.
    """
    key.name = key.name.strip()
    if not key.name:
        raise ValidationError({"name": _("Give the key a name, e.g. the website it is for.")})
    if key.source not in LeadSource.values:
        raise ValidationError({"source": _("Choose a source from the list.")})
    for attempt in range(KEY_ISSUE_ATTEMPTS):
        prefix = secrets.token_hex(4)
        raw = f"{KEY_WORD}_{prefix}_{secrets.token_urlsafe(32)}"
        key.prefix, key.key_hash = prefix, _key_hash(raw)
        try:
            # A savepoint: a prefix already taken (1 in 4 billion) is tried again.
            with transaction.atomic():
                key.save()
        except IntegrityError:
            if attempt == KEY_ISSUE_ATTEMPTS - 1:
                raise
            continue
        return raw
    raise AssertionError("unreachable")  # pragma: no cover


def web_lead_key_create(*, name: str, source: str) -> tuple[WebLeadKey, str]:
    """A new active key for one form or widget, and its raw value, shown only this once."""
    key = WebLeadKey(name=name, source=source)
    raw = web_lead_key_issue(key=key)
    return key, raw


def web_lead_key_check(raw: str) -> WebLeadKey | None:
    """The active key ``raw`` is, or None (malformed, unknown, wrong secret, inactive).

    One query, by the prefix; the hashes are compared in constant time.
    """
    match = KEY_PATTERN.fullmatch(raw.strip())
    if match is None:
        return None
    key = WebLeadKey.objects.filter(prefix=match[1]).first()
    matches = hmac.compare_digest(_key_hash(match[0]), key.key_hash if key else _NO_KEY_HASH)
    if key is None or not matches or not key.is_active:
        return None
    return key


def _raw_key(request: HttpRequest) -> str:
    scheme, _space, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("X-Api-Key", "")


# --- Rate limits -------------------------------------------------------------------


def rate_limit_hit(bucket: str, *, limit: int, period: int, now: datetime) -> int | None:
    """Count one request in ``bucket``'s current window; seconds to wait when over.

    Fixed windows aligned to the clock, so the wait is known without asking Redis
    for a key's time to live. ``add`` + ``incr`` are atomic in Redis: concurrent
    requests each get their own count.
    """
    moment = now.timestamp()
    window = int(moment // period)
    cache_key = f"web-lead:rate:{bucket}:{window}"
    cache.add(cache_key, 0, timeout=period + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: this request starts the count
        cache.set(cache_key, 1, timeout=period + 1)
        count = 1
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * period - moment))


def _client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR, not X-Forwarded-For: like django-axes here (AXES_IPWARE_PROXY_COUNT
    # = 0), no proxy is trusted to tell the client's address.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


# --- Input -------------------------------------------------------------------------

PHONE_CHARACTERS = re.compile(r"[0-9 ()+\-./]*")


class WebLeadForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    company = forms.CharField(max_length=200, required=False)
    email = forms.EmailField(max_length=254, required=False)
    phone = forms.CharField(max_length=40, required=False)
    message = forms.CharField(max_length=5000, required=False)
    product_line = forms.CharField(max_length=100, required=False)
    territory = forms.CharField(max_length=100, required=False)
    timeframe = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": gettext_lazy("Enter the date as YYYY-MM-DD.")},
    )

    def clean_phone(self) -> str:
        phone: str = self.cleaned_data["phone"]
        if phone and (
            not PHONE_CHARACTERS.fullmatch(phone) or not 6 <= len(normalise_phone(phone)) <= 20
        ):
            raise ValidationError(
                _("Enter a phone number: 6 to 20 digits, with spaces, +, -, or parentheses.")
            )
        return phone

    def clean_product_line(self) -> ProductLine | None:
        name: str = self.cleaned_data["product_line"]
        if not name:
            return None
        line = ProductLine.objects.filter(name__iexact=name, is_active=True).first()
        if line is None:
            raise ValidationError(_("%(name)s is not one of our product lines.") % {"name": name})
        return line

    def clean_territory(self) -> Territory | None:
        value: str = self.cleaned_data["territory"]
        if not value:
            return None
        territory = (
            Territory.objects.filter(Q(code__iexact=value) | Q(name__iexact=value))
            .filter(is_active=True)
            .first()
        )
        if territory is None:
            raise ValidationError(_("%(name)s is not one of our territories.") % {"name": value})
        return territory

    def clean_timeframe(self) -> Any:
        timeframe = self.cleaned_data["timeframe"]
        if timeframe is not None and timeframe < timezone.localdate():
            raise ValidationError(_("The buying timeframe cannot be in the past."))
        return timeframe

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        unreachable = not cleaned.get("email") and not cleaned.get("phone")
        # A mistyped email or phone already has its own message.
        if unreachable and not self.has_error("email") and not self.has_error("phone"):
            raise ValidationError(_("Give an email address or a phone number."))
        return cleaned


class BadRequest(Exception):
    """The body cannot be read as fields: answered with ``status`` and ``errors``."""

    def __init__(self, status: int, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.status = status
        self.errors = errors


def _fields_from_json(body: bytes) -> dict[str, str]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, {NON_FIELD: [_("The body is not valid JSON.")]}) from None
    if not isinstance(payload, dict):
        raise BadRequest(400, {NON_FIELD: [_("Send one JSON object with the lead's fields.")]})
    data: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for name in WebLeadForm.base_fields:
        value = payload.get(name)
        if value is None:
            continue
        # bool is an int: true would become the text "True".
        if isinstance(value, bool) or not isinstance(value, str | int):
            errors[name] = [_("Send this field as text.")]
        else:
            data[name] = str(value)
    if errors:
        raise BadRequest(400, errors)
    return data


def _too_large() -> BadRequest:
    message = _("The request is too large (at most %(size)d KB).") % {
        "size": MAX_BODY_BYTES // 1024
    }
    return BadRequest(413, {NON_FIELD: [message]})


def _fields(request: HttpRequest) -> Mapping[str, Any]:
    """The submitted fields, from a JSON or a form body; BadRequest when unreadable.

    The size is judged by Content-Length before anything is read (the server reads
    no more than that), so a large body costs nothing but the refusal.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0  # as Django reads it: nothing
    if length > MAX_BODY_BYTES:
        raise _too_large()
    content_type = request.content_type or ""
    try:
        if content_type in JSON_TYPES:
            body = request.body
            if len(body) > MAX_BODY_BYTES:
                raise _too_large()
            return _fields_from_json(body)
        if content_type in FORM_TYPES:
            return request.POST
    except RequestDataTooBig:
        raise _too_large() from None
    except (SuspiciousOperation, MultiPartParserError, UnreadablePostError):
        # Too many fields, a broken multipart body, a client that went away.
        raise BadRequest(400, {NON_FIELD: [_("The form data cannot be read.")]}) from None
    raise BadRequest(
        415, {NON_FIELD: [_("Send JSON (application/json) or form data (x-www-form-urlencoded).")]}
    )


# --- Receiving a lead --------------------------------------------------------------


def _lock_id(text: str) -> int:
    """A signed 64-bit number for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


@transaction.atomic
def web_lead_receive(
    *, key: WebLeadKey, data: Mapping[str, Any], now: datetime
) -> tuple[int, bool]:
    """Create a suspect lead from a web form (scored, routed); (lead id, created).

    Safe to repeat: the same email (or phone, without an email) on the same key
    within DUPLICATE_WINDOW gives the first lead's id and creates nothing. Concurrent
    resubmissions (a double click) wait on a transaction-level advisory lock for
    that key and person, so the second sees what the first committed.
    """
    identity = (data["email"] or "").lower() or normalise_phone(data["phone"] or "")
    seen_key = f"web-lead:seen:{key.pk}:{hashlib.sha256(identity.encode()).hexdigest()}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(seen_key)])
    # (lead id, when): the window is judged by our clock, the cache's expiry only tidies.
    seen = cache.get(seen_key)
    if seen is not None:
        seen_id, seen_at = seen
        # The id is cached before commit: a rolled-back (or deleted) lead is made anew.
        if now.timestamp() - seen_at < DUPLICATE_WINDOW and (
            Lead.objects.filter(pk=seen_id).exists()
        ):
            WebLeadKey.objects.filter(pk=key.pk).update(last_used_at=now)
            return int(seen_id), False

    product_line = data.get("product_line")
    lead = lead_create(
        actor=None,
        source=key.source,
        contact_name=data["name"] or "",
        company_name=data["company"] or "",
        email=data["email"] or "",
        phone=data["phone"] or "",
        product_lines=[product_line] if product_line else (),
        territory=data.get("territory"),
        timeframe=data.get("timeframe"),
        route=True,
        # The prospect's words belong with the lead from its first moment, owner or not.
        comment=data["message"] or "",
        now=now,
    )
    cache.set(seen_key, (lead.pk, now.timestamp()), timeout=DUPLICATE_WINDOW)
    WebLeadKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return lead.pk, True


# --- The view ----------------------------------------------------------------------


def _json(data: dict[str, Any], *, status: int) -> JsonResponse:
    response = JsonResponse(data, status=status)
    for header, value in CORS_HEADERS.items():
        response[header] = value
    add_never_cache_headers(response)
    return response


def _errors(status: int, errors: Mapping[str, list[Any]]) -> JsonResponse:
    return _json(
        {"errors": {field: [str(m) for m in messages] for field, messages in errors.items()}},
        status=status,
    )


def _too_many(retry_after: int) -> JsonResponse:
    response = _errors(429, {NON_FIELD: [_("Too many requests: try again in a moment.")]})
    response["Retry-After"] = str(retry_after)
    return response


@csrf_exempt
def web_lead_create(request: HttpRequest) -> HttpResponse:
    """Receive one lead from a website form or chat widget (see the module docstring)."""
    if request.method == "OPTIONS":
        preflight = HttpResponse(status=204)
        for header, value in {**CORS_HEADERS, **PREFLIGHT_HEADERS}.items():
            preflight[header] = value
        return preflight
    if request.method != "POST":
        response = _errors(405, {NON_FIELD: [_("Send the lead with POST.")]})
        response["Allow"] = "POST, OPTIONS"
        return response

    now = timezone.now()
    wait = rate_limit_hit(
        f"ip:{_client_ip(request)}", limit=IP_RATE_LIMIT, period=IP_RATE_PERIOD, now=now
    )
    if wait:
        return _too_many(wait)
    key = web_lead_key_check(_raw_key(request))
    if key is None:
        response = _errors(401, {NON_FIELD: [_("A valid API key is required.")]})
        response["WWW-Authenticate"] = 'Bearer realm="web-leads"'
        return response
    wait = rate_limit_hit(f"key:{key.pk}", limit=KEY_RATE_LIMIT, period=KEY_RATE_PERIOD, now=now)
    if wait:
        return _too_many(wait)

    try:
        fields = _fields(request)
    except BadRequest as error:
        return _errors(error.status, error.errors)
    form = WebLeadForm(fields)
    if not form.is_valid():
        return _errors(400, form.errors)
    try:
        lead_id, _created = web_lead_receive(key=key, data=form.cleaned_data, now=now)
    except ValidationError as error:
        # The form checks what the model does; this is the lead rules' last word.
        if not hasattr(error, "error_dict"):
            return _errors(400, {NON_FIELD: error.messages})
        return _errors(
            400, {MODEL_TO_API.get(f, f): messages for f, messages in error.message_dict.items()}
        )
    return _json({"id": lead_id, "status": "received"}, status=201)
