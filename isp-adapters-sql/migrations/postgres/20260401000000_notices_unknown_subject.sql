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
-- Idempotent: the column is added if missing, the constraints are dropped if
-- present and added again under fixed names. One transaction.

ALTER TABLE notices ADD COLUMN IF NOT EXISTS subject TEXT NOT NULL DEFAULT '';

-- The initial CHECK and UNIQUE constraints were unnamed: PostgreSQL named them
-- notices_status_check and notices_recipient_kind_deadline_key.
ALTER TABLE notices DROP CONSTRAINT IF EXISTS notices_status_check;
ALTER TABLE notices ADD CONSTRAINT notices_status_check
    CHECK (status IN ('pending', 'sent', 'abandoned', 'unknown'));

ALTER TABLE notices DROP CONSTRAINT IF EXISTS notices_recipient_kind_deadline_key;
ALTER TABLE notices DROP CONSTRAINT IF EXISTS notices_key;
ALTER TABLE notices ADD CONSTRAINT notices_key UNIQUE (recipient, kind, deadline, subject);
