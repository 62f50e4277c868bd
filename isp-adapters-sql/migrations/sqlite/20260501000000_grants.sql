-- Grants (issue 17): hotspot payments, unique per (tenant, reference), and the
-- router work a grant still owes, one row per (subscriber, router), leased
-- like every other due item.
CREATE TABLE IF NOT EXISTS hotspot_payments (
    tenant_id     INTEGER NOT NULL,
    reference     TEXT    NOT NULL,
    subscriber_id INTEGER NOT NULL,
    amount_micros INTEGER NOT NULL,
    currency      TEXT    NOT NULL,
    paid_until    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, reference)
);
CREATE INDEX IF NOT EXISTS hotspot_payments_subscriber ON hotspot_payments (subscriber_id, created_at);

CREATE TABLE IF NOT EXISTS pending_grants (
    subscriber_id INTEGER NOT NULL,
    router_id     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    lease_holder  TEXT,
    lease_until   INTEGER,
    PRIMARY KEY (subscriber_id, router_id)
);
-- claim_pending (free leases, oldest first) and next_due_after.
CREATE INDEX IF NOT EXISTS pending_grants_age ON pending_grants (created_at, subscriber_id, router_id);
CREATE INDEX IF NOT EXISTS pending_grants_lease ON pending_grants (lease_until);
