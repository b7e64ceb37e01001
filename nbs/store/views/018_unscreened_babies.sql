-- Completeness (NewSTEPs QI 3): babies of the births register without a screened card
-- collected by the configured day of life, once that day has passed. status: declined or
-- deceased as recorded, otherwise unscreened; first_collected_at: a satisfactory card
-- that came later (screened_late), else NULL.
CREATE OR REPLACE VIEW unscreened_babies AS
SELECT baby_id, birth_at, submitter, coalesce(recorded_status, 'unscreened') AS status,
       first_collected_at, first_collected_at IS NOT NULL AS screened_late,
       date_diff('day', birth_at, current_timestamp::TIMESTAMP) AS age_days
FROM birth_register
WHERE due AND NOT screened_in_time
ORDER BY birth_at, baby_id;
