-- One hotspot user namespace per tenant (issue 16). A hotspot user on the router
-- is named by a subscriber's username or by a voucher's code, so in one tenant no
-- two of those may be equal: otherwise the engine acts on the wrong object.
--
-- hotspot_names holds every such name once, keyed (tenant_id, name). It is kept
-- by triggers rather than by the adapter, so that every writer (the repositories,
-- bulk loads, imports, an operator's SQL) keeps it, inside the writing statement:
-- a taken name fails that INSERT with a unique violation on hotspot_names_pkey,
-- and nothing of it is written. Inserts and deletes use statement-level triggers
-- over transition tables (one INSERT ... SELECT per statement, cheap for bulk
-- loads); a change of a name or tenant is rare and handled per row.
--
-- Idempotent: every object is created if missing or replaced, and the backfill
-- skips names already recorded for their owner. A database that already holds a
-- duplicate fails this migration with a unique violation naming the key; it is
-- rolled back whole (one transaction) and must be resolved by hand.

CREATE TABLE IF NOT EXISTS hotspot_names (
    tenant_id BIGINT NOT NULL,
    name      TEXT   NOT NULL,
    kind      TEXT   NOT NULL CHECK (kind IN ('subscriber', 'voucher')),
    owner_id  BIGINT NOT NULL,
    CONSTRAINT hotspot_names_pkey PRIMARY KEY (tenant_id, name)
);

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

CREATE OR REPLACE FUNCTION hotspot_names_subscribers_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    SELECT tenant_id, username, 'subscriber', id FROM new_rows;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION hotspot_names_subscribers_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM hotspot_names h USING old_rows o
    WHERE h.tenant_id = o.tenant_id AND h.name = o.username AND h.kind = 'subscriber' AND h.owner_id = o.id;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION hotspot_names_subscribers_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.username AND kind = 'subscriber' AND owner_id = OLD.id;
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.username, 'subscriber', NEW.id);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION hotspot_names_vouchers_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    SELECT tenant_id, code, 'voucher', id FROM new_rows;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION hotspot_names_vouchers_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM hotspot_names h USING old_rows o
    WHERE h.tenant_id = o.tenant_id AND h.name = o.code AND h.kind = 'voucher' AND h.owner_id = o.id;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION hotspot_names_vouchers_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM hotspot_names
    WHERE tenant_id = OLD.tenant_id AND name = OLD.code AND kind = 'voucher' AND owner_id = OLD.id;
    INSERT INTO hotspot_names (tenant_id, name, kind, owner_id)
    VALUES (NEW.tenant_id, NEW.code, 'voucher', NEW.id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS hotspot_names_ins ON subscribers;
CREATE TRIGGER hotspot_names_ins AFTER INSERT ON subscribers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hotspot_names_subscribers_ins();
DROP TRIGGER IF EXISTS hotspot_names_del ON subscribers;
CREATE TRIGGER hotspot_names_del AFTER DELETE ON subscribers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION hotspot_names_subscribers_del();
DROP TRIGGER IF EXISTS hotspot_names_upd ON subscribers;
CREATE TRIGGER hotspot_names_upd AFTER UPDATE OF tenant_id, username ON subscribers FOR EACH ROW
    WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION hotspot_names_subscribers_upd();

DROP TRIGGER IF EXISTS hotspot_names_ins ON vouchers;
CREATE TRIGGER hotspot_names_ins AFTER INSERT ON vouchers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hotspot_names_vouchers_ins();
DROP TRIGGER IF EXISTS hotspot_names_del ON vouchers;
CREATE TRIGGER hotspot_names_del AFTER DELETE ON vouchers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION hotspot_names_vouchers_del();
DROP TRIGGER IF EXISTS hotspot_names_upd ON vouchers;
CREATE TRIGGER hotspot_names_upd AFTER UPDATE OF tenant_id, code ON vouchers FOR EACH ROW
    WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.code IS DISTINCT FROM NEW.code)
    EXECUTE FUNCTION hotspot_names_vouchers_upd();
