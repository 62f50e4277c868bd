-- Grants (issue 17): hotspot payments, unique per (tenant, reference), and the
-- router work a grant still owes, one row per (subscriber, router), leased
-- like every other due item.
CREATE TABLE IF NOT EXISTS hotspot_payments (
    tenant_id     BIGINT       NOT NULL,
    reference     VARCHAR(100) NOT NULL,
    subscriber_id BIGINT       NOT NULL,
    amount_micros BIGINT       NOT NULL,
    currency      VARCHAR(3)   NOT NULL,
    paid_until    DATETIME(6)  NOT NULL,
    created_at    DATETIME(6)  NOT NULL,
    PRIMARY KEY (tenant_id, reference),
    KEY hotspot_payments_subscriber (subscriber_id, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS pending_grants (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    subscriber_id BIGINT       NOT NULL,
    router_id     BIGINT       NOT NULL,
    created_at    DATETIME(6)  NOT NULL,
    attempts      BIGINT       NOT NULL DEFAULT 0,
    last_error    TEXT,
    lease_holder  VARCHAR(255),
    lease_until   DATETIME(6),
    UNIQUE KEY pending_grants_key (subscriber_id, router_id),
    -- claim_pending (free leases, oldest first) and next_due_after.
    KEY pending_grants_age (created_at, subscriber_id, router_id),
    KEY pending_grants_lease (lease_until)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
