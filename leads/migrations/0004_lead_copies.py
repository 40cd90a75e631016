"""Copies of a lead's fields on its deals and estimates, kept by triggers.

- ``Deal.lead_created_at``: the dashboards' median sales cycle reads it instead of
  looking up each deal's lead.
- ``Estimate.lead_stage``: the weighted pipeline reads it instead of looking up each
  open estimate's lead (5,102 lookups for a team's quarter on the large data set).

Triggers, not ``save()``: deals and estimates are also written by ``bulk_create``,
COPY (demo data) and raw SQL, a lead's ``created_at`` can be corrected by an UPDATE,
and stages move through set-based UPDATEs (the warm-up job).

Also a partial index of the open estimates by owner: a team's pipeline.
"""

from django.db import migrations, models


def lead_copy_sql(table: str, column: str, source: str, empty: str) -> tuple[str, str]:
    """Forward and backward SQL keeping ``leads_<table>.<column>`` equal to the lead's
    ``<source>`` (``empty`` without a lead): a BEFORE trigger on the row's insert or
    change of lead, an AFTER trigger on the lead's change of ``<source>``."""
    copy, spread = f"leads_{table}_copy_lead_{source}", f"leads_lead_{source}_to_{table}s"
    forward = f"""
CREATE FUNCTION {copy}() RETURNS trigger AS $$
BEGIN
    IF NEW.lead_id IS NULL THEN
        NEW.{column} := {empty};
    ELSE
        SELECT {source} INTO NEW.{column} FROM leads_lead WHERE id = NEW.lead_id;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER {copy}
    BEFORE INSERT OR UPDATE OF lead_id, {column} ON leads_{table}
    FOR EACH ROW EXECUTE FUNCTION {copy}();

CREATE FUNCTION {spread}() RETURNS trigger AS $$
BEGIN
    UPDATE leads_{table} SET {column} = NEW.{source} WHERE lead_id = NEW.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER {spread}
    AFTER UPDATE OF {source} ON leads_lead
    FOR EACH ROW WHEN (OLD.{source} IS DISTINCT FROM NEW.{source})
    EXECUTE FUNCTION {spread}();

UPDATE leads_{table} t SET {column} = l.{source} FROM leads_lead l WHERE l.id = t.lead_id;
"""
    backward = f"""
DROP TRIGGER {spread} ON leads_lead;
DROP FUNCTION {spread}();
DROP TRIGGER {copy} ON leads_{table};
DROP FUNCTION {copy}();
"""
    return forward, backward


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0003_trim_lead_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="deal",
            name="lead_created_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="lead created"
            ),
        ),
        migrations.RunSQL(*lead_copy_sql("deal", "lead_created_at", "created_at", "NULL")),
        migrations.AddField(
            model_name="estimate",
            name="lead_stage",
            field=models.CharField(
                blank=True, default="", editable=False, max_length=20, verbose_name="lead stage"
            ),
        ),
        migrations.RunSQL(*lead_copy_sql("estimate", "lead_stage", "stage", "''")),
        migrations.AddIndex(
            model_name="estimate",
            index=models.Index(
                condition=models.Q(("status", "draft"), ("status", "sent"), _connector="OR"),
                fields=["owner", "valid_until"],
                name="estimate_open_owner",
            ),
        ),
    ]
