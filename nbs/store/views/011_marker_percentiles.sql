-- The monthly marker percentiles kept by the runs.
CREATE OR REPLACE VIEW marker_percentiles AS
SELECT * FROM marker_month_percentiles ORDER BY month, condition, marker;
