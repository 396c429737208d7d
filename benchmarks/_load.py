"""A light HTTP/1.1 load generator: keep-alive connections on asyncio streams, requests pre-encoded.

httpx spends about 1 ms of CPU per request: on 2 cores, a load generator built on it saturates
its core near 1,000 requests/s and the figure is the client's, not the server's (seen here:
workspace_throughput.py at 970 queries/s with its httpx client at 100% of a core). This one
sends bytes built once per distinct request and reads the answer by its Content-Length, so it
costs a small fraction of that, and it reports its own CPU share so a reader can tell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Request:
    method: str
    path: str
    token: str
    body: bytes = b""
    tag: str = ""  # e.g. the user: answers are kept per tag for checking

    def encode(self, host: str) -> bytes:
        head = (
            f"{self.method} {self.path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode("latin-1") + self.body


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    samples: dict[str, list[bytes]] = field(default_factory=dict)  # tag -> the first bodies
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def per_s(self) -> float:
        return len(self.latencies) / self.wall_s

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.wall_s


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return status, bytes(body)
        body += await reader.readexactly(size)
        await reader.readline()


async def run(url: str, requests: Sequence[Request], count: int, in_flight: int, keep: int = 3) -> Outcome:
    """Sends ``count`` requests (cycling through ``requests``) over ``in_flight`` keep-alive connections."""
    parts = urlsplit(url)
    host = parts.netloc
    encoded = [r.encode(host) for r in requests]
    outcome = Outcome()
    issued = iter(range(count))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for i in issued:
                k = i % len(encoded)
                start = time.perf_counter()
                writer.write(encoded[k])
                status, body = await _read_response(reader)
                outcome.latencies.append(time.perf_counter() - start)
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                samples = outcome.samples.setdefault(requests[k].tag, [])
                if len(samples) < keep:
                    samples.append(body)
        finally:
            writer.close()

    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(in_flight)))
    outcome.wall_s, outcome.cpu_s = time.perf_counter() - start, time.process_time() - cpu
    return outcome


def blast(url: str, requests: Sequence[Request], count: int, in_flight: int, warm_up: int = 0) -> Outcome:
    if warm_up:
        asyncio.run(run(url, requests, warm_up, in_flight))
    return asyncio.run(run(url, requests, count, in_flight))

