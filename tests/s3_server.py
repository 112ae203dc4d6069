"""A real S3-compatible server on 127.0.0.1 for object-storage tests (moto in server mode).

``S3Server`` starts moto's HTTP server on a free port in a background thread and creates one bucket;
LanceDB then talks to it over HTTP exactly as it would to S3 or MinIO, with an endpoint override::

    with S3Server("kbcurator") as s3:
        store = IndexStore(s3.uri("index"), storage_options=s3.storage_options())
        ...
        assert s3.keys("index/")  # the objects really landed in the bucket

moto accepts any credentials; the fixed fake ones below only have to be present, so that neither
LanceDB nor boto3 go looking for real ones (instance metadata, ~/.aws).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY = "kbcurator-test"
SECRET_KEY = "kbcurator-test-secret"
REGION = "us-east-1"


class S3Server:
    def __init__(self, bucket: str = "kbcurator") -> None:
        self.bucket = bucket
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def storage_options(self) -> dict[str, str]:
        """What LanceDB's ``connect(uri, storage_options=...)`` needs to reach this server."""
        return {
            "aws_endpoint": self.endpoint,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "aws_region": REGION,
            "allow_http": "true",  # the server speaks plain HTTP; real S3 needs no such option
        }

    def environment(self) -> dict[str, str]:
        """The same, as the standard AWS environment variables LanceDB (and boto3) read by themselves."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` in the bucket."""
        found: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found
