-- Cards per year by quality code (ok included, as the denominator). A card the submitter
-- called ok but received after its cutoff set's transit limit is unsatisfactory all the
-- same (too_old): the evaluation's card-level recall says so (the text begins as
-- nbs.evaluate.specimen_rules.TOO_OLD_TEXT), and the limit is the cutoff set's, so the
-- recall is read rather than the transit time compared with a number here.
CREATE OR REPLACE VIEW unsatisfactory_by_reason AS
WITH too_old AS (
    SELECT DISTINCT specimen_id FROM recalls
    WHERE condition IS NULL AND reason LIKE '%unsatisfactory card (too\_old: received %' ESCAPE '\'
),
counts AS (
    SELECT year(s.collected_at) AS year,
           CASE WHEN s.specimen_quality = 'ok' AND t.specimen_id IS NOT NULL THEN 'too_old'
                ELSE s.specimen_quality END AS reason,
           count(*) AS cards
    FROM specimens s LEFT JOIN too_old t USING (specimen_id) GROUP BY ALL
)
SELECT year, reason, cards,
       round(100.0 * cards / sum(cards) OVER (PARTITION BY year), 3) AS pct
FROM counts ORDER BY year, reason;
