"""Factories for the pipeline. They write rows directly (fast, any state); tests of
behaviour go through the services instead."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from leads.models import (
    Activity,
    ActivityKind,
    Customer,
    Deal,
    DealStatus,
    Estimate,
    EstimateStatus,
    Lead,
    LeadSource,
    Stage,
    Temperature,
)
from tests.factories import ProductLineFactory, UserFactory


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n} AB")
    email = factory.Sequence(lambda n: f"buyer{n}@customer.example")
    owner = factory.SubFactory(UserFactory)


class LeadFactory(DjangoModelFactory):
    class Meta:
        model = Lead

    contact_name = factory.Sequence(lambda n: f"Prospect {n}")
    company_name = factory.Sequence(lambda n: f"Prospect Company {n}")
    email = factory.Sequence(lambda n: f"prospect{n}@example.org")
    source = LeadSource.WEBINAR
    stage = Stage.SUSPECT
    temperature = Temperature.COLD
    owner = factory.SubFactory(UserFactory)
    team = factory.LazyAttribute(lambda lead: lead.owner.team if lead.owner else None)


class EstimateFactory(DjangoModelFactory):
    class Meta:
        model = Estimate

    customer = factory.SubFactory(CustomerFactory)
    owner = factory.SubFactory(UserFactory)
    product_line = factory.SubFactory(ProductLineFactory)
    amount = Decimal("1000.00")
    valid_until = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=30))
    status = EstimateStatus.DRAFT


class DealFactory(DjangoModelFactory):
    class Meta:
        model = Deal

    customer = factory.SubFactory(CustomerFactory)
    owner = factory.SubFactory(UserFactory)
    product_line = factory.SubFactory(ProductLineFactory)
    amount = Decimal("5000.00")
    close_date = factory.LazyFunction(timezone.localdate)
    status = DealStatus.WON


class ActivityFactory(DjangoModelFactory):
    class Meta:
        model = Activity

    kind = ActivityKind.CALL
    subject = factory.Sequence(lambda n: f"Call {n}")
    occurred_at = factory.LazyFunction(timezone.now)
    owner = factory.SubFactory(UserFactory)
    customer = factory.SubFactory(CustomerFactory)
