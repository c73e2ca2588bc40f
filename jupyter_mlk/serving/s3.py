"""Models in S3 (any S3-compatible server): download a model, upload one for KServe.

Configuration comes from the environment, never from the database or a manifest:

- ``MLK_S3_ENDPOINT_URL``: the server (MinIO, Ceph, moto...); unset means AWS or boto3's
  own ``AWS_ENDPOINT_URL``.
- ``MLK_S3_ARTIFACTS``: ``s3://BUCKET/PREFIX`` where local models are uploaded before a
  KServe deployment.
- credentials: boto3's usual sources (``AWS_ACCESS_KEY_ID``..., profiles, instance roles).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import ServingError

log = logging.getLogger(__name__)

ENDPOINT_ENV = "MLK_S3_ENDPOINT_URL"
ARTIFACTS_ENV = "MLK_S3_ARTIFACTS"
# Names a model directory may hold, in KServe's order of preference.
MODEL_FILE_NAMES = (
    "model.joblib",
    "model.pkl",
    "model.pickle",
    "model.bst",
    "model.json",
    "model.ubj",
    "model.txt",
    "model.pt",
    "model.pth",
)


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key).

    Raises:
        ServingError: not an ``s3://`` URI with a bucket.
    """
    if not uri.startswith("s3://"):
        raise ServingError(f"{uri!r} is not an S3 URI; write it as s3://BUCKET/KEY")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ServingError(f"{uri!r} has no bucket; write it as s3://BUCKET/KEY")
    return bucket, key


def client() -> Any:
    """A boto3 S3 client for the configured endpoint.

    Raises:
        ServingError: boto3 is not installed.
    """
    try:
        import boto3
    except ImportError as exc:
        raise ServingError("models in S3 need boto3: pip install boto3") from exc
    endpoint = os.environ.get(ENDPOINT_ENV) or None
    return boto3.client("s3", endpoint_url=endpoint)


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def download(uri: str, dest: Path) -> tuple[Path, str]:
    """Download a model object (or the one model file under a prefix) into ``dest``.

    Returns:
        The local file and the exact S3 key it came from.

    Raises:
        ServingError: the object is missing, unreadable, or the prefix is ambiguous.
    """
    bucket, key = split_uri(uri)
    s3 = client()
    endpoint = os.environ.get(ENDPOINT_ENV) or "AWS"
    try:
        key = _resolve_key(s3, bucket, key, uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(dest))
    except ServingError:
        raise
    except Exception as exc:
        raise ServingError(
            f"cannot download {uri} from {endpoint} ({_describe(exc)}); check the URI, the "
            f"credentials and {ENDPOINT_ENV}"
        ) from exc
    finally:
        s3.close()
    log.info("downloaded s3://%s/%s to %s", bucket, key, dest)
    return dest, key


def _resolve_key(s3: Any, bucket: str, key: str, uri: str) -> str:
    """The key itself when it is an object, else the single model file under it."""
    if key and not key.endswith("/"):
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return key
        except Exception as exc:
            if _describe(exc).split(":")[0] not in ("404", "NoSuchKey", "NotFound"):
                raise
    prefix = key.rstrip("/") + "/" if key else ""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=100).get("Contents", [])
    keys = [o["Key"] for o in listed]
    for name in MODEL_FILE_NAMES:
        if prefix + name in keys:
            return prefix + name
    if len(keys) == 1:
        return str(keys[0])
    if not keys:
        raise ServingError(f"{uri} does not exist (no object and nothing under that prefix)")
    shown = ", ".join(k[len(prefix) :] for k in keys[:5])
    raise ServingError(
        f"{uri} is a folder with {len(keys)} files ({shown}) and no model.joblib, model.bst "
        "or model.pt; give the URI of the model file itself"
    )


def artifacts_prefix() -> tuple[str, str]:
    """The configured upload location (bucket, prefix without trailing slash).

    Raises:
        ServingError: ``MLK_S3_ARTIFACTS`` is not set.
    """
    where = os.environ.get(ARTIFACTS_ENV, "")
    if not where:
        raise ServingError(
            f"a model on this machine must be uploaded to S3 for KServe: set {ARTIFACTS_ENV}"
            f"=s3://BUCKET/PREFIX (and {ENDPOINT_ENV} for a server other than AWS), or "
            "deploy an s3:// URI"
        )
    bucket, prefix = split_uri(where)
    return bucket, prefix.strip("/")


def upload(path: Path, bucket: str, key: str) -> str:
    """Upload a file unless an object of the same size is already there; return its URI.

    Keys are content-addressed by the caller, so an object of the same size at the same
    key is the same model.

    Raises:
        ServingError: the upload failed.
    """
    s3 = client()
    uri = f"s3://{bucket}/{key}"
    try:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            if int(head.get("ContentLength", -1)) == path.stat().st_size:
                log.info("model already in %s", uri)
                return uri
        except Exception as exc:
            if _describe(exc).split(":")[0] not in ("404", "NoSuchKey", "NotFound"):
                raise
        s3.upload_file(str(path), bucket, key)
    except Exception as exc:
        endpoint = os.environ.get(ENDPOINT_ENV) or "AWS"
        raise ServingError(
            f"cannot upload the model to {uri} on {endpoint} ({_describe(exc)}); check "
            f"{ARTIFACTS_ENV}, {ENDPOINT_ENV} and the credentials"
        ) from exc
    finally:
        s3.close()
    log.info("uploaded %s to %s", path, uri)
    return uri
