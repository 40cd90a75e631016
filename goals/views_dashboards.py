"""Dashboards (team, company, rep), leaderboards and the drill-down lists behind their numbers.

Access (DESIGN.md visibility, enforced through ``accounts.access``):

- ``dashboard``: rep → their own dashboard, manager → their first team's,
  admin → the company's; marketing: 403 (no sales figures);
- team dashboard: managers of that team and admins (another team: 404), reps 403
  (it lists their teammates' figures);
- company dashboard: admins only (403 for everyone else);
- rep dashboard: the rep, their manager, admins; anyone else 404;
- leaderboards: a rep sees their team's board and only their own company rank,
  a manager their teams' boards and their reps' company ranks, an admin all;
- drill-down: the deals, leads or estimates behind a number, from the scoped
  selectors of ``leads.selectors``, so a row outside the user's scope never shows.

Every page reads ``timezone.localdate()`` once; facts run up to yesterday.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps
from html import escape as _escape
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import numberformat, timezone
from django.utils.formats import get_format, localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from accounts.access import (
    managed_team_and_member_ids,
    team_get_for_user,
    teams_for_user,
    user_get_for_user,
)
from accounts.models import ProductLine, Role, Team, User
from goals import dashboards as dash
from goals.forecast import Forecast, weighted_pipeline_by_rep
from goals.leaderboards import BOARD_COLUMNS, CSAT_MIN_ANSWERS, Board, BoardMetric, leaderboard
from goals.models import Metric
from goals.selectors import kpis_from_totals, ratio
from leads.models import CLOSED_STAGES, OPEN_ESTIMATE_STATUSES, DealStatus
from leads.selectors import (
    activities_for_user,
    deals_for_user,
    estimates_for_user,
    leads_for_user,
)
from reminders.selectors import reminder_panel_for

DRILL_PAGE_SIZE = 50
TODO_CAP = 20
TOP_N = 5
SALES_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)


def _forbid(request: HttpRequest, message: str) -> HttpResponse:
    """A role that may not use this page at all: 403 with the reason on top."""
    messages.error(request, message)
    return render(request, "403.html", status=403)


# --- The period picker -------------------------------------------------------------------


class PeriodForm(forms.Form):
    """The period of a dashboard, leaderboard or drill-down (GET)."""

    period = forms.ChoiceField(
        label=gettext_lazy("Period"),
        choices=dash.PERIOD_CHOICES,
        required=False,
        widget=forms.Select({"class": "form-select"}),
    )
    start = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput({"type": "date", "class": "form-control"}),
    )
    end = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        widget=forms.DateInput({"type": "date", "class": "form-control"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("period") == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError(
                    _("For a custom period give both its first and last day.")
                )
            if end < start:
                raise forms.ValidationError(_("The last day of the period is before its first."))
            if (end - start).days + 1 > dash.MAX_CUSTOM_DAYS:
                raise forms.ValidationError(_("Choose a period of two years at most."))
        return data


def _period(request: HttpRequest, today: date) -> tuple[dash.Period, PeriodForm]:
    """The period asked for; bad input gets a message and the default period (this month)."""
    asked = any(name in request.GET for name in ("period", "start", "end"))
    form = PeriodForm(request.GET if asked else None)
    if asked and not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        form = PeriodForm(initial={"period": dash.DEFAULT_PERIOD})
        return dash.period_for(dash.DEFAULT_PERIOD, today), form
    data = form.cleaned_data if asked else {}
    period = dash.period_for(
        data.get("period") or dash.DEFAULT_PERIOD, today, data.get("start"), data.get("end")
    )
    if not asked:
        form = PeriodForm(initial={"period": period.key})
    return period, form


def _period_query(period: dash.Period) -> str:
    """The period as query parameters, for links to drill-downs and other dashboards."""
    params = {"period": period.key}
    if period.key == "custom":
        params |= {"start": period.start.isoformat(), "end": period.end.isoformat()}
    return urlencode(params)


def _period_context(period: dash.Period, form: PeriodForm) -> dict[str, Any]:
    return {
        "period": period,
        "period_form": form,
        "period_query": _period_query(period),
        "facts_end": period.facts_end,
    }


# --- Scopes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose figures: a team, a rep, or the company (``rep_ids=None``)."""

    kind: str
    rep_ids: list[int] | None
    team: Team | None = None
    rep: User | None = None

    @property
    def key(self) -> str:
        if self.kind == "team" and self.team:
            return f"team:{self.team.pk}"
        if self.kind == "rep" and self.rep:
            return f"rep:{self.rep.pk}"
        return "company"


def _team_scope(team: Team) -> tuple[Scope, list[User]]:
    people = list(dash.team_members(team.pk))
    return Scope("team", [person.pk for person in people], team=team), people


def _team_picker(user: User) -> list[Team]:
    return list(teams_for_user(user=user).filter(is_active=True).order_by("name", "pk"))


# --- Repeated markup, built in Python ----------------------------------------------------


TIMES = "\u00d7"  # the multiplication sign after a coverage ratio


def _esc(value: Any) -> str:
    """What the template's autoescape gives: the value as text, localised, HTML-escaped."""
    return _escape(str(localize(value)))


def _url_maker(name: str) -> Any:
    """A function pk -> URL of ``name``: reversed once per page, not once per row."""
    sentinel = 987654321
    head, tail = reverse(name, args=[sentinel]).split(str(sentinel), 1)
    return lambda pk: f"{head}{pk}{tail}"


class _Page:
    """Per page: translated goal labels, and numbers formatted once per distinct value
    (the targets repeat on every row; ``floatformat`` costs ~20 µs a call)."""

    def __init__(self) -> None:
        self.metrics = {value: _esc(label) for value, label in Metric.choices}
        self.attained, self.pace = _esc(_("attained")), _esc(_("pace"))
        self.no_day_left = _esc(_("no working day left"))
        self.no_goals = _esc(_("No goals for this period."))
        self.needed = _("needed: %(amount)s per working day (%(days)s left)")
        self._numbers: dict[tuple[Any, Any], str] = {}
        self._separators: tuple[Any, ...] | None = None

    def number(self, value: Any, arg: Any) -> str:
        """``floatformat(value, arg)``, escaped (equal values format alike: arg >= 0)."""
        key = (value, arg)
        found = self._numbers.get(key)
        if found is None:
            found = self._numbers[key] = _esc(self._format(value, arg))
        return found

    def _format(self, value: Any, arg: Any) -> str:
        """What ``floatformat`` gives for a Decimal or int and ``arg`` 0, 1, 2, "0g"...

        The same rounding (half up, no "-0") and ``numberformat.format`` call as
        ``floatformat`` and ``formats.number_format``, with the language's separators
        looked up once per page instead of three times per number. Anything else
        (floats, None) goes to ``floatformat`` itself.
        """
        text = str(arg)
        grouping = text.endswith("g")
        digits = text.rstrip("g")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | Decimal)
            or not digits.isdigit()
            or (isinstance(value, Decimal) and not value.is_finite())
        ):
            return floatformat(value, arg)
        if self._separators is None:
            language = get_language()
            self._separators = tuple(
                get_format(name, language, use_l10n=True)
                for name in ("DECIMAL_SEPARATOR", "NUMBER_GROUPING", "THOUSAND_SEPARATOR")
            )
        decimal_separator, number_grouping, thousand_separator = self._separators
        places = int(digits)
        rounded = Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
        if not rounded:
            rounded = abs(rounded)  # floatformat never shows "-0"
        return numberformat.format(
            rounded,
            decimal_separator,
            places,
            number_grouping,
            thousand_separator,
            force_grouping=grouping,
            use_l10n=True,
        )


def goals_html(
    items: list[dash.GoalProgress], *, show_needed: bool = False, page: _Page | None = None
) -> SafeString:
    """A rep's goals with status, attainment, pace (and what is needed per working day).

    Built in Python, not by a template include per rep: on a team of 14 the include
    (a dozen filters and translations per goal) was half the page's rendering time.
    Same markup as the template it replaces; every value is escaped.
    """
    page = page or _Page()
    if not items:
        return mark_safe(  # noqa: S308 (a translated constant, escaped)
            f'<span class="small text-body-secondary">{page.no_goals}</span>'
        )
    number = page.number
    parts = []
    for item in items:
        goal = item.goal
        what = page.metrics.get(goal.metric) or _esc(goal.metric)
        if goal.product_line_id is not None and goal.product_line:
            what += f" · {_esc(goal.product_line.name)}"
        if goal.territory_id is not None and goal.territory:
            what += f" · {_esc(goal.territory.name)}"
        actual = "—" if item.actual is None else number(item.actual, "0g")
        attainment = (
            "—" if item.attainment is None else f"{number(item.attainment_percent, 0)}&nbsp;%"
        )
        html = (
            '<div class="d-flex flex-wrap align-items-center gap-2 small" data-testid="goal">'
            f'<span class="badge text-bg-{_esc(item.colour)}" data-testid="goal-status" '
            f'data-status="{_esc(item.status)}">{_esc(item.status_label) or "—"}</span> '
            f"<span>{what}</span> "
            f'<span class="text-body-secondary">{actual} / '
            f"{number(item.target, '0g')}</span> "
            f"<span>{page.attained} {attainment}</span>"
        )
        if item.pace is not None:
            html += f" <span>{page.pace} {number(item.pace_percent, 0)}&nbsp;%</span>"
        if show_needed:
            if item.needed_per_day is not None:
                text = page.needed % {
                    "amount": floatformat(item.needed_per_day, "2g"),
                    "days": localize(item.remaining_days),
                }
                html += f' <span data-testid="needed">{_escape(text)}</span>'
            elif item.remaining_days == 0:
                html += f' <span class="text-danger">{page.no_day_left}</span>'
        parts.append(html + "</div>")
    return mark_safe("\n".join(parts))  # noqa: S308 (every value escaped above)


def figure_rows_html(rows: list[FigureLine], *, period_query: str) -> SafeString:
    """The rows of the reps (or teams) table of the team and company dashboards.

    Built once per page in Python (see ``goals_html``): a template loop with ten
    filters, three ``{% url %}`` and an include per row cost ~3 ms a row. Same
    markup as the template had; every value is escaped.
    """
    rep_url = _url_maker("goals:rep_dashboard")
    team_url = _url_maker("goals:team_dashboard")
    query = _escape(period_query)
    drill = {
        kind: _escape(reverse("goals:drilldown", args=[kind]))
        for kind in ("deals-won", "estimates-issued", "open-estimates")
    }
    page = _Page()
    no_goals = page.no_goals

    def money(value: Decimal, kind: str, scope_key: str) -> str:
        shown = page.number(value, "0g")
        if value and scope_key:
            return f'<a href="{drill[kind]}?scope={_escape(scope_key)}&amp;{query}">{shown}</a>'
        return shown

    parts = []
    for row in rows:
        label = _escape(str(row.label))
        if row.rep is not None:
            name = f'<a href="{rep_url(row.rep.pk)}?{query}">{label}</a>'
        elif row.team is not None:
            name = f'<a href="{team_url(row.team.pk)}?{query}">{label}</a>'
        else:
            name = label
        key = row.scope_key
        win_rate = (
            "—"
            if row.win_rate_percent is None
            else f"{page.number(row.win_rate_percent, 1)}&nbsp;%"
        )
        coverage = "—" if row.coverage is None else f"{page.number(row.coverage, 2)}{TIMES}"
        low = " text-danger fw-semibold" if row.coverage_low else ""
        if row.rep is not None:
            goals = goals_html(row.goals, page=page)
        else:
            goals = (
                "".join(
                    f'<span class="badge text-bg-{_esc(colour)}">{_esc(label)}: {_esc(count)}'
                    "</span> "
                    for colour, label, count in row.goal_counts
                )
                or f'<span class="small text-body-secondary">{no_goals}</span>'
            )
        parts.append(
            '<tr data-testid="rep-row">'
            f"<td>{name}</td>"
            f'<td class="text-end">{money(row.revenue, "deals-won", key)}</td>'
            f'<td class="text-end">{_esc(row.deals_won)}</td>'
            f'<td class="text-end">{win_rate}</td>'
            f'<td class="text-end">{money(row.estimate_value, "estimates-issued", key)}</td>'
            f'<td class="text-end{low}">{coverage}</td>'
            f'<td class="text-end">{money(row.pipeline, "open-estimates", key)}</td>'
            f"<td>{goals}</td>"
            "</tr>"
        )
    return mark_safe("\n".join(parts))  # noqa: S308 (every value escaped above)


LOW_CELL = (" text-danger fw-semibold", ' data-flag="low"')


def coverage_html(table: list[dash.CoverageMonth]) -> list[tuple[dash.CoverageMonth, SafeString]]:
    """Each month of the coverage table with its rows' markup, built in Python.

    A rep x product line cell with two conditions and two translations cost the
    template ~0.1 ms; a team of 14 on five lines has 70 a month. Same markup as
    the template had; every value is escaped.
    """
    page = _Page()
    title = _esc(_("No revenue quota on this product line"))
    no_quota = f'<span class="text-body-secondary" title="{title}">{_esc(_("no quota"))}</span>'
    result = []
    for month in table:
        parts = []
        for row in month.rows:
            cells = []
            for cell in row.cells:
                low = cell.below_standard and cell.quota is not None
                if cell.quota is None:
                    shown = no_quota
                elif cell.coverage is None:
                    shown = "—"
                else:
                    shown = f"{page.number(cell.coverage, 2)}{TIMES}"
                flag = LOW_CELL if low else ("", "")
                cells.append(
                    f'<td class="text-end{flag[0]}" data-testid="coverage-cell"{flag[1]}>'
                    f"{shown}</td>"
                )
            parts.append(
                f'<tr data-testid="coverage-row"><td>{_escape(str(row.label))}</td>'
                f"{''.join(cells)}</tr>"
            )
        result.append((month, mark_safe("\n".join(parts))))  # noqa: S308 (escaped above)
    return result


def without_parallel_workers(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """Run the view's queries in one transaction that plans them without parallel workers.

    A team's or a rep's dashboard reads a few thousand rows per query; on a small
    server, starting parallel workers for those costs more than they save (the
    team dashboard on the benchmark data, 2 cores: 86 ms serial against 95 ms). The
    company dashboard, whose queries read every fact of its period, keeps them.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            return view(request, *args, **kwargs)

    return wrapped


# --- The entry point ---------------------------------------------------------------------


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The menu's "Dashboard": each role's own starting view (the team picker lands here too)."""
    user = request.user
    if user.role not in SALES_ROLES:
        return _forbid(request, _("Dashboards are for the sales team."))
    query = request.GET.copy()
    chosen = query.pop("team", [""])[-1]
    suffix = f"?{query.urlencode()}" if query else ""
    if user.role == Role.REP:
        return redirect(reverse("goals:rep_dashboard", args=[user.pk]) + suffix)
    if chosen == "company" or (not chosen and user.role == Role.ADMIN):
        if user.role != Role.ADMIN:
            return _forbid(request, _("The company dashboard is for administrators."))
        return redirect(reverse("goals:company_dashboard") + suffix)
    if chosen:
        team = team_get_for_user(user=user, pk=chosen)
        return redirect(reverse("goals:team_dashboard", args=[team.pk]) + suffix)
    first = teams_for_user(user=user).order_by("name", "pk").first()
    if first is None:
        return render(request, "goals/dashboard_no_team.html", {})
    return redirect(reverse("goals:team_dashboard", args=[first.pk]) + suffix)


# --- Team and company dashboards ---------------------------------------------------------


@login_required
@without_parallel_workers
def team_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    if user.role not in (Role.MANAGER, Role.ADMIN):
        return _forbid(request, _("Team dashboards are for managers and administrators."))
    team = team_get_for_user(user=user, pk=pk)
    period, form = _period(request, timezone.localdate())
    scope, people = _team_scope(team)
    context = _scope_dashboard(scope=scope, people=people, period=period)
    return _render_dashboard(request, context, period, form, scope)


@login_required
def company_dashboard(request: HttpRequest) -> HttpResponse:
    if request.user.role != Role.ADMIN:
        return _forbid(request, _("The company dashboard is for administrators."))
    period, form = _period(request, timezone.localdate())
    scope = Scope("company", None)
    context = _scope_dashboard(scope=scope, people=None, period=period)
    return _render_dashboard(request, context, period, form, scope)


def _render_dashboard(
    request: HttpRequest,
    context: dict[str, Any],
    period: dash.Period,
    form: PeriodForm,
    scope: Scope,
) -> HttpResponse:
    return render(
        request,
        "goals/dashboard_team.html",
        {
            **context,
            **_period_context(period, form),
            "scope": scope,
            "teams": _team_picker(request.user),
            "is_admin": request.user.role == Role.ADMIN,
            "rows_html": figure_rows_html(context["rows"], period_query=_period_query(period)),
            "coverage_months": coverage_html(context["coverage"]),
            "base_currency": settings.BASE_CURRENCY,
            "coverage_standard": settings.ESTIMATE_COVERAGE_STANDARD,
        },
    )


@dataclass(frozen=True)
class FigureLine:
    """One row of a dashboard's table: a rep (team dashboard) or a team (company's)."""

    label: str
    rep: User | None
    team: Team | None
    revenue: Decimal
    deals_won: int
    win_rate: Decimal | None
    estimate_value: Decimal
    coverage: Decimal | None
    pipeline: Decimal
    goals: list[dash.GoalProgress]

    @property
    def scope_key(self) -> str:
        if self.rep is not None:
            return f"rep:{self.rep.pk}"
        return f"team:{self.team.pk}" if self.team is not None else ""

    @property
    def win_rate_percent(self) -> Decimal | None:
        return dash.percent(self.win_rate)

    @property
    def coverage_low(self) -> bool:
        return self.coverage is not None and self.coverage < settings.ESTIMATE_COVERAGE_STANDARD

    @property
    def goal_counts(self) -> list[tuple[str, Any, int]]:
        """(colour, label, how many goals) per pace status, for a team's row."""
        return [
            (dash.STATUS_COLOURS[status], dash.STATUS_LABELS[status], count)
            for status in ("on_track", "behind", "at_risk")
            if (count := sum(1 for item in self.goals if item.status == status))
        ]


def _figure_line(
    label: str,
    members: list[User],
    *,
    rep: User | None,
    team: Team | None,
    by_rep: dict[int | None, dict[str, Any]],
    quotas: dict[int, Decimal | None],
    pipeline: dict[int, Decimal],
    progress: dict[int, list[dash.GoalProgress]],
) -> FigureLine:
    figures = dash.add_totals(by_rep[m.pk] for m in members if m.pk in by_rep)
    known = [quotas[m.pk] for m in members if quotas.get(m.pk) is not None]
    won, lost = figures["deals_won"], figures["deals_lost"]
    return FigureLine(
        label=label,
        rep=rep,
        team=team,
        revenue=figures["revenue_won"],
        deals_won=won,
        win_rate=ratio(won, won + lost),
        estimate_value=figures["estimate_value_issued"],
        coverage=ratio(figures["estimate_value_issued"], sum(known, dash.ZERO) if known else None),
        pipeline=sum((pipeline.get(m.pk, dash.ZERO) for m in members), dash.ZERO),
        goals=[item for m in members for item in progress.get(m.pk, [])],
    )


def _groups(scope: Scope, people: list[User]) -> list[tuple[str, list[User], User | None, Any]]:
    """The table's rows: each rep of a team, or each team of the company (by its people)."""
    if scope.kind == "team":
        return [(person.display_name, [person], person, None) for person in people]
    teams: dict[int | None, tuple[Any, list[User]]] = {}
    for person in people:
        teams.setdefault(person.team_id, (person.team, []))[1].append(person)
    groups = [(team.name, members, None, team) for key, (team, members) in teams.items() if key]
    if None in teams:
        groups.append((_("Without a team"), teams[None][1], None, None))
    return groups


def _scope_dashboard(
    *, scope: Scope, people: list[User] | None, period: dash.Period
) -> dict[str, Any]:
    """Everything on a team or company dashboard, in a fixed number of queries.

    Queries (whatever the number of reps, goals, days or rows):
    1. facts of the period by rep, line, week and month, and of the previous
       period by rep (one scan);
    2. (company only) the people: the reps and whoever has facts;
    3-4. rep goals overlapping the previous and this period, their revisions;
    5. each goal's facts (one query);
    6. the raw won deals of this and of the previous period (median, repeat);
    7. active product lines; 8. the weighted pipeline by rep (open estimates).
    """
    today, start, facts_end = period.today, period.start, period.facts_end
    rep_ids = scope.rep_ids
    previous_start, previous_end = period.previous
    facts = dash.period_facts(
        rep_ids=rep_ids, start=start, end=facts_end, previous_start=previous_start
    )
    by_rep = facts.by_rep
    if people is None:
        people = list(dash.company_people(by_rep.keys()))
    totals = dash.add_totals(by_rep.values())
    previous_totals = facts.previous_totals
    goals = dash.rep_goals(rep_ids=rep_ids, start=previous_start, end=period.end)
    current_goals = [g for g in goals if g.start <= period.end and g.end >= start]
    progress = dash.goals_progress(current_goals, today)
    grouped = dash.goals_by_rep(goals)
    quota = dash.scope_quota(grouped, start, period.end)
    previous_quota = dash.scope_quota(grouped, previous_start, previous_end)
    current, previous = dash.scope_kpis(
        rep_ids=rep_ids,
        period=period,
        totals=totals,
        previous_totals=previous_totals,
        quota=quota,
        previous_quota=previous_quota,
    )
    lines = list(ProductLine.objects.filter(is_active=True).order_by("name", "pk"))
    issued = facts.issued
    pipeline_reps: Any = rep_ids if rep_ids is not None else User.objects.all()
    pipeline = weighted_pipeline_by_rep(reps=pipeline_reps, today=today, until=period.end)
    forecast = _forecast(totals["revenue_won"], pipeline, period)
    quotas = {
        person.pk: dash.rep_quota(grouped.get(person.pk, []), start, period.end, ())
        for person in people
    }
    groups = _groups(scope, people)
    rows = [
        _figure_line(
            label,
            members,
            rep=rep,
            team=team,
            by_rep=by_rep,
            quotas=quotas,
            pipeline=pipeline,
            progress=progress,
        )
        for label, members, rep, team in groups
    ]
    board = leaderboard(
        reps=people,
        metric=BoardMetric.REVENUE,
        start=start,
        end=facts_end,
        totals_by_rep=by_rep,
    )
    return {
        "cards": dash.kpi_cards(current, previous),
        "kpis": current,
        "previous_range": (previous_start, previous_end),
        "funnel": dash.funnel(totals),
        "rows": rows,
        "coverage": dash.coverage_table(
            groups=[(label, members) for label, members, _rep, _team in groups],
            lines=lines,
            goals_by_rep=grouped,
            issued=issued,
            months=period.months(),
        ),
        "lines": lines,
        "forecast": forecast,
        "top": [row for row in board.rows if row.value][:TOP_N],
        "chart_data": {"weekly": facts.weekly, "monthly": facts.monthly},
    }


def _forecast(won: Decimal, pipeline: dict[int, Decimal], period: dash.Period) -> Forecast | None:
    """What ``goals.forecast.forecast_for`` answers, from the per-rep pipeline already read.

    None once the period is over: no open estimate can still land in it.
    """
    if period.end < period.today:
        return None
    weighted = sum(pipeline.values(), dash.ZERO).quantize(Decimal("0.01"))
    return Forecast(won_to_date=won, weighted_pipeline=weighted, forecast=won + weighted)


# --- The rep dashboard -------------------------------------------------------------------


@dataclass(frozen=True)
class RepCard:
    card: dash.KpiCard
    team_average: Any

    @property
    def team_shown(self) -> str:
        return dash.display(self.team_average, self.card.format)


@login_required
@without_parallel_workers
def rep_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    """A rep's own figures next to their team's average (never a teammate's own figures).

    Queries: the rep (scoped), their team's member ids, the team's facts of the
    period and of the previous one (one scan: the rep's own figures and charts, the
    team's total to average), goals and revisions, goals' facts, the raw deals (both
    periods), product lines, the pipeline, the company revenue by rep and the
    company's reps (team and company rank), the open to-dos.
    """
    user = request.user
    if user.role not in SALES_ROLES:
        return _forbid(request, _("Dashboards are for the sales team."))
    rep = user_get_for_user(user=user, pk=pk)
    today = timezone.localdate()
    period, form = _period(request, today)
    start, facts_end = period.start, period.facts_end
    # The team average is over the team's reps (a manager in the team sells no quota).
    team_ids = (
        list(dash.team_members(rep.team_id).filter(role=Role.REP).values_list("pk", flat=True))
        if rep.team_id
        else [rep.pk]
    )
    if rep.pk not in team_ids:
        team_ids.append(rep.pk)
    previous_start, previous_end = period.previous
    # One scan: the team's facts of the period (its total, to average) and the rep's
    # own (figures, charts, coverage) and of the previous range.
    facts = dash.period_facts(
        rep_ids=team_ids,
        start=start,
        end=facts_end,
        previous_start=previous_start,
        chart_rep=rep.pk,
    )
    own = facts.by_rep.get(rep.pk) or dash.zero_totals()
    team_totals = dash.add_totals(facts.by_rep.values())
    team_average = dash.average_totals(team_totals, len(team_ids))
    previous_totals = facts.previous_by_rep.get(rep.pk) or dash.zero_totals()
    goals = dash.rep_goals(rep_ids=[rep.pk], start=previous_start, end=period.end)
    current_goals = [g for g in goals if g.start <= period.end and g.end >= start]
    progress = dash.goals_progress(current_goals, today).get(rep.pk, [])
    quota = dash.rep_quota(goals, start, period.end, ())
    previous_quota = dash.rep_quota(goals, previous_start, previous_end, ())
    current, previous = dash.scope_kpis(
        rep_ids=[rep.pk],
        period=period,
        totals=own,
        previous_totals=previous_totals,
        quota=quota,
        previous_quota=previous_quota,
    )
    # The average rep: the medians and repeat customers are not averages, so left empty.
    team_kpis = kpis_from_totals(
        team_average,
        start=start,
        end=facts_end,
        cycle_median=None,
        customers_won=0,
        repeat_customers=0,
        revenue_quota=None,
    )
    cards = [
        RepCard(card, getattr(team_kpis, card.name))
        for card in dash.kpi_cards(current, previous)
        if card.name not in ("sales_cycle_median_days", "repeat_business_rate")
    ]
    lines = list(ProductLine.objects.filter(is_active=True).order_by("name", "pk"))
    issued = facts.issued
    pipeline = weighted_pipeline_by_rep(reps=[rep.pk], today=today, until=period.end)
    company_board = _company_board(BoardMetric.REVENUE, period)
    team_board = leaderboard(
        reps=[row.rep for row in company_board.rows if row.rep.pk in team_ids],
        metric=BoardMetric.REVENUE,
        start=start,
        end=facts_end,
        totals_by_rep={row.rep.pk: {"revenue_won": row.value} for row in company_board.rows},
    )
    now = timezone.now()
    # One row more than shown says "there are more" without counting them all
    # (a busy rep has thousands of open to-dos; COUNT(*) OVER () read every one).
    todos = list(
        activities_for_user(user=user)
        .filter(owner=rep, due_at__isnull=False, done_at__isnull=True)
        .order_by("due_at", "pk")[: TODO_CAP + 1]
    )
    scope = Scope("rep", [rep.pk], rep=rep)
    coverage = dash.coverage_table(
        groups=[(rep.display_name, [rep])],
        lines=lines,
        goals_by_rep={rep.pk: goals},
        issued=issued,
        months=period.months(),
    )
    return render(
        request,
        "goals/dashboard_rep.html",
        {
            **_period_context(period, form),
            "rep": rep,
            "scope": scope,
            "is_self": rep.pk == user.pk,
            "cards": cards,
            "team_size": len(team_ids),
            "goals": progress,
            "goals_html": goals_html(progress, show_needed=True),
            "funnel": dash.funnel(own),
            "team_funnel": dash.funnel(team_average),
            "coverage": coverage,
            "coverage_months": coverage_html(coverage),
            "lines": lines,
            "forecast": _forecast(own["revenue_won"], pipeline, period),
            "team_rank": team_board.row_for(rep.pk),
            "team_ranked": team_board.ranked,
            "company_rank": company_board.row_for(rep.pk),
            "company_ranked": company_board.ranked,
            "todos": todos[:TODO_CAP],
            # The rep's own reminders (a manager looking sees them read-only).
            "reminder_panel": reminder_panel_for(user=rep, today=today),
            "more_todos": len(todos) > TODO_CAP,
            "now": now,
            "chart_data": {"weekly": facts.weekly, "monthly": facts.monthly},
            "base_currency": settings.BASE_CURRENCY,
            "coverage_standard": settings.ESTIMATE_COVERAGE_STANDARD,
        },
    )


def _company_board(metric: str, period: dash.Period) -> Board:
    """Every rep of the company ranked (two queries: facts by rep, the people)."""
    by_rep = dash.facts_by_rep(
        rep_ids=None, start=period.start, end=period.facts_end, columns=BOARD_COLUMNS[metric]
    )
    people = [p for p in dash.company_people(by_rep.keys()) if p.role == Role.REP]
    return leaderboard(
        reps=people,
        metric=metric,
        start=period.start,
        end=period.facts_end,
        quota_end=period.end,
        totals_by_rep=by_rep,
    )


# --- Leaderboards ------------------------------------------------------------------------


@login_required
def leaderboard_page(request: HttpRequest) -> HttpResponse:
    """One board per request: a team's (names and figures) or the company's.

    A rep never gets the company board: only their own rank in it ("7 of 100").
    A manager gets their teams' boards and, for the company, their own reps'
    ranks. An admin picks any team or the company.
    """
    user = request.user
    if user.role not in SALES_ROLES:
        return _forbid(request, _("Leaderboards are for the sales team."))
    period, form = _period(request, timezone.localdate())
    metric = request.GET.get("metric", BoardMetric.REVENUE)
    if metric not in BoardMetric.values:
        messages.error(request, _("Choose a metric from the list."))
        metric = BoardMetric.REVENUE
    teams = _team_picker(user) if user.role != Role.REP else []
    chosen = request.GET.get("board", "")
    team: Team | None = None
    show_company = False
    if user.role == Role.REP:
        team = user.team
    elif chosen == "company":
        show_company = True
    elif chosen:
        team = team_get_for_user(user=user, pk=chosen)
    elif user.role == Role.ADMIN:
        show_company = True
    else:
        team = teams[0] if teams else None
    board: Board | None = None
    company_rows: list[Any] = []
    own_company_rank = None
    company_board: Board | None = None
    facts_range = {"start": period.start, "end": period.facts_end, "quota_end": period.end}
    if show_company:
        company_board = _company_board(metric, period)
        if user.role == Role.ADMIN:
            board = company_board
        else:
            # A manager: their own reps' places in the company, not the others'.
            _teams, member_ids = managed_team_and_member_ids(user)
            company_rows = [row for row in company_board.rows if row.rep.pk in member_ids]
    elif team is not None:
        people = [p for p in dash.team_members(team.pk) if p.role == Role.REP]
        board = leaderboard(reps=people, metric=metric, **facts_range)
    if user.role == Role.REP:
        company_board = _company_board(metric, period)
        own_company_rank = company_board.row_for(user.pk)
    return render(
        request,
        "goals/leaderboard.html",
        {
            **_period_context(period, form),
            "metric": metric,
            "metrics": BoardMetric.choices,
            "metric_label": BoardMetric(metric).label,
            "is_percent": metric in (BoardMetric.ATTAINMENT, BoardMetric.CSAT),
            "is_money": metric == BoardMetric.REVENUE,
            "csat_min": CSAT_MIN_ANSWERS,
            "teams": teams,
            "team": team,
            "show_company": show_company,
            "board": board,
            "company_rows": company_rows,
            "company_ranked": company_board.ranked if company_board else 0,
            "own_company_rank": own_company_rank,
            "can_pick_company": user.role in (Role.MANAGER, Role.ADMIN),
            "base_currency": settings.BASE_CURRENCY,
        },
    )


# --- Drill-down --------------------------------------------------------------------------

DRILL_KINDS: dict[str, tuple[Any, str]] = {
    "deals-won": (gettext_lazy("Deals won"), "deals"),
    "deals-lost": (gettext_lazy("Deals lost"), "deals"),
    "leads-created": (gettext_lazy("Leads created"), "leads"),
    "leads-decided": (gettext_lazy("Leads decided (won, lost or disqualified)"), "leads"),
    "estimates-issued": (gettext_lazy("Estimates issued"), "estimates"),
    "open-estimates": (gettext_lazy("Open estimates (the weighted pipeline)"), "estimates"),
}


def _drill_scope(user: User, value: str) -> Scope | None:
    """The ``scope`` parameter resolved through the access rules (None: all the user may see).

    ``rep:<pk>``: someone the user may see (else 404); ``team:<pk>``: a team the
    user manages (404 otherwise; reps: 403, a team is not theirs to browse);
    ``company``: admins.
    """
    kind, _sep, pk = value.partition(":")
    if kind == "rep":
        rep = user_get_for_user(user=user, pk=pk)
        return Scope("rep", [rep.pk], rep=rep)
    if kind == "team":
        if user.role == Role.REP:
            raise PermissionDenied(_("Team figures are for managers and administrators."))
        team = team_get_for_user(user=user, pk=pk)
        return _team_scope(team)[0]
    if kind == "company":
        if user.role != Role.ADMIN:
            raise PermissionDenied(_("Company figures are for administrators."))
        return Scope("company", None)
    return None


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(settings.TIME_ZONE)
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def _drill_rows(kind: str, user: User, scope: Scope | None, period: dash.Period) -> QuerySet[Any]:
    start, end = period.start, period.facts_end
    owners = {"owner__in": scope.rep_ids} if scope and scope.rep_ids is not None else {}
    if kind in ("deals-won", "deals-lost"):
        status = DealStatus.WON if kind == "deals-won" else DealStatus.LOST
        return (
            deals_for_user(user=user)
            .filter(status=status, close_date__gte=start, close_date__lte=end, **owners)
            .select_related("customer", "owner", "product_line")
            .order_by("-close_date", "-pk")
        )
    if kind in ("leads-created", "leads-decided"):
        since, until = _day_bounds(start, end)
        leads = leads_for_user(user=user).filter(**owners)
        if kind == "leads-created":
            leads = leads.filter(created_at__gte=since, created_at__lt=until)
            ordering = ("-created_at", "-pk")
        else:
            leads = leads.filter(
                stage__in=CLOSED_STAGES, decided_at__gte=since, decided_at__lt=until
            )
            ordering = ("-decided_at", "-pk")
        return leads.select_related("owner").order_by(*ordering)
    estimates = estimates_for_user(user=user).filter(**owners)
    if kind == "estimates-issued":
        estimates = estimates.filter(issued_on__gte=start, issued_on__lte=end).order_by(
            "-issued_on", "-pk"
        )
    else:
        estimates = estimates.filter(
            status__in=OPEN_ESTIMATE_STATUSES,
            valid_until__gte=period.today,
            valid_until__lte=period.end,
        ).order_by("valid_until", "pk")
    return estimates.select_related("customer", "owner", "product_line", "lead")


@login_required
def drilldown(request: HttpRequest, kind: str) -> HttpResponse:
    """The rows behind a dashboard number, in the user's scope, 50 a page."""
    user = request.user
    if kind not in DRILL_KINDS:
        raise Http404
    if user.role not in SALES_ROLES:
        return _forbid(request, _("Dashboards are for the sales team."))
    try:
        scope = _drill_scope(user, request.GET.get("scope", ""))
    except PermissionDenied as refused:
        return _forbid(request, str(refused))
    period, form = _period(request, timezone.localdate())
    title, family = DRILL_KINDS[kind]
    rows = _drill_rows(kind, user, scope, period)
    page = Paginator(rows, DRILL_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        f"goals/drilldown_{family}.html",
        {
            **_period_context(period, form),
            "kind": kind,
            "title": title,
            "scope": scope,
            "page_obj": page,
            "base_currency": settings.BASE_CURRENCY,
            "now": timezone.now(),
        },
    )
