-- 020: releasing results, and the messages that carry them out of the laboratory.
--
-- * releases: one row per release of a card, append-only. seq 1 is the initial release,
--   2, 3... amendments (a change after release: a correction, a reprocessing that changed
--   a call) with the reason. snapshot is what was released (the card's data, its calls and
--   the values they rest on, as JSON) and content_sha256 its digest: a card whose current
--   content has another digest is "changed since release". changed lists the
--   observations an amendment changes (JSON), acknowledged the exceptions (quarantined rows,
--   card warnings) the signer reviewed and released over.
-- * release_attempts: the audit trail of every release asked for, done or refused (who,
--   when, why refused); the password's re-entry is also in login_attempts.
-- * sent_messages: every message sent over MLLP, each try: its control id, where, the
--   acknowledgement code (AA / AE / AR; NULL: no answer) and the answer's text.

CREATE SEQUENCE release_id_seq START 1;

CREATE TABLE releases (
    release_id      INTEGER PRIMARY KEY DEFAULT nextval('release_id_seq'),
    specimen_id     VARCHAR NOT NULL,
    baby_id         VARCHAR NOT NULL,
    seq             INTEGER NOT NULL,      -- 1: initial; 2, 3...: amendments
    kind            VARCHAR NOT NULL,      -- initial | amendment
    released_by     VARCHAR NOT NULL,
    released_at     TIMESTAMP NOT NULL,
    reason          VARCHAR,               -- required for an amendment
    acknowledged    VARCHAR,               -- JSON list of the exceptions released over
    changed         VARCHAR,               -- JSON list of the observations changed
    content_sha256  VARCHAR NOT NULL,
    snapshot        VARCHAR NOT NULL,      -- JSON: what was released
    UNIQUE (specimen_id, seq)
);

CREATE TABLE release_attempts (
    attempt_at   TIMESTAMP NOT NULL,
    specimen_id  VARCHAR NOT NULL,
    actor        VARCHAR NOT NULL,
    outcome      VARCHAR NOT NULL,         -- released | refused
    detail       VARCHAR
);

CREATE TABLE sent_messages (
    control_id   VARCHAR NOT NULL,         -- MSH-10
    release_id   INTEGER NOT NULL,
    specimen_id  VARCHAR NOT NULL,
    format       VARCHAR NOT NULL,         -- hl7v2
    destination  VARCHAR NOT NULL,         -- HOST:PORT
    attempt      INTEGER NOT NULL,
    sent_at      TIMESTAMP NOT NULL,
    ack_code     VARCHAR,                  -- AA | AE | AR | CA | CE | CR; NULL: no answer
    answer       VARCHAR                   -- the acknowledgement's text, or the failure
);
