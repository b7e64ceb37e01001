-- 016: sign-ins to the review application.
--
-- * web_sessions: one row per sign-in. The browser's cookie carries a random session id;
--   only its SHA-256 is stored, so a reader of this file cannot take over a session.
--   Signing out (or the idle timeout) sets ended_at: the cookie is then worthless, even
--   copied elsewhere.
-- * login_attempts: every sign-in attempt, answered or refused (the audit trail of
--   password guessing); the name is stored as typed, cut to 64 characters.
-- * login_guard: failed sign-ins in a row per account and the lock-out they lead to,
--   which only an administrator lifts (nbs users unlock).

CREATE TABLE web_sessions (
    session_hash  VARCHAR PRIMARY KEY,
    username      VARCHAR NOT NULL,
    address       VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    ended_at      TIMESTAMP,
    end_reason    VARCHAR              -- signed_out | idle | expired | disabled
);

CREATE TABLE login_attempts (
    attempt_at  TIMESTAMP NOT NULL,
    username    VARCHAR NOT NULL,
    address     VARCHAR,
    outcome     VARCHAR NOT NULL,      -- signed_in | wrong_password | unknown_user | locked
                                       -- | throttled | server_busy | not_recorded | unlocked
    detail      VARCHAR
);

CREATE TABLE login_guard (
    username         VARCHAR PRIMARY KEY,
    failures         INTEGER NOT NULL DEFAULT 0,   -- failed sign-ins since the last success
    last_failure_at  TIMESTAMP,
    locked_at        TIMESTAMP                     -- NULL: not locked
);
