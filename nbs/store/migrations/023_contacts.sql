-- 023: the coordinators' contact log: every call, letter, e-mail or visit about a recall.
--
-- * recall_contacts: append-only; one row per contact: when it happened (contacted_at)
--   and when it was recorded, by whom, how (telephone | letter | email | in_person), whom
--   (parents | maternity | paediatrician | specialist | other), what happened, and the
--   next action with its due date (both empty when nothing more is planned). The latest
--   contact's next action is the recall's (view recall_contact_state).
CREATE SEQUENCE recall_contact_seq;
CREATE TABLE recall_contacts (
    seq           BIGINT NOT NULL DEFAULT nextval('recall_contact_seq'),
    recall_id     VARCHAR NOT NULL,
    contacted_at  TIMESTAMP NOT NULL,
    recorded_at   TIMESTAMP NOT NULL,
    contacted_by  VARCHAR NOT NULL,
    how           VARCHAR NOT NULL,
    whom          VARCHAR NOT NULL,
    note          VARCHAR NOT NULL,
    next_action   VARCHAR,
    next_due      DATE,
    letter        VARCHAR             -- the letter template sent (how = letter)
);
