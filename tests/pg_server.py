"""A throw-away PostgreSQL server for the server-store tests and benchmarks.

Debian's ``postgresql`` package (``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/<ver>/bin``)
makes a cluster in a fresh temporary directory, listening on 127.0.0.1 only (a free port) and
on a Unix socket inside that directory; password logins (scram-sha-256) over TCP, trust on the
socket. PostgreSQL refuses to run as root, so when this process is root the server runs as the
package's own unprivileged ``postgres`` user (``nobody`` where it is missing): the directory is
given to that user and ``initdb`` / ``pg_ctl`` are started with its uid and gid (no sudo, no new
user). Otherwise the server runs as the current user.

    server = LocalServer(); server.start()
    url = server.create_database("t1")      # postgresql://nas_hw:<pw>@127.0.0.1:<port>/t1
    server.restart(); server.stop()
"""
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

USER = "nas_hw"  # the role the stores log in as (not a superuser; owns the test databases)
ADMIN = "nas_hw_admin"


class ServerUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bindir():
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding ``initdb`` and ``pg_ctl`` (or ``$PG_BINDIR``)."""
    if os.environ.get("PG_BINDIR"):
        return os.environ["PG_BINDIR"]
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
             if os.path.isfile(os.path.join(d, "initdb")) and os.path.isfile(os.path.join(d, "pg_ctl"))]
    if not found:
        on_path = shutil.which("pg_ctl")
        if on_path and shutil.which("initdb"):
            return os.path.dirname(on_path)
        raise ServerUnavailable("PostgreSQL server binaries not found (initdb, pg_ctl): "
                                "apt-get install postgresql")
    return max(found, key=lambda d: int(d.split("/")[-2].split(".")[0]))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """One PostgreSQL cluster in a temporary directory (see the module docstring)."""

    def __init__(self):
        self.bindir = find_bindir()
        self.root = tempfile.mkdtemp(prefix="nas_hw_pg.")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.port = None
        self.password = "pw-" + secrets.token_hex(8)
        self.run_as = None
        if os.geteuid() == 0:
            name = "postgres" if _has_user("postgres") else "nobody"
            entry = pwd.getpwnam(name)
            self.run_as = (entry.pw_uid, entry.pw_gid, name)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._initdb()

    def _run(self, *args, check=True, timeout=120):
        kwargs = {}
        if self.run_as is not None:
            kwargs = dict(user=self.run_as[0], group=self.run_as[1], extra_groups=[])
        env = dict(os.environ, LC_ALL="C", LANG="C")
        for k in [k for k in env if k.startswith("PG")]:
            env.pop(k)
        return subprocess.run([os.path.join(self.bindir, args[0]), *args[1:]], capture_output=True, text=True,
                              check=check, timeout=timeout, env=env, cwd=self.root, **kwargs)

    def _initdb(self):
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as fh:
            fh.write(self.password + "\n")
        if self.run_as is not None:
            os.chown(pwfile, self.run_as[0], self.run_as[1])
        try:
            self._run("initdb", "-D", self.data, "-U", ADMIN, "--pwfile", pwfile, "-E", "UTF8", "--no-locale",
                      "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"initdb failed: {err.stderr.strip()[-2000:]}") from None
        finally:
            os.remove(pwfile)

    def start(self):
        for _ in range(5):
            self.port = self.port or _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                       "-c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB")
            # a generous wait: on a loaded 2-core machine a start can take tens of seconds
            proc = self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "300", "start",
                             check=False, timeout=360)
            if proc.returncode == 0:
                break
            if "already in use" not in self.log_tail(4000):
                raise RuntimeError(f"pg_ctl start failed: {proc.stderr.strip()} {self.log_tail()}")
            self.port = None  # the port was taken meanwhile: try another
        if not getattr(self, "_roles_made", False):
            self.admin("CREATE ROLE {} LOGIN PASSWORD '{}'".format(USER, self.password))
            self._roles_made = True
        return self

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "300", "stop", check=False, timeout=360)

    def restart(self, mode="fast"):
        # -l again: without it the restarted server would write to our pipe (restart reuses the
        # server's options, not pg_ctl's log file)
        proc = self._run("pg_ctl", "-D", self.data, "-l", self.log, "-m", mode, "-w", "-t", "300", "restart",
                         check=False, timeout=360)
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed: {proc.stderr.strip()} {self.log_tail()}")

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n=2000):
        try:
            with open(self.log) as fh:
                return fh.read()[-n:]
        except OSError:
            return ""

    def admin(self, sql):
        """Runs one SQL statement as the superuser over the Unix socket (psql)."""
        proc = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-h", self.root, "-p", str(self.port), "-U", ADMIN, "-d", "postgres", "-c", sql],
                              capture_output=True, text=True, timeout=60,
                              env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        if proc.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {proc.stderr.strip()}")
        return proc.stdout

    def url(self, dbname, password=True, user=USER):
        secret = f":{self.password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname):
        """A fresh database owned by the store role; returns its URL (with the password)."""
        self.admin(f"CREATE DATABASE {dbname} OWNER {USER}")
        return self.url(dbname)


def _has_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def wait_until(predicate, timeout_s=60.0, step_s=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return False
