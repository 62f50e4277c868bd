-- One hotspot user namespace per tenant (issue 16). A hotspot user on the router
-- is named by a subscriber's username or by a voucher's code, so in one tenant no
-- two of those may be equal: otherwise the engine acts on the wrong object.
--
-- hotspot_names holds every such name once, keyed (tenant_id, name). It is kept
-- by triggers rather than by the adapter, so that every writer (the repositories,
-- bulk loads, imports, an operator's SQL) keeps it, inside the writing statement:
-- a taken name fails that INSERT with a UNIQUE constraint error on hotspot_names,
-- and the statement is undone whole (SQLite has only row-level triggers; a
-- trigger's failure aborts the statement that fired it).
--
-- Idempotent: every object is created if missing, and the backfill skips names
-- already recorded for their owner. A database that already holds a duplicate
-- fails this migration with a UNIQUE constraint error; it is rolled back whole
-- and must be resolved by hand.

CREATE TABLE IF NOT EXISTS hotspot_names (
    tenant_id INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('subscriber', 'voucher')),
    owner_id  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
SELECT s.tenant_id, s.username, 'subscriber', s.id FROM subscribers s
WHERE NOT EXISTS (SELECT 1 FROM hotspot_names h
                  WHERE h.tenant_id = s.tenant_id AND h.name = s.username
                    AND h.kind = 'subscriber' AND h.owner_id = s.id);
INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
SELECT v.tenant_id, v.code, 'voucher', v.id FROM vouchers v
WHERE NOT EXISTS (SELECT 1 FROM hotspot_names h
                  WHERE h.tenant_id = v.tenant_id AND h.name = v.code
                    AND h.kind = 'voucher' AND h.owner_id = v.id);

CREATE TRIGGER IF NOT EXISTS hotspot_names_subscribers_ins AFTER INSERT ON subscribers
BEGIN
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.username, 'subscriber', NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS hotspot_names_subscribers_del AFTER DELETE ON subscribers
BEGIN
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.username AND kind = 'subscriber' AND owner_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS hotspot_names_subscribers_upd AFTER UPDATE OF tenant_id, username ON subscribers
WHEN OLD.tenant_id IS NOT NEW.tenant_id OR OLD.username IS NOT NEW.username
BEGIN
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.username AND kind = 'subscriber' AND owner_id = OLD.id;
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.username, 'subscriber', NEW.id);
END;

CREATE TRIGGER IF NOT EXISTS hotspot_names_vouchers_ins AFTER INSERT ON vouchers
BEGIN
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.code, 'voucher', NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS hotspot_names_vouchers_del AFTER DELETE ON vouchers
BEGIN
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.code AND kind = 'voucher' AND owner_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS hotspot_names_vouchers_upd AFTER UPDATE OF tenant_id, code ON vouchers
WHEN OLD.tenant_id IS NOT NEW.tenant_id OR OLD.code IS NOT NEW.code
BEGIN
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.code AND kind = 'voucher' AND owner_id = OLD.id;
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.code, 'voucher', NEW.id);
END;
