-- Each card's current screening call per condition: the latest screening run's
-- (reprocessing calls, kind 'reprocess', are kept beside them and never shown here).
CREATE OR REPLACE VIEW screening_calls AS
SELECT specimen_id, baby_id, condition, call, reason, rule_version, evaluated_at,
       urgency, basis, explanation, run_id
FROM (
    SELECT *, row_number() OVER (PARTITION BY specimen_id, condition
                                 ORDER BY run_seq DESC, evaluated_at DESC) AS rn
    FROM calls WHERE kind = 'screening'
) WHERE rn = 1;
