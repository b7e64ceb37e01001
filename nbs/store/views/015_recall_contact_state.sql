-- Per recall: how often and when it was first and last contacted, and the next action of
-- its latest contact (by the time the contact happened, then the order it was recorded).
-- A contact that plans nothing more clears the next action; a letter recorded as sent
-- (letter not null) leaves it as it was: sending the letter is seldom the whole of it.
-- arg_max_null: a latest contact without a next action gives NULL (arg_max would skip it).
CREATE OR REPLACE VIEW recall_contact_state AS
SELECT recall_id,
       count(*) AS contacts,
       min(contacted_at) AS first_contact_at,
       max(contacted_at) AS last_contact_at,
       arg_max_null(next_action, (contacted_at, seq)) FILTER (WHERE letter IS NULL) AS next_action,
       arg_max_null(next_due, (contacted_at, seq)) FILTER (WHERE letter IS NULL) AS next_due
FROM recall_contacts
GROUP BY recall_id;
