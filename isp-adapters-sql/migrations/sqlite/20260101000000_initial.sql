-- isp schema for SQLite.
-- Instants are INTEGER microseconds since the Unix epoch (UTC), the same precision as
-- PostgreSQL's TIMESTAMPTZ; dates are TEXT 'YYYY-MM-DD' (sorts as it counts); money is
-- INTEGER 1/10000 units plus a currency; booleans are 0/1.
-- Every table that hands out work has lease_holder / lease_until: an item is free when
-- lease_until IS NULL or lease_until <= now.

CREATE TABLE tenants (
    id        INTEGER PRIMARY KEY,
    slug      TEXT NOT NULL,
    name      TEXT NOT NULL,
    time_zone TEXT NOT NULL
);

CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       INTEGER NOT NULL,
    phone           TEXT    NOT NULL,
    username        TEXT    NOT NULL,
    paid_until      INTEGER NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1,
    disconnected_at INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_holder    TEXT,
    lease_until     INTEGER,
    UNIQUE (tenant_id, phone)
);
-- Due work (claim_expired, list_expired), expiring_between, next_expiry_after, count_entitled.
CREATE INDEX subscribers_due ON subscribers (paid_until, id) WHERE active;
CREATE INDEX subscribers_tenant_active ON subscribers (tenant_id, id) WHERE active;

CREATE TABLE devices (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL,
    mac           TEXT    NOT NULL,
    router_id     INTEGER,
    last_seen     INTEGER NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    UNIQUE (subscriber_id, mac)
);
CREATE INDEX devices_last_seen ON devices (last_seen);

CREATE TABLE vouchers (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id           INTEGER NOT NULL,
    router_id           INTEGER NOT NULL,
    code                TEXT    NOT NULL,
    plan_id             INTEGER NOT NULL,
    status              TEXT    NOT NULL DEFAULT 'unused'
                        CHECK (status IN ('unused', 'active', 'expired', 'revoked')),
    activation_deadline INTEGER,
    purchase_deadline   INTEGER,
    duration_ms         INTEGER NOT NULL,
    started_at          INTEGER,
    expected_end        INTEGER,
    expired_reason      TEXT,
    expired_at          INTEGER,
    removed_from_router INTEGER NOT NULL DEFAULT 0,
    lease_holder        TEXT,
    lease_until         INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    -- Voucher::deadline(): the next instant at which time alone changes the voucher.
    deadline            INTEGER GENERATED ALWAYS AS (
        CASE status
            WHEN 'unused' THEN COALESCE(MIN(activation_deadline, purchase_deadline),
                                        activation_deadline, purchase_deadline)
            WHEN 'active' THEN expected_end
            ELSE CASE WHEN removed_from_router THEN NULL
                      ELSE COALESCE(expired_at, expected_end) END
        END) STORED,
    UNIQUE (tenant_id, code)
);
-- Deadlines by status: the generated deadline folds status in (activation and purchase
-- deadlines while unused, expected end while active, expiry until removed).
CREATE INDEX vouchers_due ON vouchers (deadline, id) WHERE deadline IS NOT NULL;
CREATE INDEX vouchers_router_status ON vouchers (router_id, status);

CREATE TABLE plans (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    price_micros INTEGER NOT NULL,
    currency     TEXT    NOT NULL,
    duration_ms  INTEGER,
    rate_limit   TEXT,
    UNIQUE (tenant_id, name)
);

CREATE TABLE customers (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    phone     TEXT
);

CREATE TABLE services (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id         INTEGER NOT NULL,
    customer_id       INTEGER NOT NULL,
    router_id         INTEGER NOT NULL,
    plan_id           INTEGER NOT NULL,
    status            TEXT    NOT NULL
                      CHECK (status IN ('active', 'suspended', 'inactive', 'terminated', 'pending')),
    connection_kind   TEXT    NOT NULL CHECK (connection_kind IN ('pppoe', 'static_ip')),
    pppoe_username    TEXT,
    pppoe_password    TEXT,
    pppoe_profile     TEXT,
    static_address    TEXT,
    next_billing_date TEXT    NOT NULL,
    billing_day       INTEGER NOT NULL,
    next_charge_on    TEXT    NOT NULL,
    provisioned       INTEGER NOT NULL DEFAULT 0,
    provisioned_at    INTEGER,
    deprovisioned_at  INTEGER,
    lease_holder      TEXT,
    lease_until       INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX services_router_pppoe_username ON services (router_id, pppoe_username)
    WHERE pppoe_username IS NOT NULL;
-- Provisioning sweep: by provisioned flag and status, in due-date order.
CREATE INDEX services_provisioning ON services (tenant_id, provisioned, status, next_billing_date, id);
-- Provisioned but no longer active (awaiting deprovisioning): few rows, in due-date order.
CREATE INDEX services_deprovision ON services (tenant_id, next_billing_date, id)
    WHERE provisioned AND status <> 'active';
-- Billing: active services by next period start.
CREATE INDEX services_billable ON services (tenant_id, next_charge_on, id) WHERE status = 'active';
-- Reminders: active services by due date.
CREATE INDEX services_due_date ON services (tenant_id, next_billing_date, id) WHERE status = 'active';
-- Reconciliation: services of a router.
CREATE INDEX services_router ON services (router_id, provisioned, status);

CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id   INTEGER NOT NULL,
    service_id    INTEGER,
    kind          TEXT    NOT NULL CHECK (kind IN ('charge', 'payment')),
    amount_micros INTEGER NOT NULL,
    currency      TEXT    NOT NULL,
    period_start  TEXT,
    key           TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL
);
-- Exactly one charge per (service, period), whatever the key says.
CREATE UNIQUE INDEX ledger_charge_service_period ON ledger (service_id, period_start)
    WHERE kind = 'charge';
CREATE INDEX ledger_service ON ledger (service_id, created_at, id);
CREATE INDEX ledger_customer ON ledger (customer_id, created_at, id);

CREATE TABLE notices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL,
    recipient    TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    deadline     INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'abandoned')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    lease_holder TEXT,
    lease_until  INTEGER,
    UNIQUE (recipient, kind, deadline)
);
-- Pending notices oldest first (claim_pending), and counts by status.
CREATE INDEX notices_by_status ON notices (status, created_at, id);

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    tenant_id INTEGER,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    router_id INTEGER,
    outcome   TEXT    NOT NULL,
    reason    TEXT
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_router ON audit_events (router_id, at, id) WHERE router_id IS NOT NULL;

CREATE TABLE router_status (
    router_id       INTEGER PRIMARY KEY,
    online          INTEGER NOT NULL,
    checked_at      INTEGER NOT NULL,
    changed_at      INTEGER NOT NULL,
    clock_skew_secs INTEGER,
    version         TEXT,
    last_error      TEXT
);

CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
);
