-- Per reprocessing run, each re-evaluated call beside the card's screening call.
CREATE OR REPLACE VIEW reprocess_comparison AS
SELECT n.run_id, n.specimen_id, n.baby_id, n.condition,
       o.call AS screening_call, o.rule_version AS screening_rule_version,
       n.call AS reprocessed_call, n.rule_version AS reprocessed_rule_version,
       o.call IS DISTINCT FROM n.call AS changed,
       n.reason AS reprocessed_reason, n.evaluated_at
FROM calls n
LEFT JOIN screening_calls o USING (specimen_id, condition)
WHERE n.kind = 'reprocess';
