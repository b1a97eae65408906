-- Customer-success meetings as Events on the Contact with the activity's
-- email (USE-CASES.md section 3). An Event needs an end: the mapping
-- supplies DurationInMinutes (Salesforce derives EndDateTime from it).
-- Upserted by the activity's id, so a rerun creates nothing twice and a
-- moved or longer meeting updates its Event.
-- schedule: 0 */4 * * *
-- timezone: UTC
INSERT INTO sandbox.event (external_activity_id__c, whoid, subject, startdatetime, durationinminutes, description)
SELECT 'cs-' || a.activity_id, c.id, a.subject, CAST(a.occurred_at AS TIMESTAMP), a.duration_minutes, a.notes
FROM   reports.timeline_activities a
JOIN   sandbox.contact c ON lower(c.email) = lower(a.contact_email)
WHERE  a.kind = 'meeting'
ON CONFLICT (external_activity_id__c) DO UPDATE
SET    whoid = EXCLUDED.whoid, subject = EXCLUDED.subject, startdatetime = EXCLUDED.startdatetime,
       durationinminutes = EXCLUDED.durationinminutes, description = EXCLUDED.description;
