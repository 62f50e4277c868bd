-- Notices (issue 16): a status of their own for sends whose outcome is unknown,
-- and the subject in the unique key (see the PostgreSQL migration of the same
-- version for why). Written for MariaDB, whose inline column CHECK goes with
-- the column definition that MODIFY replaces.

ALTER TABLE notices ADD COLUMN subject VARCHAR(64) NOT NULL DEFAULT '' AFTER deadline;
ALTER TABLE notices MODIFY status VARCHAR(16) NOT NULL DEFAULT 'pending';
ALTER TABLE notices ADD CONSTRAINT notices_status_check
    CHECK (status IN ('pending', 'sent', 'abandoned', 'unknown'));
ALTER TABLE notices DROP INDEX notices_recipient_kind_deadline;
ALTER TABLE notices ADD UNIQUE KEY notices_key (recipient, kind, deadline, subject);
