"""The one S3 client factory: S3_ENDPOINT_URL for S3-compatible servers (MinIO, R2),
S3_REGION, credentials from the standard AWS variables. Backups and uploaded files share it."""

from __future__ import annotations

from typing import Any

from chainconsult.infra.settings.backups import StorageSettings


class S3Prefix:
    """Objects below ``prefix`` in one bucket, through ``client``; ``url`` names the store
    in messages."""

    def __init__(self, bucket: str, prefix: str, url: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.url = url
        self.client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"


def s3_client(storage: StorageSettings) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=str(storage.s3_endpoint_url) if storage.s3_endpoint_url else None,
        region_name=storage.s3_region,
        # A dead endpoint fails in seconds; a slow part upload still has a minute per read.
        config=Config(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=10,
            read_timeout=60,
            # SigV4 everywhere: presigned links then carry a lifetime (X-Amz-Expires) that
            # every S3-compatible server checks.
            signature_version="s3v4",
        ),
    )
