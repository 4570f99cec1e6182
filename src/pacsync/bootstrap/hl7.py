"""The MLLP listener wired: its address, limits, policy and TLS from the settings,
its messages kept in the store's message journal.  It runs its own asyncio loop
on a thread, so the CLI and ``pacsync serve`` (beside uvicorn's loop) start it
the same way."""

from __future__ import annotations

import asyncio
import ssl
import threading
from concurrent.futures import Future

from prometheus_client import CollectorRegistry, start_http_server

from pacsync import bootstrap
from pacsync.bootstrap.tls import server_context
from pacsync.config import Settings
from pacsync.connectors.hl7.intake import GroupCommit, Intake
from pacsync.connectors.hl7.listener import ListenerOptions, MllpListener
from pacsync.connectors.hl7.metrics import register
from pacsync.db.messages import MessageStore
from pacsync.domain.messaging import PROCESSED_KINDS, AcceptPolicy
from pacsync.errors import ConfigError


def policy(settings: Settings) -> AcceptPolicy:
    kinds = [k.strip().upper() for k in settings.hl7_accept.split(",") if k.strip()]
    return AcceptPolicy(kinds=frozenset(kinds) if kinds else PROCESSED_KINDS)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    return server_context(
        settings.hl7_tls_cert, settings.hl7_tls_key, settings.hl7_tls_ca, what="MLLP listener",
        env="PACSYNC_HL7",
    )  # fmt: skip


class RunningListener:
    """An MLLP listener on a thread of its own."""

    def __init__(self, listener: MllpListener, commit: GroupCommit, journal: MessageStore) -> None:
        self.listener = listener
        self.commit = commit
        self.journal = journal
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="mllp-listener", daemon=True)
        self._started: Future[int] = Future()

    def start(self) -> int:
        """Listen; the port listened on."""
        self._thread.start()
        return self._started.result(timeout=30)

    def stop(self) -> None:
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.listener.close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self.commit.close()
        self.journal.close()  # its held connection

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.listener.start())
        except OSError as exc:  # the address is taken or cannot be bound
            options = self.listener.options
            self._started.set_exception(
                ConfigError(
                    f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
                    hint="Choose another port (--port, PACSYNC_HL7_PORT) or stop what holds it",
                )
            )
            return
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(self.listener.port)
        self._loop.run_forever()
        self._loop.close()


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve this process's ``pacsync_hl7_*`` metrics over HTTP (a thread of its own)."""
    registry = CollectorRegistry()
    register(registry)
    try:
        start_http_server(port, host, registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
            hint="Choose another --metrics-port or stop what holds it",
        ) from exc


def listener(
    settings: Settings,
    store: bootstrap.Store,
    *,
    host: str | None = None,
    port: int | None = None,
    feed: str | None = None,
) -> RunningListener:
    journal = MessageStore(store.engine)
    commit = GroupCommit(journal)
    intake = Intake(
        feed or settings.hl7_feed,
        commit,
        policy=policy(settings),
        default_encoding=settings.hl7_encoding,
    )
    options = ListenerOptions(
        host=host or settings.hl7_host,
        port=settings.hl7_port if port is None else port,
        max_message_bytes=settings.hl7_max_message_kb * 1024,
        idle_timeout_s=settings.hl7_idle_timeout_s,
        tls=tls_context(settings),
    )
    return RunningListener(MllpListener(intake, options), commit, journal)


__all__ = ["RunningListener", "listener", "policy", "serve_metrics", "tls_context"]
