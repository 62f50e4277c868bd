"""Drives the RouterOS simulator with the Python client librouteros (a client we did not write).

Usage: python thirdparty_librouteros.py HOST PORT USER PASSWORD [CA_FILE]
With CA_FILE the connection uses api-ssl (TLS) verified against that certificate.
Exits non-zero with a message on the first mismatch; prints "librouteros: all checks passed".
"""

import ssl
import sys

from librouteros import connect
from librouteros.exceptions import TrapError
from librouteros.query import And, Key, Or

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ca_file = sys.argv[5] if len(sys.argv) > 5 else None


def wrapper():
    if ca_file is None:
        return None
    ctx = ssl.create_default_context(cafile=ca_file)
    return lambda sock: ctx.wrap_socket(sock, server_hostname="localhost")


def open_api(pw):
    return connect(host=host, port=port, username=user, password=pw, timeout=10, ssl_wrapper=wrapper())


def expect_trap(message, fn):
    try:
        fn()
    except TrapError as e:
        assert e.message == message, f"trap {e.message!r}, expected {message!r}"
        return e
    raise AssertionError(f"expected trap {message!r}, got none")


def check(label, got, want):
    assert got == want, f"{label}: got {got!r}, want {want!r}"


# Login refused, then accepted.
expect_trap("invalid user name or password (6)", lambda: open_api("not-the-password"))
api = open_api(password)

name, ident, profile, comment = Key("name"), Key(".id"), Key("profile"), Key("comment")
users = api.path("ip", "hotspot", "user")

# Empty menu: !empty then !done, read as no rows.
check("empty print", list(users), [])

# add returns the new id.
alice = users.add(name="alice", password="pw", comment="isp:1", **{"limit-uptime": "90m"})
bob = users.add(name="bob", password="pw2")
carol = users.add(name="carol", password="pw3", profile="default")
check("ids", (alice, bob, carol), ("*1", "*2", "*3"))

# print with proplist and queries.
check("proplist+eq", list(users.select(ident, name).where(name == "alice")), [{".id": "*1", "name": "alice"}])
rows = list(users.select(name).where(Or(name == "alice", name == "carol")))
check("or", sorted(r["name"] for r in rows), ["alice", "carol"])
rows = list(users.select(name).where(name != "alice"))
check("not equal", sorted(r["name"] for r in rows), ["bob", "carol"])
rows = list(users.select(name).where(name.In("bob", "carol", "nobody")))
check("in", sorted(r["name"] for r in rows), ["bob", "carol"])
rows = list(users.select(name).where(And(profile == "default", comment == "isp:1")))
check("and", rows, [{"name": "alice"}])
rows = list(users.select(name).where(ident > "*1", ident < "*3"))
check("ordering", rows, [{"name": "bob"}])
rows = list(users.select(name, Key("limit-uptime")).where(["?comment"]))
check("presence + normalised time", rows, [{"name": "alice", "limit-uptime": "1h30m"}])
rows = list(users.select(name).where(["?-comment"]))
check("absence", sorted(r["name"] for r in rows), ["bob", "carol"])
check("count-only", list(api("/ip/hotspot/user/print", **{"count-only": ""})), [{"ret": 3}])

# set (booleans go out as yes/no, come back as true/false).
users.update(**{".id": bob, "disabled": True, "comment": "isp:2"})
rows = list(users.select(name, Key("disabled"), comment).where(name == "bob"))
check("set", rows, [{"name": "bob", "disabled": True, "comment": "isp:2"}])

# remove, and remove again.
users.remove(carol)
check("after remove", sorted(r["name"] for r in users.select(name)), ["alice", "bob"])
expect_trap("no such item", lambda: users.remove(carol))

# Traps, verbatim.
expect_trap("failure: already have user with this name for this server", lambda: users.add(name="alice"))
expect_trap("invalid time value for argument limit-uptime", lambda: users.add(name="dave", **{"limit-uptime": "soon"}))
expect_trap("no such command or directory (xyz)", lambda: list(api("/ip/xyz/print")))
secrets = api.path("ppp", "secret")
secrets.add(name="pppoe-1", password="x", service="pppoe", **{"remote-address": "10.9.0.2"})
expect_trap("failure: secret with the same name already exists", lambda: secrets.add(name="pppoe-1"))
expect_trap("invalid value for argument remote-address", lambda: secrets.add(name="pppoe-2", **{"remote-address": "10.9.0"}))
expect_trap("input does not match any value of profile", lambda: secrets.add(name="pppoe-3", profile="gold"))
lists = api.path("ip", "firewall", "address-list")
lists.add(list="expired", address="10.0.0.7", comment="isp:3")
expect_trap("failure: already have such entry", lambda: lists.add(list="expired", address="10.0.0.7"))

# A hotspot login through the API creates a session.
tuple(api("/ip/hotspot/active/login", user="alice", password="pw", **{"mac-address": "AA:BB:CC:00:00:01", "ip": "10.5.50.2"}))
active = list(api.path("ip", "hotspot", "active").select(Key("user"), Key("mac-address")))
check("hotspot session", active, [{"user": "alice", "mac-address": "AA:BB:CC:00:00:01"}])

# Health menus.
ident_rows = list(api.path("system", "identity"))
check("identity", ident_rows, [{"name": "MikroTik"}])
resource = list(api.path("system", "resource"))[0]
assert resource["board-name"] == "CHR", resource

api.close()
print("librouteros: all checks passed")
