-- Quality indicators, one row per year, indicator and (for the care of cases) condition:
-- the cards' and recalls' (card_quality_indicators, 008), completeness from the births
-- register (NewSTEPs QI 3) and the care of cases from case_care (019): birth to treatment
-- (QI 5e, measured from birth as Germany's screening report does), birth to diagnosis
-- (5f), birth to a false positive ruled out (5g), confirmed cases (7), missed cases and
-- sensitivity (8). condition NULL: every condition together; qi: the NewSTEPs indicator.
CREATE OR REPLACE VIEW quality_indicators AS
WITH completeness AS (
    SELECT year(birth_at)::INTEGER AS year,
        count(*) AS births,
        count(*) FILTER (WHERE NOT screened_in_time AND recorded_status = 'deceased') AS deceased,
        count(*) FILTER (WHERE NOT screened_in_time AND recorded_status = 'declined') AS declined,
        count(*) FILTER (WHERE NOT screened_in_time
                         AND coalesce(recorded_status, '') <> 'deceased') AS unscreened
    FROM birth_register WHERE due GROUP BY ALL
),
eligible AS (
    -- a baby who died before a card could be taken is not eligible (QI 3's denominator)
    SELECT *, births - deceased AS eligible FROM completeness
),
care AS (
    SELECT year, condition,
        count(*) FILTER (WHERE kind IN ('confirmed', 'missed')) AS cases,
        count(*) FILTER (WHERE kind = 'confirmed') AS confirmed,
        count(*) FILTER (WHERE kind = 'missed') AS missed,
        median(diagnosis_day) FILTER (WHERE kind IN ('confirmed', 'missed')) AS dx_median,
        quantile_cont(diagnosis_day, 0.9) FILTER (WHERE kind IN ('confirmed', 'missed'))
            AS dx_p90,
        count(*) FILTER (WHERE kind IN ('confirmed', 'missed') AND diagnosis_day <= 14) AS dx_14,
        count(treatment_day) FILTER (WHERE kind IN ('confirmed', 'missed')) AS treated,
        median(treatment_day) FILTER (WHERE kind IN ('confirmed', 'missed')) AS tx_median,
        quantile_cont(treatment_day, 0.9) FILTER (WHERE kind IN ('confirmed', 'missed'))
            AS tx_p90,
        count(*) FILTER (WHERE kind IN ('confirmed', 'missed') AND treatment_day <= 14) AS tx_14,
        count(ruled_out_day) FILTER (WHERE kind = 'ruled_out') AS ruled_out,
        median(ruled_out_day) FILTER (WHERE kind = 'ruled_out') AS fp_median,
        quantile_cont(ruled_out_day, 0.9) FILTER (WHERE kind = 'ruled_out') AS fp_p90
    FROM case_care WHERE year IS NOT NULL
    GROUP BY GROUPING SETS ((year, condition), (year))
),
added AS (
    SELECT year, 23 AS seq, 'births_registered' AS indicator, births::DOUBLE AS value,
           births AS numerator, NULL::BIGINT AS denominator, 'babies' AS unit,
           NULL::VARCHAR AS condition, '3' AS qi FROM eligible
    UNION ALL SELECT year, 24, 'unscreened_newborns_pct', 100.0 * unscreened / nullif(eligible, 0),
                     unscreened, eligible, '%', NULL, '3a' FROM eligible
    UNION ALL SELECT year, 25, 'declined_screening_pct', 100.0 * declined / nullif(eligible, 0),
                     declined, eligible, '%', NULL, '3b' FROM eligible
    UNION ALL SELECT year, 26, 'deceased_before_screening', deceased, deceased, births, 'babies',
                     NULL, '3' FROM eligible
    UNION ALL SELECT year, 27, 'birth_to_diagnosis_median_d', dx_median, NULL, cases, 'days',
                     condition, '5f' FROM care WHERE cases > 0
    UNION ALL SELECT year, 28, 'birth_to_diagnosis_p90_d', dx_p90, NULL, cases, 'days',
                     condition, '5f' FROM care WHERE cases > 0
    UNION ALL SELECT year, 29, 'diagnosed_by_day14_pct', 100.0 * dx_14 / cases, dx_14, cases, '%',
                     condition, '5f' FROM care WHERE cases > 0
    UNION ALL SELECT year, 30, 'birth_to_treatment_median_d', tx_median, NULL, treated, 'days',
                     condition, '5e' FROM care WHERE treated > 0
    UNION ALL SELECT year, 31, 'birth_to_treatment_p90_d', tx_p90, NULL, treated, 'days',
                     condition, '5e' FROM care WHERE treated > 0
    UNION ALL SELECT year, 32, 'treated_by_day14_pct', 100.0 * tx_14 / cases, tx_14, cases, '%',
                     condition, '5e' FROM care WHERE cases > 0
    UNION ALL SELECT year, 33, 'birth_to_false_positive_ruled_out_median_d', fp_median, NULL,
                     ruled_out, 'days', condition, '5g' FROM care WHERE ruled_out > 0
    UNION ALL SELECT year, 34, 'birth_to_false_positive_ruled_out_p90_d', fp_p90, NULL,
                     ruled_out, 'days', condition, '5g' FROM care WHERE ruled_out > 0
    UNION ALL SELECT year, 35, 'confirmed_cases', confirmed, confirmed, NULL, 'babies',
                     condition, '7' FROM care WHERE cases > 0
    UNION ALL SELECT year, 36, 'missed_cases', missed, missed, cases, 'babies', condition, '8'
              FROM care WHERE cases > 0
    UNION ALL SELECT year, 37, 'sensitivity_pct', 100.0 * confirmed / cases, confirmed, cases,
                     '%', condition, '8' FROM care WHERE cases > 0
),
cards AS (
    SELECT year::INTEGER AS year, seq, indicator, value, numerator, denominator, unit,
           NULL::VARCHAR AS condition,
           CASE WHEN indicator = 'unsatisfactory_specimens_pct' THEN '1'
                WHEN indicator = 'missing_essential_information_pct' THEN '2'
                WHEN indicator LIKE 'recalls_%' THEN '4'
                WHEN indicator LIKE 'collected_by_%' OR indicator LIKE 'birth_to_collection_%'
                    THEN '5a'
                WHEN indicator LIKE 'received_within_%'
                    OR indicator LIKE 'collection_to_receipt_%' THEN '5b'
                WHEN indicator LIKE 'birth_to_report_%' OR indicator LIKE 'all_results_%'
                    OR indicator LIKE '%referr%' THEN '5d'
           END AS qi
    FROM card_quality_indicators
)
SELECT * FROM cards
UNION ALL
SELECT year, seq, indicator, round(value, 2), numerator, denominator, unit, condition, qi
FROM added
ORDER BY year, seq, condition NULLS FIRST;
