-- The maternities' report cards: per submitting unit and month of collection, the
-- figures a unit can act on, and the programme's (submitter NULL) beside them.
-- Repeat cards: the unit's cards for which a new card was requested, and of those the
-- ones whose baby has a later card. Unsatisfactory: too-old cards too (too_old_cards, 007).
CREATE OR REPLACE VIEW submitter_months AS
WITH later AS (
    SELECT baby_id, max(collected_at) AS last_collected_at FROM specimens GROUP BY baby_id
),
requested AS (
    SELECT DISTINCT specimen_id FROM recalls WHERE action = 'repeat_specimen'
),
cards AS (
    SELECT date_trunc('month', s.collected_at)::DATE AS month,
           coalesce(s.submitter, 'unknown') AS submitter,
           s.specimen_quality <> 'ok' OR t.specimen_id IS NOT NULL AS unsatisfactory,
           coalesce(s.missing_information, false) AS missing_information,
           coalesce(s.first_of_baby, false) AS first_card,
           date_diff('minute', s.birth_at, s.collected_at) / 60.0 AS age_h,
           date_diff('minute', s.collected_at, s.received_at) / 60.0 AS transit_h,
           q.specimen_id IS NOT NULL AS repeat_requested,
           q.specimen_id IS NOT NULL AND l.last_collected_at > s.collected_at AS repeat_received
    FROM specimens s
    LEFT JOIN requested q USING (specimen_id)
    LEFT JOIN too_old_cards t USING (specimen_id)
    LEFT JOIN later l USING (baby_id)
)
SELECT month, submitter,
       count(*) AS cards,
       count(*) FILTER (WHERE unsatisfactory) AS unsatisfactory,
       round(100.0 * count(*) FILTER (WHERE unsatisfactory) / count(*), 2) AS unsatisfactory_pct,
       count(*) FILTER (WHERE missing_information) AS missing_information,
       round(100.0 * count(*) FILTER (WHERE missing_information) / count(*), 2)
           AS missing_information_pct,
       count(*) FILTER (WHERE first_card) AS first_cards,
       round(median(age_h) FILTER (WHERE first_card), 1) AS age_at_collection_median_h,
       round(100.0 * count(*) FILTER (WHERE first_card AND age_h <= 72)
             / nullif(count(*) FILTER (WHERE first_card), 0), 2) AS collected_by_72h_pct,
       round(median(transit_h), 1) AS transit_median_h,
       round(100.0 * count(*) FILTER (WHERE transit_h <= 72) / count(*), 2)
           AS received_within_72h_pct,
       count(*) FILTER (WHERE repeat_requested) AS repeat_requested,
       count(*) FILTER (WHERE repeat_received) AS repeat_received
FROM cards
GROUP BY GROUPING SETS ((month, submitter), (month))
ORDER BY month, submitter NULLS FIRST;
