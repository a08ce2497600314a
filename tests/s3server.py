"""An S3-compatible server on loopback for the object-storage tests: moto's server mode.

It is a real HTTP server speaking S3 (conditional writes included), reached through s3fs and
botocore exactly as a bucket elsewhere would be; nothing of the client library is mocked.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

BUCKET = "qbo-lake"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key-id",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    "AWS_DEFAULT_REGION": REGION,
}
"""What moto accepts (any credentials); set in the environment as a real deployment would."""


WsgiApp = Callable[..., Iterable[bytes]]

SERVED: Counter[str] = Counter()
"""Requests the servers of this process answered, by method (the bench's requests per company)."""
_served_lock = threading.Lock()


def atomic_conditional_writes(app: WsgiApp) -> WsgiApp:
    """``app`` with its conditional writes made atomic, as S3 makes them.

    S3 decides a ``PUT`` with ``If-None-Match: *`` (or ``If-Match``) atomically: of two racing
    creates of one key exactly one succeeds. moto's server checks, then puts, in whichever of its
    threads serves the request, so under load both racers could win (seen as a flaky
    ``test_two_processes_racing_for_one_realm_lock_one_wins``, both processes holding the lock):
    a test of our lock would then test moto. Conditional writes are served one at a time here.
    """
    guard = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with _served_lock:
            SERVED[str(environ.get("REQUEST_METHOD"))] += 1
        conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        if environ.get("REQUEST_METHOD") != "PUT" or not conditional:
            return app(environ, start_response)
        with guard:
            return list(app(environ, start_response))

    return serve


def _moto_server() -> Any:
    """moto's threaded server on a free loopback port, its conditional writes atomic."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class AtomicMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:  # moto's, with the app wrapped
            app = atomic_conditional_writes(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return AtomicMotoServer(ip_address="127.0.0.1", port=0, verbose=False)


@contextmanager
def running_s3() -> Iterator[str]:
    """Start moto's S3 server on a free loopback port with :data:`BUCKET`; yields its URL."""
    import boto3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = _moto_server()
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def lake_env(endpoint: str) -> dict[str, str]:
    """The variables a process needs to use a lake in the test bucket (as documented)."""
    return {**CREDENTIALS, "QBO_LAKE_STORAGE_OPTIONS": json.dumps({"endpoint_url": endpoint})}


def new_lake_url() -> str:
    """A lake URL under a prefix of its own in the test bucket."""
    return f"s3://{BUCKET}/lake-{uuid.uuid4().hex[:12]}"
