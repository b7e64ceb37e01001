-- 019: newborn-screening orders received as HL7 v2 messages (nbs/intake/hl7_orders.py),
-- and the laboratory's receipt of their cards.
--
-- * order_messages: every accepted order message, once: re-reading a message (the same
--   file again, or the same message in another file) adds nothing (key: card id and
--   message control id). A later message for the same card supersedes the earlier one
--   in the view card_orders (the latest MSH-7, then the latest stored); all stay here.
-- * order_receipts: the card's arrival at the laboratory, recorded by a person (CLI
--   `nbs orders receive` or the review application), with the card's quality and the
--   parents' CF consent where the card says it. A run turns a received order that has no
--   stored card yet into the card's row (nbs/intake/orders.py).
-- Quarantined and refused messages are rows of `quarantine` (row_number = the message's
-- place in its file).
CREATE TABLE order_messages (
    specimen_id            VARCHAR NOT NULL,
    message_control_id     VARCHAR NOT NULL,
    baby_id                VARCHAR NOT NULL,
    birth_at               TIMESTAMP NOT NULL,
    collected_at           TIMESTAMP NOT NULL,
    sex                    VARCHAR NOT NULL,
    birth_weight_g         INTEGER,
    gestational_age_weeks  INTEGER,
    transfusion            BOOLEAN,
    parenteral_nutrition   BOOLEAN,
    nicu                   BOOLEAN,
    antibiotics            BOOLEAN,
    last_transfusion_at    TIMESTAMP,
    plurality              INTEGER,
    birth_order            INTEGER,
    submitter              VARCHAR,
    provider_name          VARCHAR,
    provider_phone         VARCHAR,
    placer_order_id        VARCHAR,
    message_type           VARCHAR NOT NULL,
    ordered_at             TIMESTAMP,
    file_sha256            VARCHAR NOT NULL,
    file_name              VARCHAR NOT NULL,
    message_index          INTEGER NOT NULL,
    run_id                 VARCHAR NOT NULL,
    stored_at              TIMESTAMP NOT NULL,
    PRIMARY KEY (specimen_id, message_control_id)
);

CREATE TABLE order_receipts (
    specimen_id       VARCHAR PRIMARY KEY,
    received_at       TIMESTAMP NOT NULL,
    specimen_quality  VARCHAR NOT NULL,
    consent_cf        BOOLEAN,
    recorded_by       VARCHAR NOT NULL,
    recorded_at       TIMESTAMP NOT NULL
);
