"""Runs an ASGI app with uvicorn in a background thread, on a loopback port (0: a free one)."""

from __future__ import annotations

import threading

import uvicorn

from obo_auth.http_edge import KEEP_ALIVE_SECONDS, loopback_socket

_STARTUP_TIMEOUT_SECONDS = 30


class BackgroundServer:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self._socket = loopback_socket(port, host)
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_SECONDS
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True, name=f"obo-auth-server-{self.port}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(_STARTUP_TIMEOUT_SECONDS * 100):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"The local server on {self.url} did not start within {_STARTUP_TIMEOUT_SECONDS} s.")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=_STARTUP_TIMEOUT_SECONDS)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
