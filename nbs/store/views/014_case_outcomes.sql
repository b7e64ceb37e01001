-- The latest recorded outcome per baby and condition (case_outcome_events keeps every one).
CREATE OR REPLACE VIEW case_outcomes AS
SELECT baby_id, condition, kind, specimen_id, recall_id, diagnosis_code, diagnosed_at,
       treatment_started_at, ruled_out_at, recorded_at, recorded_by, note
FROM case_outcome_events
QUALIFY row_number() OVER (PARTITION BY baby_id, condition ORDER BY seq DESC) = 1;
