-- 004: what the programme reports each year (yield, quality indicators, marker
-- distributions), as views any SQL client can read. Two small tables kept by each run's
-- commit make the views fast at national scale (ten years of a million babies):
--   screened           one row per baby and condition screened, with the baby's first
--                      evaluated card (babies are counted once, in the year of that card)
--   condition_markers  the first-tier markers of each condition (from the cutoff sets)
-- and specimens.reported_at, when the card's calls were all final (no retest pending).

ALTER TABLE specimens ADD COLUMN reported_at TIMESTAMP;
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
    first_collected_at  TIMESTAMP NOT NULL
);
INSERT INTO screened
SELECT c.condition, c.baby_id, arg_min(c.specimen_id, s.collected_at), min(s.collected_at)
FROM calls c JOIN specimens s USING (specimen_id)
WHERE c.call <> 'not_evaluated'
GROUP BY c.condition, c.baby_id;

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
WITH cohort AS (
    SELECT condition, baby_id, year(first_collected_at) AS year FROM screened
),
screened_n AS (
    SELECT year, condition, count(*) AS screened FROM cohort GROUP BY ALL
),
baby_recalls AS (
    SELECT condition, baby_id,
           bool_or(action = 'repeat_specimen') AS repeat_requested,
           bool_or(action = 'referral') AS referred,
           bool_or(action = 'referral' AND outcome = 'confirmed') AS confirmed,
           bool_or(action = 'referral' AND outcome = 'false_positive') AS false_positive
    FROM recalls WHERE condition IS NOT NULL
    GROUP BY ALL
),
recall_n AS (
    SELECT c.year, c.condition,
           count(*) FILTER (WHERE b.repeat_requested) AS repeat_requests,
           count(*) FILTER (WHERE b.referred) AS referrals,
           count(*) FILTER (WHERE b.confirmed) AS confirmed,
           count(*) FILTER (WHERE b.false_positive AND NOT b.confirmed) AS false_positives
    FROM baby_recalls b JOIN cohort c USING (condition, baby_id)
    GROUP BY ALL
)
SELECT s.year, s.condition, s.screened,
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
WITH cards AS (
    SELECT s.*, year(s.collected_at) AS year,
           row_number() OVER (PARTITION BY baby_id ORDER BY collected_at, specimen_id) = 1
               AS first_card,
           date_diff('minute', birth_at, collected_at) / 60.0 AS age_at_collection_h,
           date_diff('minute', collected_at, received_at) / 60.0 AS transit_h,
           date_diff('minute', birth_at, reported_at) / 60.0 AS age_at_report_h
    FROM specimens s
),
missing AS (
    SELECT DISTINCT specimen_id FROM specimen_warnings
    WHERE reason LIKE 'missing essential information%'
),
card_stats AS (
    SELECT year,
        count(*) AS cards,
        count(DISTINCT baby_id) AS babies,
        count(*) FILTER (WHERE specimen_quality <> 'ok') AS unsatisfactory,
        count(*) FILTER (WHERE specimen_id IN (SELECT specimen_id FROM missing)) AS missing_info,
        count(*) FILTER (WHERE first_card) AS first_cards,
        count(*) FILTER (WHERE first_card AND age_at_collection_h <= 48) AS collected_48,
        count(*) FILTER (WHERE first_card AND age_at_collection_h <= 72) AS collected_72,
        median(age_at_collection_h) FILTER (WHERE first_card) AS collection_median,
        quantile_cont(age_at_collection_h, 0.9) FILTER (WHERE first_card) AS collection_p90,
        count(*) FILTER (WHERE transit_h <= 24) AS received_24,
        count(*) FILTER (WHERE transit_h <= 72) AS received_72,
        median(transit_h) AS transit_median,
        quantile_cont(transit_h, 0.9) AS transit_p90,
        count(*) FILTER (WHERE first_card AND reported_at IS NOT NULL) AS reported_firsts,
        count(*) FILTER (WHERE first_card AND age_at_report_h <= 168) AS reported_day7,
        median(age_at_report_h) FILTER (WHERE first_card) AS report_median,
        quantile_cont(age_at_report_h, 0.9) FILTER (WHERE first_card) AS report_p90
    FROM cards GROUP BY year
),
referrals AS (
    SELECT year(s.collected_at) AS year,
           date_diff('minute', s.birth_at, r.created_at) / 60.0 AS age_at_referral_h
    FROM recalls r JOIN specimens s USING (specimen_id)
    WHERE r.action = 'referral'
),
referral_stats AS (
    SELECT year, count(*) AS referrals,
           count(*) FILTER (WHERE age_at_referral_h <= 120) AS referred_day5,
           median(age_at_referral_h) AS referral_median,
           quantile_cont(age_at_referral_h, 0.9) AS referral_p90
    FROM referrals GROUP BY year
),
repeats AS (
    SELECT year(s.collected_at) AS year, r.status, r.outcome, r.created_at,
           EXISTS (SELECT 1 FROM specimens later
                   WHERE later.baby_id = r.baby_id AND later.collected_at > s.collected_at)
               AS received
    FROM recalls r JOIN specimens s USING (specimen_id)
    WHERE r.action = 'repeat_specimen'
),
repeat_stats AS (
    SELECT year, count(*) AS requested, count(*) FILTER (WHERE received) AS received
    FROM repeats GROUP BY year
),
follow_up AS (
    SELECT year(s.collected_at) AS year,
           count(*) AS recalls,
           count(*) FILTER (WHERE r.status = 'open'
                            AND r.created_at < current_timestamp::TIMESTAMP - INTERVAL 365 DAY)
               AS open_past_12_months,
           count(*) FILTER (WHERE r.outcome = 'lost_to_follow_up') AS lost_to_follow_up
    FROM recalls r JOIN specimens s USING (specimen_id) GROUP BY ALL
),
long AS (
    SELECT c.year, 1 AS seq, 'cards_received' AS indicator, c.cards::DOUBLE AS value,
           c.cards AS numerator, NULL::BIGINT AS denominator, 'cards' AS unit
    FROM card_stats c
    UNION ALL SELECT year, 2, 'babies_with_a_card', babies, babies, NULL, 'babies' FROM card_stats
    UNION ALL SELECT year, 3, 'unsatisfactory_specimens_pct', 100.0 * unsatisfactory / cards,
                     unsatisfactory, cards, '%' FROM card_stats
    UNION ALL SELECT year, 4, 'missing_essential_information_pct', 100.0 * missing_info / cards,
                     missing_info, cards, '%' FROM card_stats
    UNION ALL SELECT year, 5, 'collected_by_48h_pct', 100.0 * collected_48 / nullif(first_cards, 0),
                     collected_48, first_cards, '%' FROM card_stats
    UNION ALL SELECT year, 6, 'collected_by_72h_pct', 100.0 * collected_72 / nullif(first_cards, 0),
                     collected_72, first_cards, '%' FROM card_stats
    UNION ALL SELECT year, 7, 'birth_to_collection_median_h', collection_median, NULL, first_cards,
                     'h' FROM card_stats
    UNION ALL SELECT year, 8, 'birth_to_collection_p90_h', collection_p90, NULL, first_cards, 'h'
              FROM card_stats
    UNION ALL SELECT year, 9, 'received_within_24h_pct', 100.0 * received_24 / cards, received_24,
                     cards, '%' FROM card_stats
    UNION ALL SELECT year, 10, 'received_within_72h_pct', 100.0 * received_72 / cards, received_72,
                     cards, '%' FROM card_stats
    UNION ALL SELECT year, 11, 'collection_to_receipt_median_h', transit_median, NULL, cards, 'h'
              FROM card_stats
    UNION ALL SELECT year, 12, 'collection_to_receipt_p90_h', transit_p90, NULL, cards, 'h'
              FROM card_stats
    UNION ALL SELECT year, 13, 'birth_to_report_median_h', report_median, NULL, reported_firsts,
                     'h' FROM card_stats
    UNION ALL SELECT year, 14, 'birth_to_report_p90_h', report_p90, NULL, reported_firsts, 'h'
              FROM card_stats
    UNION ALL SELECT year, 15, 'all_results_by_day7_pct',
                     100.0 * reported_day7 / nullif(first_cards, 0), reported_day7, first_cards,
                     '%' FROM card_stats
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
CREATE VIEW marker_percentiles AS
SELECT date_trunc('month', s.collected_at)::DATE AS month, m.condition, m.marker,
       count(*) AS babies,
       round(quantile_cont(r.value, 0.01), 4) AS p01,
       round(quantile_cont(r.value, 0.05), 4) AS p05,
       round(quantile_cont(r.value, 0.50), 4) AS p50,
       round(quantile_cont(r.value, 0.95), 4) AS p95,
       round(quantile_cont(r.value, 0.99), 4) AS p99,
       round(quantile_cont(r.value, 0.995), 4) AS p995
FROM screened b
JOIN screening_calls c ON c.specimen_id = b.first_specimen_id AND c.condition = b.condition
JOIN condition_markers m ON m.condition = b.condition
JOIN results r ON r.specimen_id = b.first_specimen_id AND r.analyte = m.marker
                AND r.replicate = 1 AND r.value IS NOT NULL
JOIN specimens s ON s.specimen_id = b.first_specimen_id
WHERE c.call = 'negative'
GROUP BY ALL
ORDER BY month, m.condition, m.marker;
