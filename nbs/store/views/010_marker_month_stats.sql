-- Percentiles of the first-punch marker values of screen-negative first cards per
-- month, condition and marker: the one definition, used by each run's commit to keep
-- marker_month_percentiles for the months its cards fall in.
CREATE OR REPLACE MACRO marker_month_stats(m_from, m_to) AS TABLE
WITH negative AS (
    SELECT date_trunc('month', first_collected_at)::DATE AS month, condition,
           first_specimen_id AS specimen_id
    FROM screened
    WHERE first_collected_at >= m_from
      AND first_collected_at < m_to::TIMESTAMP + INTERVAL 1 MONTH
      AND first_call = 'negative'
),
-- materialised: otherwise the optimiser folds it back into the order above
wanted AS MATERIALIZED (
    SELECT n.month, n.condition, m.marker, n.specimen_id
    FROM negative n JOIN condition_markers m ON m.condition = n.condition
),
q AS (
    SELECT w.month, w.condition, w.marker, count(*) AS babies,
           quantile_cont(r.value, [0.01, 0.05, 0.50, 0.95, 0.99, 0.995]) AS q
    FROM wanted w
    JOIN results r ON r.specimen_id = w.specimen_id AND r.analyte = w.marker
    WHERE r.replicate = 1 AND r.value IS NOT NULL
    GROUP BY ALL
)
SELECT month, condition, marker, babies,
       round(q[1], 4) AS p01, round(q[2], 4) AS p05, round(q[3], 4) AS p50,
       round(q[4], 4) AS p95, round(q[5], 4) AS p99, round(q[6], 4) AS p995
FROM q;
