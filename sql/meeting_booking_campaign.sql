-- Add whoever booked a meeting in the scheduling tool to a Campaign, as a
-- CampaignMember (USE-CASES.md section 2, "campaign assignment").
--
-- Campaign: one, by its Id (the text in its Salesforce URL): here the
--           sandbox's "Spring Webinar Series". Change it in `campaign`.
-- Who:      the same as sql/meeting_booking_tasks.sql: the Lead, else the
--           Contact, with the booker's email (case-insensitive); of
--           several, the most recently modified wins. A booker found
--           nowhere is not added. A job is one statement, so the `who`
--           query stands in both files: change one, change the other.
-- Status:   Responded: the person booked a meeting.
-- A Lead or Contact is a member of a campaign once: Salesforce refuses a
-- second CampaignMember (DUPLICATE_VALUE, "Already a campaign member."),
-- and CampaignMember has no external ID to upsert by, so people already
-- in the campaign are left out (the LEFT JOIN ... IS NULL), and a booker
-- of several meetings counts once (DISTINCT). A rerun creates nothing.
-- Bookings younger than 10 minutes wait for the next run: the seed's
-- fixed lag, so that another tool can create the Lead first. It is
-- counted from each booking, so it is in the WHERE.
-- schedule: */10 * * * *
-- timezone: UTC
INSERT INTO sandbox.campaignmember (campaignid, leadid, contactid, status)
WITH campaign AS (
    SELECT '7018Z0000004C9dQAE' AS id
),
people AS (
    SELECT lower(l.email) AS email, l.id, 1 AS search_order, l.lastmodifieddate AS modified
    FROM   reports.meeting_bookings b JOIN sandbox.lead l ON lower(l.email) = lower(b.booker_email)
    UNION ALL
    SELECT lower(c.email), c.id, 2, c.lastmodifieddate
    FROM   reports.meeting_bookings b JOIN sandbox.contact c ON lower(c.email) = lower(b.booker_email)
),
who AS (
    SELECT email, id, search_order
    FROM  (SELECT email, id, search_order,
                  row_number() OVER (PARTITION BY email ORDER BY search_order, modified DESC) AS n
           FROM people) ranked
    WHERE  n = 1
)
SELECT DISTINCT
       campaign.id,
       CASE WHEN who.search_order = 1 THEN who.id END,
       CASE WHEN who.search_order = 2 THEN who.id END,
       'Responded'
FROM   reports.meeting_bookings b
JOIN   who ON who.email = lower(b.booker_email)
CROSS JOIN campaign
LEFT JOIN sandbox.campaignmember m
       ON m.campaignid = campaign.id AND coalesce(m.leadid, m.contactid) = who.id
WHERE  CAST(b.booked_at AS TIMESTAMP) <= now() - INTERVAL '10 minutes'
  AND  m.id IS NULL;
