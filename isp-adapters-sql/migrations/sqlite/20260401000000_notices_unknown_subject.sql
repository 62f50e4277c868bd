-- Notices (issue 16): a status of their own for sends whose outcome is unknown,
-- and the subject in the unique key.
--
-- - status 'unknown': the gateway may have delivered it (a timeout, a lost
--   answer); like 'abandoned' it is never sent again, but it is counted apart.
-- - subject: what the notice is about ('service:<id>' for a service's
--   reminders, '' where the recipient already tells). The key becomes
--   (recipient, kind, deadline, subject), so a customer with two services due
--   the same day gets a reminder for each. Stored notices get ''.
--
-- SQLite cannot change a CHECK or a UNIQUE constraint in place: the table is
-- rebuilt (every row, id and the AUTOINCREMENT sequence kept) and its index
-- recreated; no trigger or foreign key refers to it. sqlx runs this in one
-- transaction: a failure leaves the old table whole. Safe to re-run on a
-- half-done state: the scratch table is dropped first and every index is
-- created only if missing.

DROP TABLE IF EXISTS notices_rebuild;

CREATE TABLE notices_rebuild (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL,
    recipient    TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    deadline     INTEGER NOT NULL,
    subject      TEXT    NOT NULL DEFAULT '',
    body         TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'abandoned', 'unknown')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    lease_holder TEXT,
    lease_until  INTEGER,
    UNIQUE (recipient, kind, deadline, subject)
);

INSERT INTO notices_rebuild (id, tenant_id, recipient, kind, deadline, subject, body, status,
                             attempts, created_at, sent_at, lease_holder, lease_until)
SELECT id, tenant_id, recipient, kind, deadline, '', body, status,
       attempts, created_at, sent_at, lease_holder, lease_until
FROM notices;

-- Keep the sequence where it was (ids of deleted rows are never reused).
INSERT INTO sqlite_sequence (name, seq)
SELECT 'notices_rebuild', seq FROM sqlite_sequence
WHERE name = 'notices' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'notices_rebuild');
UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'notices'), 0))
WHERE name = 'notices_rebuild';

DROP TABLE notices;
ALTER TABLE notices_rebuild RENAME TO notices;

-- Pending notices oldest first (claim_pending), and counts by status.
CREATE INDEX IF NOT EXISTS notices_by_status ON notices (status, created_at, id);
