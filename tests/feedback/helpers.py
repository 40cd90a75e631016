"""Small builders for the feedback tests. Surveys are made and sent through the
services (as in production), and the token is read back from the email the
customer got: the only place it exists in clear."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core import mail

from accounts.models import User
from feedback import services
from feedback.models import InvitationReason, SurveyInvitation
from leads.models import Customer, Deal
from tests.factories_leads import CustomerFactory, DealFactory

# A Wednesday morning in March, before the daylight-saving change.
NOW = dt.datetime(2025, 3, 12, 9, 0, tzinfo=dt.UTC)
TOKEN_IN_URL = re.compile(r"/s/([A-Za-z0-9_-]+)/")


def customer_of(rep: User, **fields: Any) -> Customer:
    return CustomerFactory(owner=rep, **fields)


def won_deal(rep: User, customer: Customer | None = None, **fields: Any) -> Deal:
    customer = customer or customer_of(rep)
    fields.setdefault("close_date", NOW.date())
    return DealFactory(owner=rep, customer=customer, **fields)


def token_from(message: mail.EmailMessage) -> str:
    match = TOKEN_IN_URL.search(message.body)
    assert match, message.body
    return match.group(1)


def send_survey(
    rep: User,
    *,
    customer: Customer | None = None,
    deal: Deal | None = None,
    now: dt.datetime = NOW,
) -> tuple[SurveyInvitation, str]:
    """A survey scheduled and emailed at ``now``; the invitation and the link's token."""
    customer = customer or (deal.customer if deal else customer_of(rep))
    invitation = services.invitation_create(
        customer=customer,
        rep=rep,
        deal=deal,
        reason=InvitationReason.ON_DEMAND,
        now=now,
        send_after=now,
    )
    before = len(mail.outbox)
    outcomes = services.deliveries_dispatch(now=now)
    assert outcomes["sent"] >= 1, outcomes
    sent = [m for m in mail.outbox[before:] if invitation.email in m.to]
    invitation.refresh_from_db()
    return invitation, token_from(sent[-1])


def answer(token: str, *, csat: int = 5, nps: int = 10, now: dt.datetime = NOW, **extra: Any):
    return services.survey_answer(token=token, csat=csat, nps=nps, now=now, **extra)
