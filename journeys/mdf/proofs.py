"""Where MDF proof-of-performance files live: in PostgreSQL (the `mdf_proofs.data` column, the
default) or in an S3-compatible bucket when `PROOF_BUCKET` is set. Either way the row keeps the
name, type, size and SHA-256; the bucket's object key is `mdf/<request id>/<proof id>`."""

from __future__ import annotations

import asyncio
from typing import Any


class S3Store:
    """A bucket through boto3 (blocking calls run in a thread)."""

    def __init__(
        self, bucket: str, *, endpoint_url: str | None, region: str, access_key_id: str | None, secret: str | None
    ) -> None:
        import boto3  # type: ignore[import-untyped]

        self.bucket = bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
        )

    async def put(self, key: str, data: bytes, content_type: str, sha256: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": sha256},
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)
