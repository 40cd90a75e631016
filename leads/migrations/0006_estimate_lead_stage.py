"""Estimate.lead_stage: a copy of the lead's stage, kept by triggers.

The weighted pipeline reads it instead of looking up each open estimate's lead
(5,102 lookups for a team's quarter on the large data set). Triggers, not
``save()``: estimates are also written by ``bulk_create``, COPY (demo data) and
raw SQL, and stages move through set-based UPDATEs (the warm-up job).
"""

from django.db import migrations, models

FORWARD = """
CREATE FUNCTION leads_estimate_copy_lead_stage() RETURNS trigger AS $$
BEGIN
    IF NEW.lead_id IS NULL THEN
        NEW.lead_stage := '';
    ELSE
        SELECT stage INTO NEW.lead_stage FROM leads_lead WHERE id = NEW.lead_id;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER leads_estimate_lead_stage
    BEFORE INSERT OR UPDATE OF lead_id, lead_stage ON leads_estimate
    FOR EACH ROW EXECUTE FUNCTION leads_estimate_copy_lead_stage();

CREATE FUNCTION leads_lead_stage_to_estimates() RETURNS trigger AS $$
BEGIN
    UPDATE leads_estimate SET lead_stage = NEW.stage WHERE lead_id = NEW.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER leads_lead_stage_to_estimates
    AFTER UPDATE OF stage ON leads_lead
    FOR EACH ROW WHEN (OLD.stage IS DISTINCT FROM NEW.stage)
    EXECUTE FUNCTION leads_lead_stage_to_estimates();

UPDATE leads_estimate e SET lead_stage = l.stage FROM leads_lead l WHERE l.id = e.lead_id;
"""

BACKWARD = """
DROP TRIGGER leads_lead_stage_to_estimates ON leads_lead;
DROP FUNCTION leads_lead_stage_to_estimates();
DROP TRIGGER leads_estimate_lead_stage ON leads_estimate;
DROP FUNCTION leads_estimate_copy_lead_stage();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0005_estimate_open_owner"),
    ]

    operations = [
        migrations.AddField(
            model_name="estimate",
            name="lead_stage",
            field=models.CharField(
                blank=True, default="", editable=False, max_length=20, verbose_name="lead stage"
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
