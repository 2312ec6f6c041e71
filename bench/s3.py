"""S3 provider throughput vs boto3's own, on the same gateway in the same run.

Puts and gets 1 GiB worth of 16 MiB objects (defaults) through ``S3Provider`` and through
plain boto3 (``put_object``/``get_object`` in a thread pool of the same width, and the
transfer manager's ``upload_fileobj``/``download_fileobj``), alternating rounds so that drift
in the gateway hits both sides alike. Prints MiB/s per round, the medians, and the provider's
ratio to the best boto3 variant.

Without ``--endpoint`` it starts Ceph RGW with ``scripts/ceph-rgw-up.sh`` (bluestore on a
sparse file, in ``$CEPH_DIR`` or /tmp/ownvault-bench-ceph) and stops it at the end
(``--keep`` leaves it running). Run: ``.venv/bin/python bench/s3.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ownvault.providers.s3 import S3Config, S3Provider

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def start_ceph(ceph_dir: str) -> dict[str, str]:
    env = {**os.environ, "CEPH_DIR": ceph_dir, "RGW_COUNT": "1"}
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "ceph-rgw-up.sh")],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    vals = {}
    for line in out.splitlines():
        if line.startswith("export "):
            k, _, v = line[7:].partition("=")
            vals[k] = v.strip('"')
    return vals


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", help="an S3 endpoint already running (else Ceph is started)")
    ap.add_argument("--total-mib", type=int, default=1024)
    ap.add_argument("--object-mib", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="leave the Ceph started here running")
    args = ap.parse_args()

    ceph_dir = os.environ.get("CEPH_DIR", "/tmp/ownvault-bench-ceph")
    started = False
    if args.endpoint:
        endpoint = args.endpoint
        ak = os.environ["AWS_ACCESS_KEY_ID"]
        sk = os.environ["AWS_SECRET_ACCESS_KEY"]
    else:
        t = time.perf_counter()
        env = start_ceph(ceph_dir)
        started = True
        endpoint, ak, sk = (
            env["S3_ENDPOINT"],
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
        )
        print(f"ceph up at {endpoint} in {time.perf_counter() - t:.1f} s", flush=True)
    os.environ["BENCH_S3_AK"], os.environ["BENCH_S3_SK"] = ak, sk

    n = args.total_mib // args.object_mib
    size = args.object_mib * MiB
    conc = args.concurrency
    blobs = [os.urandom(size) for _ in range(min(n, 8))]
    total = n * size
    bucket = f"bench-{uuid.uuid4().hex[:12]}"

    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"}, max_pool_connections=conc,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )  # fmt: skip
    client.create_bucket(Bucket=bucket)
    provider = S3Provider(
        S3Config(
            bucket=bucket, prefix="p", endpoint=endpoint, region="us-east-1",
            access_key_env="BENCH_S3_AK", secret_key_env="BENCH_S3_SK", max_connections=conc,
        )
    )  # fmt: skip
    tcfg = TransferConfig(max_concurrency=conc)
    pool = ThreadPoolExecutor(conc)

    def prov_put(r: int) -> None:
        async def go() -> None:
            sem = asyncio.Semaphore(conc)

            async def one(i: int) -> None:
                async with sem:
                    await provider.put(f"r{r}/{i}", blobs[i % len(blobs)])

            await asyncio.gather(*(one(i) for i in range(n)))

        asyncio.run(go())

    def prov_get(r: int) -> None:
        async def go() -> None:
            sem = asyncio.Semaphore(conc)

            async def one(i: int) -> None:
                async with sem:
                    assert len(await provider.get(f"r{r}/{i}")) == size

            await asyncio.gather(*(one(i) for i in range(n)))

        asyncio.run(go())

    def raw_put(r: int) -> None:
        list(pool.map(lambda i: client.put_object(
            Bucket=bucket, Key=f"raw/r{r}/{i}", Body=blobs[i % len(blobs)]), range(n)))  # fmt: skip

    def raw_get(r: int) -> None:
        def one(i: int) -> None:
            body = client.get_object(Bucket=bucket, Key=f"raw/r{r}/{i}")["Body"]
            assert len(body.read()) == size

        list(pool.map(one, range(n)))

    def xfer_put(r: int) -> None:
        for i in range(n):
            client.upload_fileobj(
                io.BytesIO(blobs[i % len(blobs)]), bucket, f"x/r{r}/{i}", Config=tcfg
            )

    def xfer_get(r: int) -> None:
        for i in range(n):
            buf = io.BytesIO()
            client.download_fileobj(bucket, f"x/r{r}/{i}", buf, Config=tcfg)
            assert buf.tell() == size

    variants = {
        "provider": (prov_put, prov_get),
        "boto3 put/get_object": (raw_put, raw_get),
        "boto3 transfer manager": (xfer_put, xfer_get),
    }
    results: dict[str, dict[str, list[float]]] = {k: {"put": [], "get": []} for k in variants}
    print(
        f"{n} x {args.object_mib} MiB = {total / MiB:.0f} MiB per pass, {conc} in flight",
        flush=True,
    )
    try:
        # untimed warm-up: the gateway's first writes allocate (bluestore), whoever goes first
        raw_put(-1)
        raw_get(-1)
        for r in range(args.rounds):
            for label, (put, get) in variants.items():
                tp = timed(lambda: put(r))  # noqa: B023
                tg = timed(lambda: get(r))  # noqa: B023
                results[label]["put"].append(total / MiB / tp)
                results[label]["get"].append(total / MiB / tg)
                print(f"round {r}  {label:24s} put {total / MiB / tp:7.1f} MiB/s   "
                      f"get {total / MiB / tg:7.1f} MiB/s", flush=True)  # fmt: skip
            # free the gateway's space between rounds
            keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                    for o in page.get("Contents", [])]  # fmt: skip
            for k in range(0, len(keys), 1000):
                client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": x} for x in keys[k : k + 1000]]}
                )
        print("\nmedian MiB/s over rounds:")
        med = {k: {op: statistics.median(v) for op, v in d.items()} for k, d in results.items()}
        for label, d in med.items():
            print(f"  {label:24s} put {d['put']:7.1f}   get {d['get']:7.1f}")
        for op in ("put", "get"):
            best_label = max((k for k in med if k != "provider"), key=lambda k: med[k][op])
            ratio = med["provider"][op] / med[best_label][op]
            print(f"provider {op}: {ratio * 100:5.1f}% of the best boto3 ({best_label})")
    finally:
        asyncio.run(provider.close())
        pool.shutdown()
        if started and not args.keep:
            subprocess.run(
                ["bash", str(REPO / "scripts" / "ceph-rgw-down.sh"), "--purge"],
                env={**os.environ, "CEPH_DIR": ceph_dir}, capture_output=True, check=False,
            )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
