-- The care of each case (case_outcomes, 013), in days of life from the date of birth:
-- diagnosis and treatment of confirmed and missed cases (NewSTEPs QI 5f, 5e), the ruling
-- out of a false positive (QI 5g). year: the baby's year of birth (the cohort).
CREATE OR REPLACE VIEW case_care AS
WITH babies AS (
    SELECT baby_id, min(birth_at) AS birth_at FROM specimens GROUP BY baby_id
)
SELECT o.baby_id, o.condition, o.kind, year(b.birth_at)::INTEGER AS year,
       date_diff('day', b.birth_at::DATE, o.diagnosed_at) AS diagnosis_day,
       date_diff('day', b.birth_at::DATE, o.treatment_started_at) AS treatment_day,
       date_diff('day', b.birth_at::DATE, o.ruled_out_at) AS ruled_out_day
FROM case_outcomes o JOIN babies b USING (baby_id);
