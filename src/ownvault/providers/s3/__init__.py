"""A provider on an S3-compatible object store (AWS S3, Ceph RADOS Gateway, MinIO, ...).

Objects live at ``<prefix>/<name>`` in one bucket (``<name>`` alone with no prefix); nothing
else is written there: no marker, no metadata, no plaintext. ``docs/design.md`` ("S3
provider") is the spec: naming, conditional writes, multipart thresholds, the retry
classification table and the Ceph quirks this module tolerates.

Why boto3 in threads, not aiobotocore
-------------------------------------
Both were measured against Ceph RGW 16.2 on loopback (2 cores, 32 x 16 MiB objects, 4 and 8
in flight): boto3 with blocking calls in a bounded thread pool put 129-186 MiB/s and got
287-593 MiB/s; aiobotocore put 123-169 MiB/s and got 275-470 MiB/s, using about 1.5x the
client CPU. The gateway is the bottleneck either way, so the simpler stack wins: boto3 is
the most used S3 client, needs no aiohttp, and its connection pool is bounded by the same
number as our executor (``max_connections``), so a worker thread never waits for a socket.
Blocking calls run in that dedicated executor (not the default one, which the engine uses
for hashing and erasure coding), which also makes the provider usable from any event loop.

Modules: ``config`` (:class:`S3Config`, S3's size limits), ``errors`` (botocore failures ->
ownvault's tree), ``client`` (the botocore client and its executor), ``writes`` (conditional
PUT, multipart uploads), ``reads`` (checked ranged GET, HEAD), ``listing`` (checked pages),
``provider`` (:class:`S3Provider`, the Provider protocol on top).
"""

from __future__ import annotations

from ownvault.providers.s3.config import S3Config
from ownvault.providers.s3.errors import classify_error
from ownvault.providers.s3.provider import S3Provider

__all__ = ["S3Config", "S3Provider", "classify_error"]
