-- RADIUS sessions (issue 22): what the routers in RADIUS mode report in
-- accounting, one row per (router, Acct-Session-Id). stopped_at is NULL while
-- the session is live; closed rows are kept for history until the retention
-- deletes them.
CREATE TABLE IF NOT EXISTS radius_sessions (
    router_id       BIGINT      NOT NULL,
    session_id      TEXT        NOT NULL,
    tenant_id       BIGINT      NOT NULL,
    user_name       TEXT        NOT NULL,
    kind            TEXT        NOT NULL CHECK (kind IN ('hotspot', 'ppp')),
    address         TEXT,
    calling_station TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    input_octets    BIGINT      NOT NULL CHECK (input_octets >= 0),
    output_octets   BIGINT      NOT NULL CHECK (output_octets >= 0),
    stopped_at      TIMESTAMPTZ,
    PRIMARY KEY (router_id, session_id)
);
-- live_on_router, close_router; live_of_user; close_stale; delete_closed_before.
CREATE INDEX IF NOT EXISTS radius_sessions_router ON radius_sessions (router_id, stopped_at, started_at);
CREATE INDEX IF NOT EXISTS radius_sessions_user ON radius_sessions (tenant_id, user_name, stopped_at);
CREATE INDEX IF NOT EXISTS radius_sessions_updated ON radius_sessions (stopped_at, updated_at);
