"""Deal.lead_created_at: a copy of the lead's creation time, kept by triggers.

The dashboards' median sales cycle reads it instead of looking up each deal's
lead. Triggers, not ``save()``, keep it: deals are also written by
``bulk_create``, COPY (demo data) and raw SQL, and a lead's ``created_at`` can
be corrected by an UPDATE.
"""

from django.db import migrations, models

FORWARD = """
CREATE FUNCTION leads_deal_copy_lead_created() RETURNS trigger AS $$
BEGIN
    IF NEW.lead_id IS NULL THEN
        NEW.lead_created_at := NULL;
    ELSE
        SELECT created_at INTO NEW.lead_created_at FROM leads_lead WHERE id = NEW.lead_id;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER leads_deal_lead_created
    BEFORE INSERT OR UPDATE OF lead_id, lead_created_at ON leads_deal
    FOR EACH ROW EXECUTE FUNCTION leads_deal_copy_lead_created();

CREATE FUNCTION leads_lead_created_to_deals() RETURNS trigger AS $$
BEGIN
    UPDATE leads_deal SET lead_created_at = NEW.created_at WHERE lead_id = NEW.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER leads_lead_created_to_deals
    AFTER UPDATE OF created_at ON leads_lead
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION leads_lead_created_to_deals();

UPDATE leads_deal d SET lead_created_at = l.created_at FROM leads_lead l WHERE l.id = d.lead_id;
"""

BACKWARD = """
DROP TRIGGER leads_lead_created_to_deals ON leads_lead;
DROP FUNCTION leads_lead_created_to_deals();
DROP TRIGGER leads_deal_lead_created ON leads_deal;
DROP FUNCTION leads_deal_copy_lead_created();
"""


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
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
