"""goals_weeklyrepfact: the daily facts summed by week inside a month, rep and product line.

A materialized view, refreshed (CONCURRENTLY: readers never wait, only changed
rows are written) by the KPI job after every run. A row covers the days of one
ISO week that fall in one month, so whole weeks and whole months are both sums
of rows: a dashboard's quarter or year reads about a tenth of the rows the daily
facts hold. Territory is left out (the dashboards do not split by it).

The columns are the daily facts' (``goals.kpis.FACT_COLUMNS``), written out here
as they are today: a migration that adds, drops or retypes a fact column must
drop and re-create this view.
"""

from django.db import migrations

CREATE = """
CREATE MATERIALIZED VIEW goals_weeklyrepfact AS
SELECT
    date_trunc('month', day::timestamp)::date AS month,
    date_trunc('week', day::timestamp)::date AS week,
    rep_id,
    product_line_id,
    SUM(revenue_won) AS revenue_won,
    SUM(estimate_value_issued) AS estimate_value_issued,
    SUM(deals_won)::integer AS deals_won,
    SUM(deals_lost)::integer AS deals_lost,
    SUM(cycle_days_sum)::integer AS cycle_days_sum,
    SUM(cycle_count)::integer AS cycle_count,
    SUM(leads_created)::integer AS leads_created,
    SUM(leads_created_reached_mql)::integer AS leads_created_reached_mql,
    SUM(leads_created_reached_sql)::integer AS leads_created_reached_sql,
    SUM(leads_created_won)::integer AS leads_created_won,
    SUM(leads_decided)::integer AS leads_decided,
    SUM(leads_decided_won)::integer AS leads_decided_won,
    SUM(leads_reached_mql)::integer AS leads_reached_mql,
    SUM(leads_reached_sql)::integer AS leads_reached_sql,
    SUM(estimates_issued)::integer AS estimates_issued,
    SUM(act_call)::integer AS act_call,
    SUM(act_email)::integer AS act_email,
    SUM(act_meeting)::integer AS act_meeting,
    SUM(act_demo)::integer AS act_demo,
    SUM(act_sales_meeting)::integer AS act_sales_meeting,
    SUM(act_event)::integer AS act_event,
    SUM(act_follow_up)::integer AS act_follow_up,
    SUM(act_note)::integer AS act_note,
    SUM(csat_answered)::integer AS csat_answered,
    SUM(csat_satisfied)::integer AS csat_satisfied,
    SUM(nps_answered)::integer AS nps_answered,
    SUM(nps_promoters)::integer AS nps_promoters,
    SUM(nps_detractors)::integer AS nps_detractors,
    SUM(surveys_sent)::integer AS surveys_sent,
    SUM(surveys_answered)::integer AS surveys_answered
FROM goals_dailyrepfact
GROUP BY 1, 2, 3, 4;

CREATE UNIQUE INDEX weeklyrepfact_key
    ON goals_weeklyrepfact (week, month, rep_id, product_line_id) NULLS NOT DISTINCT;
CREATE INDEX weeklyrepfact_rep_week ON goals_weeklyrepfact (rep_id, week);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("goals", "0002_reviews_forecasts_awards"),
    ]

    operations = [
        migrations.RunSQL(CREATE, "DROP MATERIALIZED VIEW goals_weeklyrepfact"),
    ]
