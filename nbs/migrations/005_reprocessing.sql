-- 005: reprocessing runs. A reprocessing run re-evaluates stored cards under a chosen
-- cutoff version and writes new calls (kind = 'reprocess') beside the old ones, which are
-- kept. The clinical record (screening_calls, recalls, statistics) reads screening calls
-- only; reprocess_comparison shows, per reprocessing run, what the other version decides.

ALTER TABLE calls ADD COLUMN kind VARCHAR DEFAULT 'screening';
UPDATE calls SET kind = 'screening' WHERE kind IS NULL;

CREATE OR REPLACE VIEW screening_calls AS
SELECT specimen_id, baby_id, condition, call, reason, rule_version, evaluated_at,
       urgency, basis, explanation, run_id
FROM (
    SELECT *, row_number() OVER (PARTITION BY specimen_id, condition
                                 ORDER BY run_seq DESC, evaluated_at DESC) AS rn
    FROM calls WHERE kind = 'screening'
) WHERE rn = 1;

CREATE OR REPLACE MACRO marker_month_stats(m_from, m_to) AS TABLE
WITH firsts AS (
    SELECT condition, first_specimen_id AS specimen_id,
           date_trunc('month', first_collected_at)::DATE AS month
    FROM screened
    WHERE first_collected_at >= m_from
      AND first_collected_at < m_to::TIMESTAMP + INTERVAL 1 MONTH
),
latest AS (
    SELECT c.specimen_id, c.condition, c.call
    FROM calls c SEMI JOIN firsts f USING (specimen_id, condition)
    WHERE c.kind = 'screening'
    QUALIFY row_number() OVER (PARTITION BY c.specimen_id, c.condition
                               ORDER BY c.run_seq DESC, c.evaluated_at DESC) = 1
)
SELECT f.month, f.condition, m.marker, count(*) AS babies,
       round(quantile_cont(r.value, 0.01), 4) AS p01,
       round(quantile_cont(r.value, 0.05), 4) AS p05,
       round(quantile_cont(r.value, 0.50), 4) AS p50,
       round(quantile_cont(r.value, 0.95), 4) AS p95,
       round(quantile_cont(r.value, 0.99), 4) AS p99,
       round(quantile_cont(r.value, 0.995), 4) AS p995
FROM firsts f
JOIN latest l ON l.specimen_id = f.specimen_id AND l.condition = f.condition
JOIN condition_markers m ON m.condition = f.condition
JOIN results r ON r.specimen_id = f.specimen_id AND r.analyte = m.marker
                AND r.replicate = 1 AND r.value IS NOT NULL
WHERE l.call = 'negative'
GROUP BY ALL;

CREATE VIEW reprocess_comparison AS
SELECT n.run_id, n.specimen_id, n.baby_id, n.condition,
       o.call AS screening_call, o.rule_version AS screening_rule_version,
       n.call AS reprocessed_call, n.rule_version AS reprocessed_rule_version,
       o.call IS DISTINCT FROM n.call AS changed,
       n.reason AS reprocessed_reason, n.evaluated_at
FROM calls n
LEFT JOIN screening_calls o USING (specimen_id, condition)
WHERE n.kind = 'reprocess';
