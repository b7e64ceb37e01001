-- 003: people who use the review application, with their role.
-- Passwords are stored only as argon2id hashes. Accounts are disabled, never deleted, so
-- the audit trail's names always resolve to an account.

CREATE TABLE users (
    username       VARCHAR PRIMARY KEY,
    role           VARCHAR NOT NULL,     -- lab | coordinator | official
    password_hash  VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    created_by     VARCHAR NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT false
);
