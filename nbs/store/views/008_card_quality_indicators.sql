-- Quality indicators of the cards and recalls (NewSTEPs / DGNS shape), one row per year and
-- indicator; value: a percentage (numerator / denominator) or hours (median, 90th
-- percentile). quality_indicators (021) adds completeness and the care of confirmed babies.
CREATE OR REPLACE VIEW card_quality_indicators AS
WITH cards AS NOT MATERIALIZED (
    SELECT s.specimen_quality <> 'ok' OR t.specimen_id IS NOT NULL AS unsatisfactory,
           s.reported_at, year(s.collected_at) AS year,
           coalesce(s.first_of_baby, false) AS first_card,
           coalesce(s.missing_information, false) AS missing_information,
           date_diff('minute', birth_at, collected_at) AS age_at_collection_min,
           date_diff('minute', collected_at, received_at) AS transit_min,
           date_diff('minute', birth_at, reported_at) AS age_at_report_min
    FROM specimens s LEFT JOIN too_old_cards t USING (specimen_id)
),
card_stats AS (
    SELECT year,
        count(*) AS cards,
        count(*) FILTER (WHERE first_card) AS babies,
        count(*) FILTER (WHERE unsatisfactory) AS unsatisfactory,
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
-- the minute at each side of a quantile's position, each found apart: a few positions
-- against the minutes of their year and metric (materialised: the optimiser must not join
-- the minutes with themselves first)
interval_lo AS MATERIALIZED (
    SELECT p.year, p.metric, p.q, p.h, c.v
    FROM interval_pos p
    JOIN interval_cum c ON c.year = p.year AND c.metric = p.metric
                       AND c.before <= floor(p.h) AND floor(p.h) < c.upto
),
interval_hi AS MATERIALIZED (
    SELECT p.year, p.metric, p.q, c.v
    FROM interval_pos p
    JOIN interval_cum c ON c.year = p.year AND c.metric = p.metric
                       AND c.before <= ceil(p.h) AND ceil(p.h) < c.upto
),
interval_q AS (
    SELECT lo.year, lo.metric, lo.q,
           (lo.v + (lo.h - floor(lo.h)) * (hi.v - lo.v)) / 60.0 AS hours
    FROM interval_lo lo JOIN interval_hi hi USING (year, metric, q)
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
