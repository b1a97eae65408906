-- Push each user's NPS score and last quiz from the digital-adoption
-- analytics report into existing Contacts, matched by email. Updates only:
-- UPDATE never creates records. (USE-CASES.md section 1.)
-- schedule: 0 9 * * *
-- timezone: UTC
UPDATE sandbox.contact
SET    wm_nps_score__c = r.nps_score, wm_quiz_date__c = r.quiz_date
FROM   reports.nps_score r
WHERE  lower(contact.email) = lower(r.account_email);
