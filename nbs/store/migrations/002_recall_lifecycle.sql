-- 002: the coordinators' recall lifecycle.
-- `stage` is the working state (open -> contacted -> sample_requested / referred -> closed);
-- the contract's `status` stays open | closed and is derived from it. Every change is an
-- append-only row of recall_events (who, when, field, old -> new, note).

ALTER TABLE recalls ADD COLUMN stage VARCHAR DEFAULT 'open';
UPDATE recalls SET stage = CASE WHEN status = 'closed' THEN 'closed' ELSE 'open' END;
ALTER TABLE recalls ADD COLUMN answered_by_specimen_id VARCHAR;
ALTER TABLE recalls ADD COLUMN note VARCHAR;
ALTER TABLE recall_events ADD COLUMN event_seq BIGINT;

CREATE SEQUENCE recall_event_seq START 1;

DROP VIEW recall_list;
CREATE VIEW recall_list AS
SELECT recall_id, baby_id, specimen_id, condition, action, urgency, reason, rule_version,
       created_at, status, outcome, closed_at, closed_by, run_id, stage,
       answered_by_specimen_id, note
FROM recalls;
