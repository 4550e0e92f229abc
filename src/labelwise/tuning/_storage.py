"""Optuna storage URLs: the SQLite default, PostgreSQL / MySQL across machines, and
Optuna's journal file for a shared filesystem.

* ``sqlite:///OUTPUT/study.db`` (default): one machine, any number of worker processes.
* ``postgresql://user:pass@host:5432/db``: machines that reach one PostgreSQL server. The
  URL is used as written when psycopg2 is installed; with only psycopg 3 (the
  ``labelwise[postgres]`` extra) it is read as ``postgresql+psycopg://``.
* ``journal:///shared/path/study.log``: machines that share a filesystem (NFS), no server.
  Optuna's journal storage has no heartbeat: a trial whose process died stays RUNNING
  instead of being retried.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labelwise.errors import ConfigError, MissingDependencyError, require
from labelwise.outputs.names import STUDY_DB

__all__ = ["claim_lock", "default_storage", "make_storage", "has_heartbeat", "display_url",
           "optuna_module", "heartbeat_seconds"]


def heartbeat_seconds() -> tuple[int, int]:
    """The heartbeat interval and the grace period after which a silent trial is failed and
    retried (``LABELWISE_HEARTBEAT``, default 30 s; ``LABELWISE_GRACE``, default 3x)."""
    import os

    beat = int(os.environ.get("LABELWISE_HEARTBEAT", "30"))
    return beat, int(os.environ.get("LABELWISE_GRACE", str(3 * beat)))


def optuna_module() -> Any:
    return require("optuna", what="tuning needs optuna", extra="tune")


def default_storage(output_dir: Path) -> str:
    return f"sqlite:///{output_dir.resolve() / STUDY_DB}"


def display_url(url: str) -> str:
    """The URL with its password masked, for logs and files."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


def _sqlalchemy_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        rest = url.split("://", 1)[1]
        if importlib.util.find_spec("psycopg2") is not None:
            return f"postgresql://{rest}"
        if importlib.util.find_spec("psycopg") is not None:
            return f"postgresql+psycopg://{rest}"
        raise MissingDependencyError("a postgresql:// storage needs a PostgreSQL driver",
                                     where=f"storage {display_url(url)}",
                                     fix="pip install 'labelwise[postgres]'", code="LW401")
    return url


def has_heartbeat(url: str) -> bool:
    return not url.startswith("journal://")


def make_storage(url: str) -> Any:
    """An Optuna storage for ``url``; RDB storages get the heartbeat and trial retry."""
    optuna = optuna_module()
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal://"))
        if not path.parent.is_dir():
            raise ConfigError("the journal file's directory does not exist",
                              where=f"storage {url}", fix="create it on the shared "
                              "filesystem, or give another journal:///path", code="LW332")
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ConfigError("not a storage URL", where=f"storage {url!r}", fix="use "
                          "sqlite:///path.db, postgresql://user:pass@host/db or "
                          "journal:///path.log", code="LW332")
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    with warnings.catch_warnings():  # the heartbeat API is marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=2)
        beat, grace = heartbeat_seconds()
        try:
            return optuna.storages.RDBStorage(
                _sqlalchemy_url(url), heartbeat_interval=beat, grace_period=grace,
                heartbeat_stale_trial_callback=retry, **kwargs)
        except MissingDependencyError:
            raise
        except Exception as exc:  # sqlalchemy.exc.OperationalError and friends
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot open the study storage: {first[:200]}",
                              where=f"storage {display_url(url)}", fix="check that the "
                              "server runs and the URL, user and database are right",
                              code="LW333") from None


@contextlib.contextmanager
def claim_lock(url: str, study_name: str) -> Iterator[None]:
    """Held while a process checks the study's trial count and claims the next trial, so
    that processes on one storage never claim more than ``n_trials`` between them.

    PostgreSQL: an advisory lock on the server (every machine sees it); SQLite and journal
    files: a lock file beside them. Other servers (MySQL) get no lock: two processes that
    claim at the same moment may then run one trial more than ``n_trials``.
    """
    if url.startswith(("postgresql://", "postgres://")):
        import hashlib

        import sqlalchemy

        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big",
                             signed=True)
        engine = _engine(_sqlalchemy_url(url))
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    path = None
    if url.startswith("journal://"):
        path = url.removeprefix("journal://")
    elif url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
    if path is None:
        yield
        return
    from filelock import FileLock

    with FileLock(f"{path}.claim.lock"):
        yield


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> Any:
    import sqlalchemy

    return sqlalchemy.create_engine(url, pool_pre_ping=True)
