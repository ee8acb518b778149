"""Object storage paths with the scheme's usual Airflow connection, for request files and result landings.

Airflow's ``ObjectStoragePath("s3://bucket/key")`` without a connection id reads no Airflow connection at
all (boto3's environment chain only), so an ``aws_default`` connection would be ignored. Users keep storage
credentials in connections and expect the hook's default connection, as ``S3Hook()`` uses ``aws_default``:
this module applies that default. Precedence: the explicit ``conn_id`` argument, then the one in the URI
(``s3://my_conn@bucket/...``) or set on the ``ObjectStoragePath``, then the scheme's default below. A default
connection that does not exist is harmless: the amazon hook falls back to the environment, as before.
"""

from __future__ import annotations

from airflow.sdk import ObjectStoragePath

__all__ = ["DEFAULT_STORAGE_CONN_IDS", "default_storage_conn_id", "path_conn_id", "storage_path"]

# The default connection of the hook behind each scheme's filesystem (S3Hook, GCSHook).
DEFAULT_STORAGE_CONN_IDS: dict[str, str] = {
    "s3": "aws_default",
    "s3a": "aws_default",
    "s3n": "aws_default",
    "gs": "google_cloud_default",
    "gcs": "google_cloud_default",
}


def default_storage_conn_id(uri: str) -> str | None:
    """The usual connection for ``uri``'s scheme, or ``None`` (local files, unknown schemes)."""
    scheme, sep, _ = uri.partition("://")
    return DEFAULT_STORAGE_CONN_IDS.get(scheme.lower()) if sep else None


def path_conn_id(path: ObjectStoragePath) -> str | None:
    """The connection ``path`` is bound to: a property from Airflow 3.2, a storage option on 3.1."""
    conn_id: str | None = getattr(path, "conn_id", None)
    return conn_id if conn_id is not None else path.storage_options.get("conn_id")


def storage_path(location: str | ObjectStoragePath, conn_id: str | None = None) -> ObjectStoragePath:
    """``location`` bound to ``conn_id``, else to its own connection, else to the scheme's default."""
    path = location if isinstance(location, ObjectStoragePath) else ObjectStoragePath(location)
    bound = path_conn_id(path)
    chosen = conn_id or bound or default_storage_conn_id(str(path))
    # Built from the path object, not the string: Airflow lets a string's user info beat ``conn_id``.
    return path if chosen == bound else ObjectStoragePath(path, conn_id=chosen)
