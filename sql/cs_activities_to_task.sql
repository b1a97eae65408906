-- Customer-success timeline activities (calls, emails, notes) as completed
-- Tasks on the Contact with the activity's email (USE-CASES.md section 3).
-- Upserted by the activity's id: the Task's External_Activity_Id__c ties
-- it to the activity, so a rerun creates nothing twice and an edited
-- activity updates its Task. Meetings go to Events (cs_meetings_to_event).
-- schedule: 0 */4 * * *
-- timezone: UTC
INSERT INTO sandbox.task (external_activity_id__c, whoid, subject, activitydate, status, priority, description)
SELECT 'cs-' || a.activity_id, c.id, a.subject, CAST(a.occurred_at AS DATE), 'Completed', 'Normal', a.notes
FROM   reports.timeline_activities a
JOIN   sandbox.contact c ON lower(c.email) = lower(a.contact_email)
WHERE  a.kind <> 'meeting'
ON CONFLICT (external_activity_id__c) DO UPDATE
SET    whoid = EXCLUDED.whoid, subject = EXCLUDED.subject, activitydate = EXCLUDED.activitydate,
       description = EXCLUDED.description;
