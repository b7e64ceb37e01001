-- 004: what the programme reports each year (yield, quality indicators, marker
-- distributions), as views any SQL client can read. Two small tables kept by each run's
-- commit make the views fast at national scale (ten years of a million babies):
--   screened           one row per baby and condition screened, with the baby's first
--                      evaluated card (babies are counted once, in the year of that card)
--   condition_markers  the first-tier markers of each condition (from the cutoff sets)
-- and, so that no view needs a window over every card or a join with every baby:
--   specimens.reported_at    when the card's calls were all final (no retest pending)
--   specimens.first_of_baby  the baby's first card
--   specimens.missing_information  the card lacks essential information (a warning)
--   recalls.cohort_year      the year the baby is counted in for the recall's condition
--   recalls.card_birth_at, card_collected_at   copied from the recall's card

-- calls.kind: 'screening' calls are the clinical record; 'reprocess' calls (a chosen
-- cutoff version over stored cards, migration 005) are kept beside them and never
-- counted here.
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

ALTER TABLE specimens ADD COLUMN reported_at TIMESTAMP;
ALTER TABLE specimens ADD COLUMN first_of_baby BOOLEAN;
ALTER TABLE specimens ADD COLUMN missing_information BOOLEAN;
UPDATE specimens SET missing_information = true WHERE specimen_id IN (
    SELECT specimen_id FROM specimen_warnings
    WHERE reason LIKE 'missing essential information%');
UPDATE specimens SET first_of_baby = (specimens.specimen_id = f.first_id)
FROM (SELECT baby_id, arg_min(specimen_id, collected_at) AS first_id FROM specimens GROUP BY 1) f
WHERE specimens.baby_id = f.baby_id;
UPDATE specimens SET reported_at = r.reported_at
FROM (
    SELECT specimen_id, max(first_final) AS reported_at
    FROM (SELECT specimen_id, condition, min(evaluated_at) AS first_final
          FROM calls WHERE call <> 'retest' GROUP BY ALL)
    GROUP BY specimen_id
) r
WHERE specimens.specimen_id = r.specimen_id;

CREATE TABLE screened (
    condition           VARCHAR NOT NULL,
    baby_id             VARCHAR NOT NULL,
    first_specimen_id   VARCHAR NOT NULL,
    first_collected_at  TIMESTAMP NOT NULL,
    year                SMALLINT NOT NULL     -- year(first_collected_at)
);
INSERT INTO screened
SELECT c.condition, c.baby_id, arg_min(c.specimen_id, s.collected_at), min(s.collected_at),
       year(min(s.collected_at))
FROM calls c JOIN specimens s USING (specimen_id)
WHERE c.call <> 'not_evaluated'
GROUP BY c.condition, c.baby_id;

ALTER TABLE recalls ADD COLUMN cohort_year SMALLINT;
ALTER TABLE recalls ADD COLUMN card_birth_at TIMESTAMP;
ALTER TABLE recalls ADD COLUMN card_collected_at TIMESTAMP;
UPDATE recalls SET card_birth_at = s.birth_at, card_collected_at = s.collected_at
FROM specimens s WHERE recalls.specimen_id = s.specimen_id;
UPDATE recalls SET cohort_year = s.year FROM screened s
WHERE recalls.condition = s.condition AND recalls.baby_id = s.baby_id;

CREATE TABLE condition_markers (
    condition VARCHAR NOT NULL,
    marker    VARCHAR NOT NULL,
    PRIMARY KEY (condition, marker)
);

-- yield per year and condition ------------------------------------------------------
-- screened: babies (not cards) whose first evaluated card for the condition was collected
-- that year; the counts below are babies of that cohort (a baby recalled twice counts once)
DROP VIEW yield_by_year;
CREATE VIEW yield_by_year AS
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

-- quality indicators (NewSTEPs / DGNS shape), one row per year and indicator -----------
-- value: a percentage (numerator / denominator) or hours (median, 90th percentile)
CREATE VIEW quality_indicators AS
WITH cards AS NOT MATERIALIZED (
    SELECT s.specimen_quality, s.reported_at, year(s.collected_at) AS year,
           coalesce(s.first_of_baby, false) AS first_card,
           coalesce(s.missing_information, false) AS missing_information,
           date_diff('minute', birth_at, collected_at) AS age_at_collection_min,
           date_diff('minute', collected_at, received_at) AS transit_min,
           date_diff('minute', birth_at, reported_at) AS age_at_report_min
    FROM specimens s
),
card_stats AS (
    SELECT year,
        count(*) AS cards,
        count(*) FILTER (WHERE first_card) AS babies,
        count(*) FILTER (WHERE specimen_quality <> 'ok') AS unsatisfactory,
        count(*) FILTER (WHERE missing_information) AS missing_info,
        count(*) FILTER (WHERE first_card) AS first_cards,
        count(*) FILTER (WHERE first_card AND age_at_collection_min <= 48 * 60) AS collected_48,
        count(*) FILTER (WHERE first_card AND age_at_collection_min <= 72 * 60) AS collected_72,
        count(*) FILTER (WHERE transit_min <= 24 * 60) AS received_24,
        count(*) FILTER (WHERE transit_min <= 72 * 60) AS received_72,
        count(*) FILTER (WHERE first_card AND reported_at IS NOT NULL) AS reported_firsts,
        count(*) FILTER (WHERE first_card AND age_at_report_min <= 168 * 60) AS reported_day7
    FROM cards GROUP BY year
),
-- medians and 90th percentiles of the intervals (exact, as quantile_cont interpolates),
-- from the frequency of each whole minute: a count per minute instead of a sort of every
-- card keeps this view under a second at ten years of a million babies
interval_freq AS (
    SELECT year, metric, v, count(*) AS c FROM (
        SELECT year, 'collection' AS metric, age_at_collection_min AS v FROM cards
        WHERE first_card
        UNION ALL SELECT year, 'transit', transit_min FROM cards
        UNION ALL SELECT year, 'report', age_at_report_min FROM cards WHERE first_card
    ) WHERE v IS NOT NULL GROUP BY ALL
),
interval_cum AS (
    SELECT year, metric, v, sum(c) OVER w - c AS before, sum(c) OVER w AS upto,
           sum(c) OVER (PARTITION BY year, metric) AS n
    FROM interval_freq WINDOW w AS (PARTITION BY year, metric ORDER BY v)
),
interval_pos AS (
    SELECT DISTINCT year, metric, q, (n - 1) * q AS h
    FROM interval_cum, (SELECT unnest([0.5, 0.9]) AS q)
),
interval_q AS (
    SELECT p.year, p.metric, p.q,
           (lo.v + (p.h - floor(p.h)) * (hi.v - lo.v)) / 60.0 AS hours
    FROM interval_pos p
    JOIN interval_cum lo ON lo.year = p.year AND lo.metric = p.metric
                        AND lo.before <= floor(p.h) AND floor(p.h) < lo.upto
    JOIN interval_cum hi ON hi.year = p.year AND hi.metric = p.metric
                        AND hi.before <= ceil(p.h) AND ceil(p.h) < hi.upto
),
cs AS (
    SELECT c.*,
        (SELECT hours FROM interval_q i WHERE i.year = c.year AND metric = 'collection'
         AND q = 0.5) AS collection_median,
        (SELECT hours FROM interval_q i WHERE i.year = c.year AND metric = 'collection'
         AND q = 0.9) AS collection_p90,
        (SELECT hours FROM interval_q i WHERE i.year = c.year AND metric = 'transit'
         AND q = 0.5) AS transit_median,
        (SELECT hours FROM interval_q i WHERE i.year = c.year AND metric = 'transit'
         AND q = 0.9) AS transit_p90,
        (SELECT hours FROM interval_q i WHERE i.year = c.year AND metric = 'report'
         AND q = 0.5) AS report_median,
        (SELECT hours FROM interval_q i WHERE i.year = c.year AND metric = 'report'
         AND q = 0.9) AS report_p90
    FROM card_stats c
),
recall_cards AS (
    SELECT action, status, outcome, created_at, baby_id, card_collected_at AS collected_at,
           year(card_collected_at) AS year,
           date_diff('minute', card_birth_at, created_at) / 60.0 AS age_at_referral_h
    FROM recalls
),
referrals AS (
    SELECT year, age_at_referral_h FROM recall_cards WHERE action = 'referral'
),
referral_stats AS (
    SELECT year, count(*) AS referrals,
           count(*) FILTER (WHERE age_at_referral_h <= 120) AS referred_day5,
           median(age_at_referral_h) AS referral_median,
           quantile_cont(age_at_referral_h, 0.9) AS referral_p90
    FROM referrals GROUP BY year
),
-- a repeat card is never a baby's first card: only those few are searched
later_cards AS (
    SELECT baby_id, max(collected_at) AS last_collected_at
    FROM specimens WHERE NOT coalesce(first_of_baby, true) GROUP BY baby_id
),
repeats AS (
    SELECT r.year, coalesce(l.last_collected_at > r.collected_at, false) AS received
    FROM recall_cards r LEFT JOIN later_cards l USING (baby_id)
    WHERE r.action = 'repeat_specimen'
),
repeat_stats AS (
    SELECT year, count(*) AS requested, count(*) FILTER (WHERE received) AS received
    FROM repeats GROUP BY year
),
follow_up AS (
    SELECT year,
           count(*) AS recalls,
           count(*) FILTER (WHERE status = 'open'
                            AND created_at < current_timestamp::TIMESTAMP - INTERVAL 365 DAY)
               AS open_past_12_months,
           count(*) FILTER (WHERE outcome = 'lost_to_follow_up') AS lost_to_follow_up
    FROM recall_cards GROUP BY ALL
),
long AS (
    SELECT c.year, 1 AS seq, 'cards_received' AS indicator, c.cards::DOUBLE AS value,
           c.cards AS numerator, NULL::BIGINT AS denominator, 'cards' AS unit
    FROM cs c
    UNION ALL SELECT year, 2, 'babies_with_a_card', babies, babies, NULL, 'babies' FROM cs
    UNION ALL SELECT year, 3, 'unsatisfactory_specimens_pct', 100.0 * unsatisfactory / cards,
                     unsatisfactory, cards, '%' FROM cs
    UNION ALL SELECT year, 4, 'missing_essential_information_pct', 100.0 * missing_info / cards,
                     missing_info, cards, '%' FROM cs
    UNION ALL SELECT year, 5, 'collected_by_48h_pct', 100.0 * collected_48 / nullif(first_cards, 0),
                     collected_48, first_cards, '%' FROM cs
    UNION ALL SELECT year, 6, 'collected_by_72h_pct', 100.0 * collected_72 / nullif(first_cards, 0),
                     collected_72, first_cards, '%' FROM cs
    UNION ALL SELECT year, 7, 'birth_to_collection_median_h', collection_median, NULL, first_cards,
                     'h' FROM cs
    UNION ALL SELECT year, 8, 'birth_to_collection_p90_h', collection_p90, NULL, first_cards, 'h'
              FROM cs
    UNION ALL SELECT year, 9, 'received_within_24h_pct', 100.0 * received_24 / cards, received_24,
                     cards, '%' FROM cs
    UNION ALL SELECT year, 10, 'received_within_72h_pct', 100.0 * received_72 / cards, received_72,
                     cards, '%' FROM cs
    UNION ALL SELECT year, 11, 'collection_to_receipt_median_h', transit_median, NULL, cards, 'h'
              FROM cs
    UNION ALL SELECT year, 12, 'collection_to_receipt_p90_h', transit_p90, NULL, cards, 'h'
              FROM cs
    UNION ALL SELECT year, 13, 'birth_to_report_median_h', report_median, NULL, reported_firsts,
                     'h' FROM cs
    UNION ALL SELECT year, 14, 'birth_to_report_p90_h', report_p90, NULL, reported_firsts, 'h'
              FROM cs
    UNION ALL SELECT year, 15, 'all_results_by_day7_pct',
                     100.0 * reported_day7 / nullif(first_cards, 0), reported_day7, first_cards,
                     '%' FROM cs
    UNION ALL SELECT year, 16, 'time_critical_referred_by_day5_pct',
                     100.0 * referred_day5 / nullif(referrals, 0), referred_day5, referrals, '%'
              FROM referral_stats
    UNION ALL SELECT year, 17, 'age_at_referral_median_h', referral_median, NULL, referrals, 'h'
              FROM referral_stats
    UNION ALL SELECT year, 18, 'age_at_referral_p90_h', referral_p90, NULL, referrals, 'h'
              FROM referral_stats
    UNION ALL SELECT year, 19, 'repeat_cards_requested', requested, requested, NULL, 'recalls'
              FROM repeat_stats
    UNION ALL SELECT year, 20, 'repeat_cards_received_pct', 100.0 * received / nullif(requested, 0),
                     received, requested, '%' FROM repeat_stats
    UNION ALL SELECT year, 21, 'recalls_open_past_12_months', open_past_12_months,
                     open_past_12_months, recalls, 'recalls' FROM follow_up
    UNION ALL SELECT year, 22, 'recalls_lost_to_follow_up', lost_to_follow_up, lost_to_follow_up,
                     recalls, 'recalls' FROM follow_up
)
SELECT year, seq, indicator, round(value, 2) AS value, numerator, denominator, unit
FROM long ORDER BY year, seq;

CREATE VIEW unsatisfactory_by_reason AS
WITH counts AS (
    SELECT year(collected_at) AS year, specimen_quality AS reason, count(*) AS cards
    FROM specimens GROUP BY ALL
)
SELECT year, reason, cards,
       round(100.0 * cards / sum(cards) OVER (PARTITION BY year), 3) AS pct
FROM counts ORDER BY year, reason;

-- first-punch marker values of screen-negative first cards, percentiles per month ---------
-- Kept as a table, recomputed by each run for the months its cards fall in (a month of a
-- large programme holds ~100,000 babies: computing every month at every read would take
-- seconds). The macro is the one definition, used by the backfill here and by the runs.
CREATE MACRO marker_month_stats(m_from, m_to) AS TABLE
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

CREATE TABLE marker_month_percentiles (
    month DATE NOT NULL, condition VARCHAR NOT NULL, marker VARCHAR NOT NULL,
    babies BIGINT NOT NULL, p01 DOUBLE, p05 DOUBLE, p50 DOUBLE, p95 DOUBLE, p99 DOUBLE,
    p995 DOUBLE,
    PRIMARY KEY (month, condition, marker)
);
INSERT INTO marker_month_percentiles
SELECT * FROM marker_month_stats(DATE '1900-01-01', DATE '2999-12-01');

CREATE VIEW marker_percentiles AS
SELECT * FROM marker_month_percentiles ORDER BY month, condition, marker;
