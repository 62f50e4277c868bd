-- RADIUS sessions (issue 22): what the routers in RADIUS mode report in
-- accounting, one row per (router, Acct-Session-Id). stopped_at is NULL while
-- the session is live; closed rows are kept for history until the retention
-- deletes them.
CREATE TABLE IF NOT EXISTS radius_sessions (
    router_id       BIGINT       NOT NULL,
    session_id      VARCHAR(253) NOT NULL,
    tenant_id       BIGINT       NOT NULL,
    user_name       VARCHAR(253) NOT NULL,
    kind            VARCHAR(16)  NOT NULL CHECK (kind IN ('hotspot', 'ppp')),
    address         VARCHAR(15),
    calling_station VARCHAR(253),
    started_at      DATETIME(6)  NOT NULL,
    updated_at      DATETIME(6)  NOT NULL,
    input_octets    BIGINT       NOT NULL CHECK (input_octets >= 0),
    output_octets   BIGINT       NOT NULL CHECK (output_octets >= 0),
    stopped_at      DATETIME(6),
    PRIMARY KEY (router_id, session_id),
    -- live_on_router, close_router; live_of_user; close_stale; delete_closed_before.
    KEY radius_sessions_router (router_id, stopped_at, started_at),
    KEY radius_sessions_user (tenant_id, user_name, stopped_at),
    KEY radius_sessions_updated (stopped_at, updated_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
