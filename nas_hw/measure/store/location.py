"""Where a store lives: a file path (SQLite) or a server URL (PostgreSQL), and how a URL is shown.

A server URL may carry a password (``postgresql://user:secret@host/db``, or ``?password=``).
Everything nas_hw prints, logs or writes (messages, ``report.json``, ``nas-hw cache ls``) shows
:func:`redact`'s form instead, with the password replaced by ``***``. Pure standard library: usable
where the server driver is not installed.
"""
import os
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

#: URL schemes of a PostgreSQL server store (libpq's own two spellings).
SERVER_SCHEMES = ("postgresql", "postgres")
MASK = "***"


def is_server_url(location):
    """True when ``location`` is a ``postgresql://`` (or ``postgres://``) URL string."""
    if not isinstance(location, str):
        return False
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() in SERVER_SCHEMES


def url_passwords(url):
    """The passwords written in ``url`` (in its user part and as ``?password=``), as given."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found = [userinfo.split(":", 1)[1]] if ":" in userinfo else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password"]
    return [p for p in found if p]


def redact(url):
    """``url`` with any password replaced by ``***`` (user, hosts, database and options kept)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    netloc = f"{userinfo}{at}{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k == "password" for k, _ in pairs):
            query = urlencode([(k, MASK if k == "password" else v) for k, v in pairs], safe="*/")
    # built by hand: urlunsplit drops the empty host of ``postgresql:///db`` (a local socket)
    return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def scrub(text, url):
    """``text`` with ``url``'s password (if any) masked wherever it occurs (e.g. in an error)."""
    text = str(text).replace(url, redact(url))
    for password in url_passwords(url):
        for secret in {password, unquote(password)}:
            text = text.replace(secret, MASK)
    return text


def describe(location):
    """How a store location is shown to a person: a redacted URL, or the file path as given."""
    return redact(location) if is_server_url(location) else os.fspath(location)
