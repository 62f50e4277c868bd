-- One hotspot user namespace per tenant (issue 16). A hotspot user on the router
-- is named by a subscriber's username or by a voucher's code, so in one tenant no
-- two of those may be equal: otherwise the engine acts on the wrong object.
--
-- hotspot_names holds every such name once, keyed (tenant_id, name). It is kept
-- by triggers rather than by the adapter, so that every writer (the repositories,
-- bulk loads, imports, an operator's SQL) keeps it, inside the writing statement:
-- a taken name fails that INSERT with a duplicate key on hotspot_names_pkey (a
-- named unique key, so that the server's message names the table's rule), and
-- InnoDB rolls the whole statement back. MySQL triggers are per row (no
-- transition tables) and may write another table, which is all this needs.
--
-- Idempotent: the table is created if missing, the triggers dropped and created,
-- and the backfill skips names already recorded for their owner. A database that
-- already holds a duplicate fails this migration with a duplicate key naming
-- hotspot_names_pkey, to be resolved by hand.

CREATE TABLE IF NOT EXISTS hotspot_names (
    tenant_id BIGINT       NOT NULL,
    name      VARCHAR(255) NOT NULL,
    kind      VARCHAR(16)  NOT NULL CHECK (kind IN ('subscriber', 'voucher')),
    owner_id  BIGINT       NOT NULL,
    UNIQUE KEY hotspot_names_pkey (tenant_id, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

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

DROP TRIGGER IF EXISTS hotspot_names_subscribers_ins;
CREATE TRIGGER hotspot_names_subscribers_ins AFTER INSERT ON subscribers FOR EACH ROW
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.username, 'subscriber', NEW.id);
DROP TRIGGER IF EXISTS hotspot_names_subscribers_del;
CREATE TRIGGER hotspot_names_subscribers_del AFTER DELETE ON subscribers FOR EACH ROW
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.username AND kind = 'subscriber' AND owner_id = OLD.id;
DROP TRIGGER IF EXISTS hotspot_names_subscribers_upd;
CREATE TRIGGER hotspot_names_subscribers_upd AFTER UPDATE ON subscribers FOR EACH ROW
BEGIN
    IF NOT (OLD.tenant_id <=> NEW.tenant_id AND OLD.username <=> NEW.username) THEN
        DELETE FROM hotspot_names
        WHERE tenant_id = OLD.tenant_id AND name = OLD.username AND kind = 'subscriber' AND owner_id = OLD.id;
        INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
        VALUES (NEW.tenant_id, NEW.username, 'subscriber', NEW.id);
    END IF;
END;

DROP TRIGGER IF EXISTS hotspot_names_vouchers_ins;
CREATE TRIGGER hotspot_names_vouchers_ins AFTER INSERT ON vouchers FOR EACH ROW
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.code, 'voucher', NEW.id);
DROP TRIGGER IF EXISTS hotspot_names_vouchers_del;
CREATE TRIGGER hotspot_names_vouchers_del AFTER DELETE ON vouchers FOR EACH ROW
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.code AND kind = 'voucher' AND owner_id = OLD.id;
DROP TRIGGER IF EXISTS hotspot_names_vouchers_upd;
CREATE TRIGGER hotspot_names_vouchers_upd AFTER UPDATE ON vouchers FOR EACH ROW
BEGIN
    IF NOT (OLD.tenant_id <=> NEW.tenant_id AND OLD.code <=> NEW.code) THEN
        DELETE FROM hotspot_names
        WHERE tenant_id = OLD.tenant_id AND name = OLD.code AND kind = 'voucher' AND owner_id = OLD.id;
        INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
        VALUES (NEW.tenant_id, NEW.code, 'voucher', NEW.id);
    END IF;
END;
