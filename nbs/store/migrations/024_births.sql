-- 024: the births register (`nbs births import`), for completeness (NewSTEPs QI 3).
--
-- * births: one row per baby born, as the register last said it (a re-import replaces a
--   baby's row: importing the same file twice changes nothing). status: NULL (born; to be
--   screened) | declined (the parents declined screening) | deceased (died before a card).
-- * birth_status_events: a coordinator's recording of declined or deceased (append-only;
--   the latest wins over the register's status).
-- * births_quarantine: rows of a register file that could not be kept, with the reason;
--   keyed by the file's digest and row, so a re-import adds none twice.
-- * births_settings: one row: the day of life by which a baby should have a screened
--   card, as the setting said at the last import or mark (views cannot read settings).
CREATE TABLE births (
    baby_id      VARCHAR PRIMARY KEY,
    birth_at     TIMESTAMP NOT NULL,
    submitter    VARCHAR,
    status       VARCHAR,
    file_name    VARCHAR NOT NULL,
    row_number   INTEGER NOT NULL,
    imported_at  TIMESTAMP NOT NULL
);
CREATE SEQUENCE birth_status_seq;
CREATE TABLE birth_status_events (
    seq          BIGINT NOT NULL DEFAULT nextval('birth_status_seq'),
    baby_id      VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,   -- declined | deceased | unscreened (a mark withdrawn)
    recorded_at  TIMESTAMP NOT NULL,
    recorded_by  VARCHAR NOT NULL,
    note         VARCHAR
);
CREATE TABLE births_quarantine (
    file_sha256  VARCHAR NOT NULL,
    file_name    VARCHAR NOT NULL,
    row_number   INTEGER NOT NULL,
    baby_id      VARCHAR,
    reason       VARCHAR NOT NULL,
    raw          VARCHAR,
    imported_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (file_sha256, row_number)
);
CREATE TABLE births_settings (
    screened_by_day  INTEGER NOT NULL,
    set_at           TIMESTAMP NOT NULL
);
