-- Yield per year and condition. screened: babies (not cards) whose first evaluated
-- card for the condition was collected that year; the counts below are babies of that
-- cohort (a baby recalled twice counts once).
CREATE OR REPLACE VIEW yield_by_year AS
WITH screened_n AS (
    SELECT year, condition, count(*) AS screened FROM screened GROUP BY ALL
),
baby_recalls AS (
    SELECT cohort_year AS year, condition, baby_id,
           bool_or(action = 'repeat_specimen') AS repeat_requested,
           bool_or(action = 'referral') AS referred,
           bool_or(action = 'referral' AND outcome = 'confirmed') AS confirmed,
           bool_or(action = 'referral' AND outcome = 'false_positive') AS false_positive
    FROM recalls WHERE condition IS NOT NULL AND cohort_year IS NOT NULL
    GROUP BY ALL
),
recall_n AS (
    SELECT year, condition,
           count(*) FILTER (WHERE repeat_requested) AS repeat_requests,
           count(*) FILTER (WHERE referred) AS referrals,
           count(*) FILTER (WHERE confirmed) AS confirmed,
           count(*) FILTER (WHERE false_positive AND NOT confirmed) AS false_positives
    FROM baby_recalls GROUP BY ALL
)
SELECT s.year::INTEGER AS year, s.condition, s.screened,
       coalesce(r.repeat_requests, 0) AS repeat_requests,
       coalesce(r.referrals, 0) AS referrals,
       coalesce(r.confirmed, 0) AS confirmed,
       coalesce(r.false_positives, 0) AS false_positives,
       round(100.0 * coalesce(r.referrals, 0) / s.screened, 4) AS recall_rate_pct,
       CASE WHEN coalesce(r.referrals, 0) = 0 THEN NULL
            ELSE round(100.0 * r.confirmed / r.referrals, 2) END AS ppv_pct,
       round(100000.0 * coalesce(r.confirmed, 0) / s.screened, 2) AS incidence_per_100k
FROM screened_n s LEFT JOIN recall_n r USING (year, condition)
ORDER BY s.year, s.condition;
