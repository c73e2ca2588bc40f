"""The S3 artifact store: value bundles in any S3-compatible server, through boto3.

A bundle is uploaded file by file under ``<prefix>/objects/<digest>/``; its manifest
(``bundle.json``) goes last and is the completion marker, so a reader never takes a bundle
whose upload was cut short for a complete one. Bundles are content-addressed, so a bundle
another run already uploaded is not uploaded again. Credentials come from boto3's usual
sources (environment, shared files, instance or pod roles) and are never logged or stored.

Configuration (environment): ``MLK_S3_BUCKET`` (turns the store on), ``MLK_S3_PREFIX``,
``MLK_S3_ENDPOINT_URL`` (any S3-compatible server), ``MLK_S3_REGION``.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import ValueStoreError
from jupyter_mlk.pipeline.values import MANIFEST, PICKLE, read_manifest

log = logging.getLogger(__name__)
MULTIPART_THRESHOLD = 8 * 1024 * 1024


class S3Store:
    """Uploads and downloads value bundles."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                config=Config(
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=30,
                ),
            )
        self.client = client

    @classmethod
    def from_env(cls) -> S3Store | None:
        """The store configured in the environment, or None when ``MLK_S3_BUCKET`` is unset."""
        bucket = os.environ.get("MLK_S3_BUCKET")
        if not bucket:
            return None
        return cls(
            bucket,
            os.environ.get("MLK_S3_PREFIX", ""),
            os.environ.get("MLK_S3_ENDPOINT_URL") or None,
            os.environ.get("MLK_S3_REGION") or None,
        )

    def where(self) -> str:
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}objects{at}"

    def key(self, digest: str, name: str) -> str:
        parts = (
            [self.prefix, "objects", digest, name] if self.prefix else ["objects", digest, name]
        )
        return "/".join(parts)

    def uri(self, digest: str) -> str:
        return f"s3://{self.bucket}/{self.key(digest, '')}"

    def _fail(self, action: str, digest: str, exc: Exception) -> ValueStoreError:
        return ValueStoreError(
            f"could not {action} artifact {digest[:12]} {'to' if action == 'upload' else 'from'}"
            f" {self.where()}: {type(exc).__name__}: {exc}; check that the server is up and "
            "the bucket and credentials are right, then run again (nothing incomplete was kept)"
        )

    def has(self, digest: str) -> bool:
        """Whether a complete copy of the bundle is in the bucket (its manifest is there)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(digest, MANIFEST))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail("look up", digest, exc) from None
        except BotoCoreError as exc:
            raise self._fail("look up", digest, exc) from None
        return True

    def upload(self, digest: str, directory: Path) -> bool:
        """Upload a bundle unless it is there already; return whether anything was sent."""
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        if self.has(digest):
            return False
        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)
        files = sorted(p for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
        try:
            for path in [*files, directory / MANIFEST]:  # the manifest last: the marker
                self.client.upload_file(
                    str(path), self.bucket, self.key(digest, path.name), Config=config
                )
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._fail("upload", digest, exc) from None
        log.info("artifact %s uploaded to %s", digest[:12], self.where())
        return True

    def download(self, digest: str, target: Path) -> None:
        """Fetch a complete bundle into ``target`` (published by a rename when complete)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.has(digest):
            raise ValueStoreError(
                f"artifact {digest[:12]} is not in {self.where()} (or its upload never "
                "finished); run the step that makes it again"
            )
        tmp = target.parent / f".{digest}.{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        try:
            self.client.download_file(self.bucket, self.key(digest, MANIFEST), str(tmp / MANIFEST))
            names = [PICKLE, *(o["file"] for o in read_manifest(tmp)["objects"].values())]
            for name in names:
                self.client.download_file(self.bucket, self.key(digest, name), str(tmp / name))
            os.rename(tmp, target)
        except (BotoCoreError, ClientError, OSError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if target.exists():
                return  # another process fetched it first
            raise self._fail("download", digest, exc) from None
