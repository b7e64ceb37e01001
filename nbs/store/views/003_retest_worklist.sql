-- The laboratory's retests, open and done.
CREATE OR REPLACE VIEW retest_worklist AS
SELECT specimen_id, condition, reason, created_at, status, priority, rule_version, done_at
FROM retests;
