-- Cards per year by quality code (ok included, as the denominator).
CREATE OR REPLACE VIEW unsatisfactory_by_reason AS
WITH counts AS (
    SELECT year(collected_at) AS year, specimen_quality AS reason, count(*) AS cards
    FROM specimens GROUP BY ALL
)
SELECT year, reason, cards,
       round(100.0 * cards / sum(cards) OVER (PARTITION BY year), 3) AS pct
FROM counts ORDER BY year, reason;
