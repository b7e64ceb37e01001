-- The current order of each card (the latest message: MSH-7, then the latest stored),
-- with its receipt; received_at stays empty until the laboratory records the card's
-- arrival. card_stored: the card is a stored specimen (evaluated like any other).
CREATE OR REPLACE VIEW card_orders AS
WITH ranked AS (
    SELECT m.*,
           count(*) OVER (PARTITION BY m.specimen_id) AS order_messages,
           row_number() OVER (
               PARTITION BY m.specimen_id
               ORDER BY m.ordered_at DESC NULLS LAST, m.stored_at DESC, m.message_index DESC
           ) AS rank_
    FROM order_messages m
)
SELECT r.specimen_id, r.baby_id, r.birth_at, r.collected_at, r.sex, r.birth_weight_g,
       r.gestational_age_weeks, r.transfusion, r.parenteral_nutrition, r.submitter,
       rc.received_at, r.last_transfusion_at, r.nicu, r.antibiotics, r.plurality,
       r.birth_order, r.provider_name, r.provider_phone, r.placer_order_id,
       r.message_control_id, r.message_type, r.ordered_at, r.file_sha256, r.file_name,
       r.message_index, r.order_messages, rc.specimen_quality, rc.consent_cf,
       rc.recorded_by AS received_by, rc.recorded_at AS receipt_recorded_at,
       s.specimen_id IS NOT NULL AS card_stored
FROM ranked r
LEFT JOIN order_receipts rc USING (specimen_id)
LEFT JOIN specimens s USING (specimen_id)
WHERE r.rank_ = 1;
