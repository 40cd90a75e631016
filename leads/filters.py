"""The lead list's filters, search and sort: one GET form shared by the list and the export.

``leads_filtered`` always starts from ``leads_for_user``: a filter narrows what
the user may see, it never widens it (an owner the user may not see is not
even a choice, and a forged one is refused by the form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any

from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django import forms
from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Case, F, IntegerField, OrderBy, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.forms import BoundField
from django.forms.utils import flatatt
from django.http import QueryDict
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from accounts.access import users_for_user
from accounts.models import ProductLine, Role, Territory, User
from leads.models import Lead, LeadSource, Stage, Temperature, normalise_phone
from leads.selectors import AnyUser, leads_for_user

# Search: how many words we look for, and how long one may be. A query is a
# conjunction of prefix terms; more words only narrow, so a cap loses nothing useful.
MAX_SEARCH_TERMS = 8
MAX_TERM_LENGTH = 60
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A phone number as people type it: digits with spaces, +, -, dots, slashes, parentheses.
PHONE_RE = re.compile(r"^\+?[\d\s().\-/]+$")
MIN_PHONE_DIGITS = 4
# Below this many rows the table's estimated size is too rough to show ("about 0 leads").
ESTIMATE_MIN = 1000
# Anything that is not a letter, a digit, or a dot/hyphen/at inside a word is a separator.
# What is left cannot carry tsquery syntax (quotes, &, |, !, :, *, parentheses, backslash).
NOT_TERM_CHARS = re.compile(r"[^\w.@-]|_")


# The owner filter's value for "nobody owns it yet".
UNASSIGNED = "none"


STAGE_RANK = "stage_rank"


def _stage_rank() -> Case:
    """Stages in pipeline order (suspect … SQL, then the outcomes), not alphabetically."""
    return Case(
        *(When(stage=stage, then=Value(rank)) for rank, stage in enumerate(Stage.values)),
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class SortKey:
    """One column of an order: which way, and where its empty values go."""

    field: str
    descending: bool = False
    nullable: bool = False
    nulls_first: bool = False

    def reversed(self) -> SortKey:
        return SortKey(self.field, not self.descending, self.nullable, not self.nulls_first)

    def order_by(self) -> OrderBy:
        nulls = {"nulls_first": True} if self.nulls_first else {"nulls_last": True}
        return OrderBy(
            F(self.field), descending=self.descending, **(nulls if self.nullable else {})
        )

    def value_of(self, lead: Lead) -> Any:
        if self.field == STAGE_RANK:
            return Stage.values.index(lead.stage)
        return getattr(lead, self.field)

    def parse(self, raw: str | None) -> Any:
        """A value of this column back from a cursor's text."""
        if raw is None:
            return None
        if self.field in ("created_at", "last_contact_at"):
            return datetime.fromisoformat(raw)
        if self.field == "estimated_value":
            return Decimal(raw)
        return int(raw)

    def after(self, value: Any) -> Q | None:
        """Rows strictly after ``value`` in this column's order (None: no row can be)."""
        if value is None:
            return Q(**{f"{self.field}__isnull": False}) if self.nulls_first else None
        condition = Q(**{f"{self.field}__{'lt' if self.descending else 'gt'}": value})
        if self.nullable and not self.nulls_first:
            condition |= Q(**{f"{self.field}__isnull": True})
        return condition

    def equal(self, value: Any) -> Q:
        return Q(**{f"{self.field}__isnull": True}) if value is None else Q(**{self.field: value})

    def bound(self, value: Any) -> Q | None:
        """A plain range on the leading column (``created_at <= x``): what lets PostgreSQL
        start its index scan at the cursor instead of filtering its way there."""
        if value is None or self.nullable:
            return None
        return Q(**{f"{self.field}__{'lte' if self.descending else 'gte'}": value})


@dataclass(frozen=True)
class Sort:
    label: Any
    keys: tuple[SortKey, ...]

    def order_by(self) -> list[OrderBy]:
        return [key.order_by() for key in self.keys]

    def reversed(self) -> Sort:
        return Sort(self.label, tuple(key.reversed() for key in self.keys))

    def values_of(self, lead: Lead) -> list[Any]:
        return [key.value_of(lead) for key in self.keys]

    def after(self, values: list[Any]) -> Q:
        """Keyset condition: rows after ``values`` (the last row of a page) in this order,
        expanded as k1 after v1, or k1 = v1 and k2 after v2, … (mixed directions and
        empty values allowed, so no row-value comparison)."""
        condition = Q(pk__in=[])
        same = Q()
        for key, value in zip(self.keys, values, strict=True):
            after = key.after(value)
            if after is not None:
                condition |= same & after
            same &= key.equal(value)
        bound = self.keys[0].bound(values[0])
        return condition & bound if bound is not None else condition


CREATED = SortKey("created_at", descending=True)
NEWEST_LAST = SortKey("pk", descending=True)


def _sorts() -> dict[str, Sort]:
    # Every order ends with the primary key, so pages are stable when values tie
    # (many leads share a score or a stage): no lead shows twice or never.
    return {
        "-created": Sort(_("Newest first"), (CREATED, NEWEST_LAST)),
        "created": Sort(_("Oldest first"), (CREATED.reversed(), NEWEST_LAST.reversed())),
        "-score": Sort(_("Highest score"), (SortKey("score", True), CREATED, NEWEST_LAST)),
        "score": Sort(_("Lowest score"), (SortKey("score"), CREATED, NEWEST_LAST)),
        # Never contacted counts as the longest without contact.
        "last_contact": Sort(
            _("Longest without contact"),
            (SortKey("last_contact_at", nullable=True, nulls_first=True), SortKey("pk")),
        ),
        "-last_contact": Sort(
            _("Most recent contact"),
            (SortKey("last_contact_at", descending=True, nullable=True), NEWEST_LAST),
        ),
        "stage": Sort(_("Stage: early first"), (SortKey(STAGE_RANK), CREATED, NEWEST_LAST)),
        "-stage": Sort(
            _("Stage: late first"), (SortKey(STAGE_RANK, descending=True), CREATED, NEWEST_LAST)
        ),
        "-value": Sort(
            _("Highest value"),
            (SortKey("estimated_value", descending=True, nullable=True), CREATED, NEWEST_LAST),
        ),
        "value": Sort(
            _("Lowest value"),
            (SortKey("estimated_value", nullable=True), CREATED, NEWEST_LAST),
        ),
    }


DEFAULT_SORT = "-created"
FORM_ID = "lead-filter-form"
# The names of the GET parameters the form reads: the list keeps them in its links.
FILTER_FIELDS = (
    "q",
    "stage",
    "temperature",
    "source",
    "owner",
    "territory",
    "product_line",
    "score_min",
    "score_max",
    "no_contact_days",
    "sort",
)


class PlainSelect(forms.Select):
    """A <select> whose options are written in Python.

    Django renders every <option> through a template, about a tenth of a
    millisecond each; the owner lists hold every rep of the organisation (a
    hundred and more) and the list page shows two of them.
    """

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        options = [
            format_html(
                '<option value="{}"{}>{}</option>',
                "" if option["value"] is None else option["value"],
                mark_safe(" selected") if option["selected"] else "",
                option["label"],
            )
            for _group, group_options, _index in widget["optgroups"]
            for option in group_options
        ]
        return format_html(
            '<select name="{}"{}>{}</select>',
            widget["name"],
            flatatt(widget["attrs"]),
            mark_safe("".join(options)),  # noqa: S308 (each option escaped by format_html)
        )


# Widgets ``field_html`` writes itself, and the Bootstrap class crispy gives each.
FAST_WIDGETS: dict[type, str] = {
    forms.Select: "form-select",
    PlainSelect: "form-select",
    forms.TextInput: "form-control",
    forms.NumberInput: "form-control",
    forms.CheckboxSelectMultiple: "form-check-input",
}


def _options_html(widget: forms.Select, value: Any) -> str:
    """The <option>s of a select, as Django's templates write them (the first match
    selected, all matches for a multiple select); choices are read straight from the
    widget, without building Django's per-option context dicts."""
    chosen = set(widget.format_value(value))
    multiple = widget.allow_multiple_selected
    has_selected = False
    html = []
    for option_value, option_label in widget.choices:
        if isinstance(option_label, (list, tuple)):  # an optgroup: Django's own way
            return "".join(
                (format_html('<optgroup label="{}">', group) if group else "")
                + "".join(
                    format_html(
                        '<option value="{}"{}>{}</option>',
                        "" if option["value"] is None else option["value"],
                        flatatt(option["attrs"]),
                        option["label"],
                    )
                    for option in options
                )
                + ("</optgroup>" if group else "")
                for group, options, _index in widget.optgroups("", value)
            )
        text = "" if option_value is None else str(option_value)
        selected = (multiple or not has_selected) and text in chosen
        has_selected |= selected
        html.append(
            f'<option value="{escape(text)}"{" selected" if selected else ""}>'
            f"{escape(str(option_label))}</option>"
        )
    return "".join(html)


def field_html(bound: BoundField) -> SafeString:
    """A field of the list's filter and bulk forms as crispy's Bootstrap 5 template
    would render it (``|as_crispy_field``), written in Python.

    Why: crispy renders each field, each widget and each <option> through templates,
    about three milliseconds per field; the list page has fifteen fields on every
    request. Only the plain cases are written here (selects, text and number inputs,
    a checkbox list, without errors); a field with errors, or any other widget, goes
    through crispy as before, so its error markup is crispy's own.
    """
    widget = bound.field.widget
    bootstrap = FAST_WIDGETS.get(type(widget))
    if bootstrap is None or bound.errors or bound.is_hidden:
        return as_crispy_field(bound)
    attrs = bound.build_widget_attrs({}, widget)
    if bound.auto_id and "id" not in widget.attrs:
        attrs["id"] = bound.auto_id
    required = bound.field.required
    label_class = "form-label" + (" requiredField" if required else "")
    label_text = conditional_escape(bound.label) + (
        mark_safe('<span class="asteriskField">*</span>') if required else ""
    )
    help_text = (
        format_html(
            '<div id="{}_helptext" class="form-text">{}</div>',
            bound.auto_id,
            mark_safe(bound.help_text),  # noqa: S308 (crispy shows help text unescaped too)
        )
        if bound.help_text
        else ""
    )
    name = bound.html_name
    if isinstance(widget, forms.CheckboxSelectMultiple):
        context = widget.get_context(name, bound.value(), attrs)["widget"]
        boxes = "".join(
            format_html(
                '<div class="form-check"><input type="{}" class="form-check-input" '
                'name="{}" value="{}"{}><label for="{}" class="form-check-label">{}</label></div>',
                option["type"],
                name,
                option["value"],
                flatatt(option["attrs"]),
                option["attrs"].get("id", ""),
                option["label"],
            )
            for _group, options, _index in context["optgroups"]
            for option in options
        )
        return format_html(
            '<div id="div_{}" class="mb-3"><fieldset><legend class="{} fs-6">{}</legend>'
            "<div >{}</div>{}</fieldset></div>",
            bound.auto_id,
            label_class,
            label_text,
            mark_safe(boxes),  # noqa: S308 (each box escaped by format_html)
            help_text,
        )
    css = widget.attrs.get("class", "")
    css_class = type(widget).__name__.lower()
    attrs["class"] = f"{css} {css_class}".strip() if css_class not in css else css
    attrs["class"] += f" {bootstrap}"
    if isinstance(widget, forms.Select):
        context = {"attrs": widget.build_attrs(widget.attrs, attrs)}
        control = format_html(
            '<select name="{}"{}>{}</select>',
            name,
            flatatt(context["attrs"]),
            mark_safe(_options_html(widget, bound.value())),  # noqa: S308 (escaped there)
        )
    else:
        context = widget.get_context(name, bound.value(), attrs)["widget"]
        value = context["value"]
        control = format_html(
            '<input type="{}" name="{}"{}{}>',
            context["type"],
            name,
            format_html(' value="{}"', value) if value is not None else "",
            flatatt(context["attrs"]),
        )
    return format_html(
        '<div id="div_{}" class="mb-3"><label for="{}" class="{}">{}</label>{}{}</div>',
        bound.auto_id,
        bound.id_for_label,
        label_class,
        label_text,
        control,
        help_text,
    )


def fields_html(form: forms.Form, *, skip: tuple[str, ...] = ()) -> dict[str, SafeString]:
    """``field_html`` of each field of ``form`` (but ``skip``), by name, in form order."""
    return {bound.name: field_html(bound) for bound in form if bound.name not in skip}


def owner_choices_for(user: AnyUser) -> QuerySet[User]:
    """People whose leads the user may filter on or assign to: visible reps and managers."""
    return (
        users_for_user(user=user)
        .filter(role__in=(Role.REP, Role.MANAGER))
        .only("pk", "display_name", "email", "is_active")
        .order_by("display_name", "pk")
    )


class LeadFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, company, email or phone")}
        ),
    )
    stage = forms.MultipleChoiceField(
        label=_("Stage"),
        required=False,
        choices=Stage.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    temperature = forms.ChoiceField(
        label=_("Temperature"),
        required=False,
        choices=[("", _("Any temperature")), *Temperature.choices],
    )
    source = forms.ChoiceField(
        label=_("Source"), required=False, choices=[("", _("Any source")), *LeadSource.choices]
    )
    owner = forms.ChoiceField(label=_("Owner"), required=False, widget=PlainSelect)
    territory = forms.ModelChoiceField(
        label=_("Territory"),
        required=False,
        queryset=Territory.objects.none(),
        empty_label=_("Any territory"),
        error_messages={"invalid_choice": _("Choose a territory from the list.")},
    )
    product_line = forms.ModelChoiceField(
        label=_("Product line"),
        required=False,
        queryset=ProductLine.objects.none(),
        empty_label=_("Any product line"),
        error_messages={"invalid_choice": _("Choose a product line from the list.")},
    )
    score_min = forms.IntegerField(
        label=_("Score from"),
        required=False,
        min_value=0,
        max_value=100,
        error_messages={"invalid": _("The score is a whole number from 0 to 100.")},
    )
    score_max = forms.IntegerField(
        label=_("Score to"),
        required=False,
        min_value=0,
        max_value=100,
        error_messages={"invalid": _("The score is a whole number from 0 to 100.")},
    )
    no_contact_days = forms.IntegerField(
        label=_("No contact for (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        help_text=_("Leads never contacted, or not since this many days."),
        error_messages={"invalid": _("Give the number of days as a whole number.")},
    )
    sort = forms.ChoiceField(label=_("Sort by"), required=False)

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["sort"].choices = [(key, sort.label) for key, sort in _sorts().items()]
        if getattr(user, "role", None) == Role.REP:
            # A rep sees only their own leads: an owner filter would have one choice.
            del self.fields["owner"]
        else:
            self.fields["owner"].choices = [
                ("", _("Anyone")),
                (UNASSIGNED, _("Unassigned")),
                *((str(person.pk), str(person)) for person in owner_choices_for(user)),
            ]
            self.fields["owner"].error_messages["invalid_choice"] = _(
                "Choose an owner from the list."
            )
        self.fields["territory"].queryset = Territory.objects.order_by("name")
        self.fields["product_line"].queryset = ProductLine.objects.order_by("name")
        for name in ("temperature", "source", "sort"):
            self.fields[name].error_messages["invalid_choice"] = _(
                "That is not one of the choices; it was ignored."
            )
        self.fields["stage"].error_messages["invalid_choice"] = _(
            "Choose stages from the list; an unknown one was given."
        )
        for field in self.fields.values():
            # The filter fields sit beside the list, outside the search bar's <form>.
            field.widget.attrs["form"] = FORM_ID

    def clean_q(self) -> str:
        query = " ".join(self.cleaned_data["q"].split())
        if query and search_condition(query) is None:
            raise forms.ValidationError(
                _("Search for letters or digits: a name, a company, an email or a phone number.")
            )
        return query

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            # Neither bound is used: which one was meant is anyone's guess.
            self.add_error("score_max", _("The upper score must not be below the lower one."))
            del self.cleaned_data["score_min"]
        return data

    @property
    def is_filtered(self) -> bool:
        """Whether anything but the sort narrows the list (used for the estimated total)."""
        if not self.is_bound:
            return False
        return any(
            value not in (None, "", [])
            for name, value in self.cleaned_data.items()
            if name != "sort" and name not in self.errors
        )


def _search_terms(query: str) -> list[str]:
    terms = []
    for chunk in NOT_TERM_CHARS.sub(" ", query).split():
        if "@" in chunk:
            # A partial address: look for its local part (the tsvector holds whole addresses).
            chunk = chunk.split("@", 1)[0]
        chunk = chunk.strip(".-@").lower()[:MAX_TERM_LENGTH]
        if chunk:
            terms.append(chunk)
    return terms[:MAX_SEARCH_TERMS]


def search_condition(query: str) -> Q | Exact | None:
    """The WHERE condition for a search box query, or None when nothing is searchable.

    An email address is matched exactly through the lead_email_ci index; a phone
    number by its normalised digits; anything else word by word as prefixes
    ('anna:* & svens:*') against the generated tsvector (GIN index). Each term is
    quoted and holds only letters, digits and inner . - so it cannot inject tsquery
    syntax; a substring search (icontains) would read every row.
    """
    query = query.strip()
    if EMAIL_RE.match(query):
        return Exact(Lower("email"), query.lower())
    if PHONE_RE.match(query) and sum(c.isdigit() for c in query) >= MIN_PHONE_DIGITS:
        terms = [normalise_phone(query)]
    else:
        terms = _search_terms(query)
    if not terms:
        return None
    raw = " & ".join(f"'{term}':*" for term in terms)
    return Q(search=SearchQuery(raw, search_type="raw", config="simple"))


def apply_filters(leads: QuerySet[Lead], data: dict[str, Any]) -> QuerySet[Lead]:
    """Narrow ``leads`` by the valid values of a LeadFilterForm's cleaned data."""
    query = data.get("q")
    if query:
        condition = search_condition(query)
        if condition is not None:
            leads = leads.filter(condition)
    if data.get("stage"):
        leads = leads.filter(stage__in=data["stage"])
    if data.get("temperature"):
        leads = leads.filter(temperature=data["temperature"])
    if data.get("source"):
        leads = leads.filter(source=data["source"])
    owner = data.get("owner")
    if owner == UNASSIGNED:
        leads = leads.filter(owner__isnull=True)
    elif owner:
        leads = leads.filter(owner_id=int(owner))
    if data.get("territory"):
        leads = leads.filter(territory=data["territory"])
    if data.get("product_line"):
        # One row per lead: (lead, product line) pairs are unique, so no DISTINCT is needed.
        leads = leads.filter(product_lines=data["product_line"])
    if data.get("score_min") is not None:
        leads = leads.filter(score__gte=data["score_min"])
    if data.get("score_max") is not None:
        leads = leads.filter(score__lte=data["score_max"])
    if data.get("no_contact_days"):
        cutoff = timezone.now() - timedelta(days=data["no_contact_days"])
        leads = leads.filter(Q(last_contact_at__isnull=True) | Q(last_contact_at__lt=cutoff))
    return leads


def current_sort(form: LeadFilterForm) -> Sort:
    """The order the form asks for (the default when it asks for none or a bad one)."""
    key = form.cleaned_data.get("sort") if "sort" not in form.errors else None
    return _sorts()[key or DEFAULT_SORT]


def leads_filtered(
    *, user: AnyUser, params: QueryDict | dict[str, Any]
) -> tuple[QuerySet[Lead], LeadFilterForm]:
    """The user's leads narrowed and ordered by ``params`` (a GET query), and the bound form.

    Invalid values never fail the page: each one gets a message on the form and is
    left out, the valid ones still apply.
    """
    form = LeadFilterForm(params, user=user)
    form.is_valid()
    data = {name: value for name, value in form.cleaned_data.items() if name not in form.errors}
    leads = apply_filters(leads_for_user(user=user), data)
    sort = current_sort(form)
    if any(key.field == STAGE_RANK for key in sort.keys):
        leads = leads.alias(**{STAGE_RANK: _stage_rank()})
    return leads.order_by(*sort.order_by()), form


def estimated_lead_total() -> int | None:
    """PostgreSQL's own estimate of the number of leads (pg_class.reltuples), free to read.

    Only meaningful for the whole, unfiltered table; None before the table was ever
    analysed (-1) or while it is small enough that the estimate says little.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [Lead._meta.db_table],
        )
        row = cursor.fetchone()
    if row is None or row[0] < ESTIMATE_MIN:
        return None
    return int(row[0])
