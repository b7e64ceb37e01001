-- The recall list as the contract names its columns, with the coordinators' lifecycle.
-- held_by: the card's plates that are still held (comma-separated; NULL when none). Nothing
-- about a card leaves the laboratory while one of its plates awaits a supervisor's decision.
CREATE OR REPLACE VIEW recall_list AS
SELECT r.recall_id, r.baby_id, r.specimen_id, r.condition, r.action, r.urgency, r.reason,
       r.rule_version, r.created_at, r.status, r.outcome, r.closed_at, r.closed_by, r.run_id,
       r.stage, r.answered_by_specimen_id, r.note, h.held_by
FROM recalls r
LEFT JOIN (
    SELECT w.specimen_id, string_agg(DISTINCT w.plate_id, ', ' ORDER BY w.plate_id) AS held_by
    FROM raw_result_rows w
    SEMI JOIN (SELECT plate_id FROM plates WHERE status = 'held') p USING (plate_id)
    GROUP BY w.specimen_id
) h USING (specimen_id);
