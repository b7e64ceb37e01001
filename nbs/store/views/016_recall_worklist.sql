-- The recall list as a coordinator works it: each recall with its card's birth and
-- submitting unit, and its contact state (recall_contact_state).
CREATE OR REPLACE VIEW recall_worklist AS
SELECT r.*, s.birth_at, s.submitter, c.contacts, c.first_contact_at, c.last_contact_at,
       c.next_action, c.next_due
FROM recall_list r
LEFT JOIN specimens s USING (specimen_id)
LEFT JOIN recall_contact_state c USING (recall_id);
