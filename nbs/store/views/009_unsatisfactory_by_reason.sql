-- Cards per year by quality code (ok included, as the denominator); a card the submitter
-- called ok but received too late is too_old (too_old_cards, 007).
CREATE OR REPLACE VIEW unsatisfactory_by_reason AS
WITH counts AS (
    SELECT year(s.collected_at) AS year,
           CASE WHEN s.specimen_quality = 'ok' AND t.specimen_id IS NOT NULL THEN 'too_old'
                ELSE s.specimen_quality END AS reason,
           count(*) AS cards
    FROM specimens s LEFT JOIN too_old_cards t USING (specimen_id) GROUP BY ALL
)
SELECT year, reason, cards,
       round(100.0 * cards / sum(cards) OVER (PARTITION BY year), 3) AS pct
FROM counts ORDER BY year, reason;
