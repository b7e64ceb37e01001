-- Missed cases (NewSTEPs QI 8) per year of birth and condition, beside the cases the
-- screen found (screen_detected: confirmed, QI 7); sensitivity = found / (found +
-- missed). A year and condition without a case has no row: it cannot be computed.
CREATE OR REPLACE VIEW missed_cases AS
SELECT year, condition,
       count(*) FILTER (WHERE kind = 'confirmed') AS screen_detected,
       count(*) FILTER (WHERE kind = 'missed') AS missed,
       round(100.0 * count(*) FILTER (WHERE kind = 'confirmed') / count(*), 2)
           AS sensitivity_pct
FROM case_care
WHERE kind IN ('confirmed', 'missed')
GROUP BY ALL
ORDER BY year, condition;
