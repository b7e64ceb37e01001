-- 005: reprocessing runs. A reprocessing run re-evaluates stored cards under a chosen
-- cutoff version and writes new calls (kind = 'reprocess', see 004) beside the old ones,
-- which are kept. The clinical record (screening_calls, recalls, statistics) reads
-- screening calls only; reprocess_comparison shows, per reprocessing run, what the other
-- version decides.

CREATE VIEW reprocess_comparison AS
SELECT n.run_id, n.specimen_id, n.baby_id, n.condition,
       o.call AS screening_call, o.rule_version AS screening_rule_version,
       n.call AS reprocessed_call, n.rule_version AS reprocessed_rule_version,
       o.call IS DISTINCT FROM n.call AS changed,
       n.reason AS reprocessed_reason, n.evaluated_at
FROM calls n
LEFT JOIN screening_calls o USING (specimen_id, condition)
WHERE n.kind = 'reprocess';
