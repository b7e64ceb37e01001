-- The recall list as the contract names its columns, with the coordinators' lifecycle.
CREATE OR REPLACE VIEW recall_list AS
SELECT recall_id, baby_id, specimen_id, condition, action, urgency, reason, rule_version,
       created_at, status, outcome, closed_at, closed_by, run_id, stage,
       answered_by_specimen_id, note
FROM recalls;
