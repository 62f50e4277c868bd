-- isp schema for MySQL 8+ / MariaDB 10.6+.
-- InnoDB, utf8mb4 with the binary collation (names compare exactly, as on
-- PostgreSQL). Instants are DATETIME(6) holding UTC (every connection sets
-- time_zone '+00:00'), dates are DATE, money is BIGINT 1/10000 units plus a
-- currency, booleans are BOOLEAN (TINYINT(1)). Every table that hands out work has
-- lease_holder / lease_until: an item is free when lease_until IS NULL or
-- lease_until <= now. Ids are AUTO_INCREMENT but may be set (bulk loads, imports).
-- Text that is a key or is compared is VARCHAR (indexable); free text is TEXT.
--
-- MySQL has no partial indexes: where PostgreSQL indexes "WHERE active" or "WHERE
-- status = 'active'", the index here covers every row (the due-work scans read it
-- in deadline order and skip the others) or has the status as a leading column;
-- the partial unique key on charges is a unique key over
-- generated columns that are NULL for anything but a charge.
--
-- Idempotent: every table and its indexes are created only if missing (MySQL DDL
-- is not transactional, so a migration that failed part-way can be run again).

CREATE TABLE IF NOT EXISTS tenants (
    id        BIGINT       NOT NULL PRIMARY KEY,
    slug      VARCHAR(255) NOT NULL,
    name      TEXT         NOT NULL,
    time_zone VARCHAR(64)  NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS subscribers (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id       BIGINT       NOT NULL,
    phone           VARCHAR(64)  NOT NULL,
    username        VARCHAR(255) NOT NULL,
    paid_until      DATETIME(6)  NOT NULL,
    active          BOOLEAN      NOT NULL DEFAULT TRUE,
    disconnected_at DATETIME(6),
    attempts        BIGINT       NOT NULL DEFAULT 0,
    lease_holder    VARCHAR(255),
    lease_until     DATETIME(6),
    UNIQUE KEY subscribers_tenant_phone (tenant_id, phone),
    -- Due work (claim_expired, list_expired), expiring_between, next_expiry_after, count_entitled.
    KEY subscribers_due (paid_until, id),
    KEY subscribers_tenant_active (tenant_id, active, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS devices (
    id            BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    subscriber_id BIGINT      NOT NULL,
    mac           VARCHAR(32) NOT NULL,
    router_id     BIGINT,
    last_seen     DATETIME(6) NOT NULL,
    active        BOOLEAN     NOT NULL DEFAULT TRUE,
    UNIQUE KEY devices_subscriber_mac (subscriber_id, mac),
    KEY devices_last_seen (last_seen)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS vouchers (
    id                  BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id           BIGINT       NOT NULL,
    router_id           BIGINT       NOT NULL,
    code                VARCHAR(255) NOT NULL,
    plan_id             BIGINT       NOT NULL,
    status              VARCHAR(16)  NOT NULL DEFAULT 'unused'
                        CHECK (status IN ('unused', 'active', 'expired', 'revoked')),
    activation_deadline DATETIME(6),
    purchase_deadline   DATETIME(6),
    duration_ms         BIGINT       NOT NULL,
    started_at          DATETIME(6),
    expected_end        DATETIME(6),
    expired_reason      VARCHAR(32),
    expired_at          DATETIME(6),
    removed_from_router BOOLEAN      NOT NULL DEFAULT FALSE,
    lease_holder        VARCHAR(255),
    lease_until         DATETIME(6),
    attempts            BIGINT       NOT NULL DEFAULT 0,
    -- Voucher::deadline(): the next instant at which time alone changes the voucher.
    -- (MySQL's LEAST is NULL when either side is; PostgreSQL's ignores NULLs.)
    deadline            DATETIME(6) AS (
        CASE status
            WHEN 'unused' THEN CASE
                WHEN activation_deadline IS NULL THEN purchase_deadline
                WHEN purchase_deadline IS NULL THEN activation_deadline
                ELSE LEAST(activation_deadline, purchase_deadline) END
            WHEN 'active' THEN expected_end
            ELSE CASE WHEN removed_from_router THEN NULL
                      ELSE COALESCE(expired_at, expected_end) END
        END) STORED,
    UNIQUE KEY vouchers_tenant_code (tenant_id, code),
    -- Deadlines by status: the generated deadline folds status in.
    KEY vouchers_due (deadline, id),
    KEY vouchers_router_status (router_id, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS plans (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id    BIGINT       NOT NULL,
    name         VARCHAR(255) NOT NULL,
    price_micros BIGINT       NOT NULL,
    currency     VARCHAR(8)   NOT NULL,
    duration_ms  BIGINT,
    rate_limit   VARCHAR(255),
    UNIQUE KEY plans_tenant_name (tenant_id, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS customers (
    id        BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id BIGINT      NOT NULL,
    name      TEXT        NOT NULL,
    phone     VARCHAR(64)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS services (
    id                BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id         BIGINT       NOT NULL,
    customer_id       BIGINT       NOT NULL,
    router_id         BIGINT       NOT NULL,
    plan_id           BIGINT       NOT NULL,
    status            VARCHAR(16)  NOT NULL
                      CHECK (status IN ('active', 'suspended', 'inactive', 'terminated', 'pending')),
    connection_kind   VARCHAR(16)  NOT NULL CHECK (connection_kind IN ('pppoe', 'static_ip')),
    pppoe_username    VARCHAR(255),
    pppoe_password    TEXT,
    pppoe_profile     VARCHAR(255),
    static_address    VARCHAR(64),
    next_billing_date DATE         NOT NULL,
    billing_day       BIGINT       NOT NULL,
    next_charge_on    DATE         NOT NULL,
    provisioned       BOOLEAN      NOT NULL DEFAULT FALSE,
    provisioned_at    DATETIME(6),
    deprovisioned_at  DATETIME(6),
    lease_holder      VARCHAR(255),
    lease_until       DATETIME(6),
    attempts          BIGINT       NOT NULL DEFAULT 0,
    -- NULL usernames (static IP services) never collide.
    UNIQUE KEY services_router_pppoe_username (router_id, pppoe_username),
    -- Provisioning sweep: by provisioned flag and status, in due-date order.
    KEY services_provisioning (tenant_id, provisioned, status, next_billing_date, id),
    -- Billing: services by status and next period start.
    KEY services_billable (tenant_id, status, next_charge_on, id),
    -- Reminders: services by status and due date.
    KEY services_due_date (tenant_id, status, next_billing_date, id),
    -- Reconciliation: services of a router.
    KEY services_router (router_id, provisioned, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ledger (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id   BIGINT       NOT NULL,
    service_id    BIGINT,
    kind          VARCHAR(16)  NOT NULL CHECK (kind IN ('charge', 'payment')),
    amount_micros BIGINT       NOT NULL,
    currency      VARCHAR(8)   NOT NULL,
    period_start  DATE,
    `key`         VARCHAR(255) NOT NULL,
    created_at    DATETIME(6)  NOT NULL,
    -- Exactly one charge per (service, period), whatever the key says: NULL (never
    -- colliding) for anything but a charge.
    charge_service_id   BIGINT AS (CASE WHEN kind = 'charge' THEN service_id END) STORED,
    charge_period_start DATE   AS (CASE WHEN kind = 'charge' THEN period_start END) STORED,
    UNIQUE KEY ledger_key (`key`),
    UNIQUE KEY ledger_charge_service_period (charge_service_id, charge_period_start),
    KEY ledger_service (service_id, created_at, id),
    KEY ledger_customer (customer_id, created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS notices (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id    BIGINT       NOT NULL,
    recipient    VARCHAR(64)  NOT NULL,
    kind         VARCHAR(64)  NOT NULL,
    deadline     DATETIME(6)  NOT NULL,
    body         TEXT         NOT NULL,
    status       VARCHAR(16)  NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'abandoned')),
    attempts     BIGINT       NOT NULL DEFAULT 0,
    created_at   DATETIME(6)  NOT NULL,
    sent_at      DATETIME(6),
    lease_holder VARCHAR(255),
    lease_until  DATETIME(6),
    UNIQUE KEY notices_recipient_kind_deadline (recipient, kind, deadline),
    -- Pending notices oldest first (claim_pending), and counts by status.
    KEY notices_by_status (status, created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS audit_events (
    id        BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at        DATETIME(6)  NOT NULL,
    tenant_id BIGINT,
    action    VARCHAR(255) NOT NULL,
    subject   TEXT         NOT NULL,
    router_id BIGINT,
    outcome   VARCHAR(16)  NOT NULL,
    reason    TEXT,
    KEY audit_events_at (at, id),
    KEY audit_events_router (router_id, at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS router_status (
    router_id       BIGINT      NOT NULL PRIMARY KEY,
    online          BOOLEAN     NOT NULL,
    checked_at      DATETIME(6) NOT NULL,
    changed_at      DATETIME(6) NOT NULL,
    clock_skew_secs BIGINT,
    version         VARCHAR(255),
    last_error      TEXT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS leases (
    name   VARCHAR(255) NOT NULL PRIMARY KEY,
    holder VARCHAR(255) NOT NULL,
    `until` DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
