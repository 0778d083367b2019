"""A minimal HTTP/1.1 client for ``benchmarks/hostile_input.py``, on plain sockets, so that
bodies and paths reach the server byte for byte (no client-side normalising of ``..`` or
re-encoding), and a ``/healthz`` poller that runs beside the attack. 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: no answer (timeout, connection closed)
    seconds: float  # from the first byte sent to the status line
    error: str = ""
    detail: str = ""  # the start of the response body, for the report


def _read_status(sock: socket.socket) -> tuple[int, bytes]:
    """The status code of the response on ``sock`` and the bytes read so far."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before a status line")
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def _read_detail(sock: socket.socket, data: bytes, limit: int = 4096) -> str:
    """The start of the body (``Connection: close``: read to EOF, at most ``limit`` bytes)."""
    sock.settimeout(1.0)
    try:
        while len(data) < limit:
            chunk = sock.recv(limit)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data.partition(b"\r\n\r\n")[2][:200].decode("utf-8", "replace")


def send(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
         timeout: float = 10.0) -> Reply:
    """One request on a fresh connection. A server may answer (say 413) and close before the
    body is all sent: the answer is still read after a broken pipe."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    started = time.perf_counter()
    error = ""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError) as exc:
                error = f"send: {type(exc).__name__}"
            sock.settimeout(max(0.1, timeout - (time.perf_counter() - started)))
            status, data = _read_status(sock)
            seconds = time.perf_counter() - started
            return Reply(status, seconds, error, _read_detail(sock, data))
    except (OSError, ValueError, IndexError) as exc:
        return Reply(None, time.perf_counter() - started,
                     (error + " " if error else "") + f"{type(exc).__name__}: {exc}")


class HealthPoller:
    """Polls ``GET /healthz`` every ``interval`` seconds on its own thread, one request at a
    time, and keeps every latency (an unanswered poll counts its whole wait and is counted).
    ``mark()`` starts a window; ``since_mark()`` returns the window's latencies."""

    def __init__(self, port: int, interval: float = 0.005, timeout: float = 5.0) -> None:
        self.port, self.interval, self.timeout = port, interval, timeout
        self._samples: list[tuple[float, float, bool]] = []  # (sent at, seconds, answered)
        self._mark = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "HealthPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 1)

    def _loop(self) -> None:
        while not self._stop.is_set():
            sent = time.perf_counter()
            reply = send(self.port, "GET", "/healthz", timeout=self.timeout)
            self._samples.append((sent, reply.seconds, reply.status == 200))
            self._stop.wait(self.interval)

    def mark(self) -> None:
        self._mark = time.perf_counter()

    def since_mark(self) -> tuple[list[float], int]:
        """(latencies in seconds, number unanswered) of the polls sent since ``mark()``."""
        window = [s for s in list(self._samples) if s[0] >= self._mark]
        return [s[1] for s in window], sum(1 for s in window if not s[2])

    def latencies_ms(self) -> list[float]:
        return [s[1] * 1000 for s in list(self._samples)]

    def alive(self, timeout: float = 2.0) -> bool:
        """Whether ``/healthz`` answers 200 within ``timeout`` now."""
        return send(self.port, "GET", "/healthz", timeout=timeout).status == 200
