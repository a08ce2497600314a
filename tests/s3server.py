"""An S3-compatible server on loopback for the object-storage tests: moto's server mode.

It is a real HTTP server speaking S3 (conditional writes included), reached through s3fs and
botocore exactly as a bucket elsewhere would be; nothing of the client library is mocked.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

BUCKET = "qbo-lake"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key-id",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    "AWS_DEFAULT_REGION": REGION,
}
"""What moto accepts (any credentials); set in the environment as a real deployment would."""


@contextmanager
def running_s3() -> Iterator[str]:
    """Start moto's S3 server on a free loopback port with :data:`BUCKET`; yields its URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
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
