"""Clients that misbehave, for the hardening tests: bodies abandoned before their end, bodies trickled a byte at a
time; the worker processes' memory as /proc tells it, and the SIGTERM Kubernetes sends."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from mltemplate.report.loadtest import Server
from tests.service_client import request

CHUNK = 64 * 2**10


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def status_of(sock: socket.socket, timeout: float) -> int | None:
    """The status of the answer on `sock`, or None when the server closed or reset it without one."""
    sock.settimeout(timeout)
    try:
        head = sock.recv(4096)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def abandoned_chunked_body(url: str, size: int, *, wait_s: float = 60.0) -> int | None:
    """POST a chunked body of `size` bytes without its final chunk, then wait for whatever the server answers."""
    with socket.create_connection(address(url), timeout=wait_s) as sock:
        head = (
            "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            sock.sendall(head.encode())
            chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
            for _ in range(size // CHUNK):
                sock.sendall(chunk)
        except OSError:  # the server refused and closed while we were still sending
            pass
        return status_of(sock, wait_s)


class Tricklers:
    """`count` connections that each send their headers, then their body one byte per `interval_s`; when the server
    cuts one off, it connects again, so that `count` stay open for as long as this runs."""

    def __init__(self, url: str, count: int, *, chunked: bool = False, interval_s: float = 1.0) -> None:
        self.url, self.count, self.chunked, self.interval_s = url, count, chunked, interval_s
        self.stop = threading.Event()
        self.answers: Counter[int | None] = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _head(self) -> bytes:
        length = "Transfer-Encoding: chunked" if self.chunked else "Content-Length: 100000"
        return f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode()

    def _run(self) -> None:
        byte = b"1\r\n \r\n" if self.chunked else b" "
        while not self.stop.is_set():
            try:
                with socket.create_connection(address(self.url), timeout=30) as sock:
                    sock.sendall(self._head())
                    sock.settimeout(self.interval_s)
                    answer: int | None = None
                    while not self.stop.is_set():
                        sock.sendall(byte)
                        try:
                            data = sock.recv(4096)
                        except TimeoutError:
                            continue
                        parts = data.split(b" ", 2)
                        answer = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                        break
            except OSError:
                answer = None
                time.sleep(0.1)
            with self.lock:
                self.answers[answer] += 1

    def __enter__(self) -> Tricklers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)


def good_clients(url: str, body: bytes, *, clients: int, seconds: float) -> Counter[int]:
    """`clients` threads POSTing `body` for `seconds`; the statuses they got (0: no answer)."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            try:
                status = request(url, "/predict", body=body, headers={"Content-Type": "application/json"}).status
            except OSError:
                status = 0
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return statuses


def workers(server: Server) -> list[int]:
    """The pids of the server's worker processes (BentoML's `_bentoml_impl.worker.service`, which circus starts in
    sessions of their own: found as descendants of the server's process)."""
    children: dict[int, list[int]] = {}
    commands: dict[int, bytes] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            commands[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [server.pgid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        if b"_bentoml_impl.worker.service" in commands.get(pid, b""):
            found.append(pid)
    return sorted(found)


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


def sigterm_and_wait(server: Server) -> None:
    """SIGTERM as Kubernetes sends it, then wait until the server and its workers have exited."""
    pids = [server.pgid, *workers(server)]
    os.killpg(server.pgid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in pids):
        assert time.monotonic() < deadline, "the service did not exit within 60 s of SIGTERM"
        time.sleep(0.2)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
