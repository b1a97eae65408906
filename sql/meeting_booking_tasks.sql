-- A follow-up Task for every meeting booked in the scheduling tool
-- (USE-CASES.md section 2), upserted by the booking's id so a rerun never
-- creates a Task twice and a rescheduled meeting updates its Task.
--
-- Who:    the Lead, else the Contact, with the booker's email (case-
--         insensitive); of several, the most recently modified wins.
-- Owner:  the active User whose email is the organiser's, else the owner
--         of the matched Lead/Contact. No Task when neither is found.
-- Status and Priority are left out, so the org's defaults apply.
-- Bookings younger than 10 minutes wait for the next run: another tool
-- may still be creating the Lead. This is the seed's lag of 0 to 10
-- minutes, counted from each booking, so it is in the WHERE (change the
-- interval there); a delay header would only hold back the whole run.
-- The seed's limit of one manual run every 2 hours belongs to its field
-- sync, not to Task creation, so this job has no min_interval.
-- schedule: */10 * * * *
-- timezone: UTC
INSERT INTO sandbox.task (external_activity_id__c, whoid, ownerid, subject, description, activitydate)
WITH people AS (
    SELECT lower(l.email) AS email, l.id, l.ownerid, 1 AS search_order, l.lastmodifieddate AS modified
    FROM   reports.meeting_bookings b JOIN sandbox.lead l ON lower(l.email) = lower(b.booker_email)
    UNION ALL
    SELECT lower(c.email), c.id, c.ownerid, 2, c.lastmodifieddate
    FROM   reports.meeting_bookings b JOIN sandbox.contact c ON lower(c.email) = lower(b.booker_email)
),
who AS (
    SELECT email, id, ownerid
    FROM  (SELECT email, id, ownerid,
                  row_number() OVER (PARTITION BY email ORDER BY search_order, modified DESC) AS n
           FROM people) ranked
    WHERE  n = 1
)
SELECT 'booking-' || b.booking_id,
       who.id,
       coalesce(organiser.id, who.ownerid),
       b.subject,
       b.notes,
       CAST(b.meeting_start AS DATE)
FROM   reports.meeting_bookings b
LEFT JOIN who ON who.email = lower(b.booker_email)
LEFT JOIN sandbox."user" organiser
       ON lower(organiser.email) = lower(b.organiser_email) AND organiser.isactive
WHERE  CAST(b.booked_at AS TIMESTAMP) <= now() - INTERVAL '10 minutes'
  AND  (who.id IS NOT NULL OR organiser.id IS NOT NULL)
ON CONFLICT (external_activity_id__c) DO UPDATE
SET    whoid = EXCLUDED.whoid, ownerid = EXCLUDED.ownerid, subject = EXCLUDED.subject,
       description = EXCLUDED.description, activitydate = EXCLUDED.activitydate;
