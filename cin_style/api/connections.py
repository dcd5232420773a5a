"""Connection limits for the service: uvicorn's h11 protocol with a deadline for reading
each request and a cap on open connections.

uvicorn times out only idle keep-alive connections, and any byte received cancels that
timer, so a client that sends a byte every few seconds held its connection (and a file
descriptor) forever.  Here every request must arrive whole, headers and body, within
``read_timeout_s`` of the connection opening or of the previous response; and past
``max_connections`` the oldest connection still sending a request is closed, so a flood
of slow clients cannot take the descriptors that /healthz and real clients need.
Accept errors (out of descriptors) are logged once a minute, not once per connection.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0  # a whole request, headers and body (25 MB at 1 MB/s fits)
MAX_CONNECTIONS = 512
DESCRIPTOR_RESERVE = 64  # files the process keeps for itself (model, logs, temp files)


def connection_cap(wanted: int = MAX_CONNECTIONS) -> int:
    """``wanted``, within what the descriptor limit allows (raised to its hard maximum)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, soft - DESCRIPTOR_RESERVE))


def bounded_protocol(read_timeout_s: float = READ_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS):
    """An h11 protocol class for uvicorn (``http=``) with these limits."""
    cap = connection_cap(max_connections)

    class BoundedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _reading_since = 0.0

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()
            if len(self.connections) > cap:
                self._evict_a_slow_reader()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete and not cycle.more_body:
                self._disarm()  # the request is in whole: the app's own timeout takes over

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets its own deadline

        def _arm(self) -> None:
            self._disarm()
            self._reading_since = time.monotonic()
            self._deadline = self.loop.call_later(read_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _reading(self) -> bool:
            return self._deadline is not None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.debug("closed a connection that took over %.0f s to send its request", read_timeout_s)
                self.transport.close()

        def _evict_a_slow_reader(self) -> None:
            readers = [
                c for c in self.connections if isinstance(c, BoundedH11Protocol) and c is not self and c._reading()
            ]
            if readers:
                oldest = min(readers, key=lambda c: c._reading_since)
                oldest._disarm()
                oldest.transport.close()

    return BoundedH11Protocol


class AcceptErrorFilter(logging.Filter):
    """asyncio logs a traceback for every failed accept(); keep one line a minute."""

    def __init__(self, every_s: float = 60.0):
        super().__init__()
        self.every_s, self._last = every_s, -float("inf")

    def filter(self, record: logging.LogRecord) -> bool:
        if "accept" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < self.every_s:
            return False
        self._last = now
        record.exc_info, record.exc_text = None, None
        record.msg, record.args = f"{record.getMessage()} (out of file descriptors?; said once a minute)", ()
        return True
