-- The births register, each baby with its first satisfactory card (an unsatisfactory
-- card is no screen, NewSTEPs QI 3c) and the day of life it was due by (births_settings):
-- recorded_status is declined or deceased as the latest coordinator's mark or else the
-- register says; due once that day has passed.
CREATE OR REPLACE VIEW birth_register AS
WITH marks AS (
    SELECT baby_id, status FROM birth_status_events
    QUALIFY row_number() OVER (PARTITION BY baby_id ORDER BY seq DESC) = 1
),
day AS (
    SELECT coalesce((SELECT screened_by_day FROM births_settings
                     ORDER BY set_at DESC LIMIT 1), 7) AS screened_by_day
),
cards AS (
    SELECT baby_id, min(collected_at) AS first_collected_at
    FROM specimens WHERE specimen_quality = 'ok' GROUP BY baby_id
)
SELECT b.baby_id, b.birth_at, b.submitter,
       CASE WHEN coalesce(m.status, b.status) IN ('declined', 'deceased')
            THEN coalesce(m.status, b.status) END AS recorded_status,
       c.first_collected_at,
       b.birth_at + to_days(d.screened_by_day) AS screen_due_at,
       c.first_collected_at IS NOT NULL
           AND c.first_collected_at <= b.birth_at + to_days(d.screened_by_day) AS screened_in_time,
       b.birth_at + to_days(d.screened_by_day) <= current_timestamp::TIMESTAMP AS due
FROM births b CROSS JOIN day d
LEFT JOIN marks m USING (baby_id)
LEFT JOIN cards c USING (baby_id);
