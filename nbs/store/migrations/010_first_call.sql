-- 010: each first card's current screening call is kept beside it in `screened`
-- (`first_call`), so the monthly marker percentiles no longer look it up among all calls:
-- that join and grouping of seven million calls was half of the statistics' cost at a
-- million cards (3.4 s -> 1.6 s, the same figures). The run keeps `first_call` current:
-- its own call for a card new to the database, the latest screening call for a card
-- evaluated again. Reprocessing calls (kind 'reprocess') never count, as before.

ALTER TABLE screened ADD COLUMN first_call VARCHAR;

UPDATE screened SET first_call = l.call
FROM (
    SELECT specimen_id, condition, arg_max(call, run_seq) AS call
    FROM calls WHERE kind = 'screening'
    GROUP BY specimen_id, condition
) l
WHERE screened.first_specimen_id = l.specimen_id AND screened.condition = l.condition;

CREATE OR REPLACE MACRO marker_month_stats(m_from, m_to) AS TABLE
WITH negative AS (
    SELECT date_trunc('month', first_collected_at)::DATE AS month, condition,
           first_specimen_id AS specimen_id
    FROM screened
    WHERE first_collected_at >= m_from
      AND first_collected_at < m_to::TIMESTAMP + INTERVAL 1 MONTH
      AND first_call = 'negative'
),
q AS (
    SELECT n.month, n.condition, m.marker, count(*) AS babies,
           quantile_cont(r.value, [0.01, 0.05, 0.50, 0.95, 0.99, 0.995]) AS q
    FROM negative n
    JOIN condition_markers m ON m.condition = n.condition
    JOIN results r ON r.specimen_id = n.specimen_id AND r.analyte = m.marker
    WHERE r.replicate = 1 AND r.value IS NOT NULL
    GROUP BY ALL
)
SELECT month, condition, marker, babies,
       round(q[1], 4) AS p01, round(q[2], 4) AS p05, round(q[3], 4) AS p50,
       round(q[4], 4) AS p95, round(q[5], 4) AS p99, round(q[6], 4) AS p995
FROM q
;
