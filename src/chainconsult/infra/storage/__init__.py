"""Object storage for uploaded files: a directory (``file:///srv/files``) or an S3 bucket
prefix (``s3://bucket/prefix``). Uploads are spooled to a local file first (their size and
checksum known), then stored whole; downloads are served from the directory, or by a
short-lived presigned URL from S3 so the bytes never pass through the API."""

from chainconsult.infra.storage.objects import (
    FileObjects,
    ObjectStore,
    S3Objects,
    open_object_store,
)

__all__ = ["FileObjects", "ObjectStore", "S3Objects", "open_object_store"]
