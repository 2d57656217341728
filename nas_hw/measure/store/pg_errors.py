"""How the server store reads psycopg's errors: a lost session (reconnect and redo) versus a
refused statement, and what to tell a user whose connection was refused."""


def connection_lost(psycopg, conn, err):
    """Whether ``err`` means the session is gone (reconnect and redo) rather than a refused
    statement: a broken connection, or the server's "terminating connection" / "shutting down"
    errors (SQLSTATE class 08, 57P01-57P03), which can arrive before libpq marks it broken."""
    if conn.broken or conn.closed:
        return True
    state = getattr(err, "sqlstate", None) or ""
    return state.startswith("08") or state in ("57P01", "57P02", "57P03") or (
        not state and isinstance(err, psycopg.OperationalError))


def connect_hint(err):
    """What to do about a refused connection (one clause), from libpq's message."""
    text = str(err)
    if "password authentication failed" in text or "no password supplied" in text:
        return " (give the password through PGPASSWORD, ~/.pgpass or PGSERVICE: docs/scaling.md)"
    if "does not exist" in text and "database" in text:
        return " (create it, e.g. `createdb`, or fix the URL's database name)"
    if "timeout" in text or "refused" in text or "could not translate host name" in text:
        return " (is the server running and reachable from this machine?)"
    return ""
