"""A real S3 server for the tests: Ceph RADOS Gateway 16 from Debian's packages.

``scripts/ceph-rgw-up.sh`` starts one mon, one OSD and two gateway processes on loopback
ports chosen here, in a fresh directory, once per test session (cold start ~17 s);
``scripts/ceph-rgw-down.sh --purge`` removes it all at the end. Gateway 0 serves the contract
tests; gateway 1 is the one the failure tests kill, restart and throttle.

Set ``OWNVAULT_CEPH_DIR`` to keep a cluster between runs (it is then reused, never purged).
When Ceph is not installed the tests skip with a message, except under ``CI=true``, where
they fail: CI must never pass by silently not testing S3.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

REPO = Path(__file__).resolve().parents[2]
UP = REPO / "scripts" / "ceph-rgw-up.sh"
DOWN = REPO / "scripts" / "ceph-rgw-down.sh"
ACCESS_KEY = "VAULTTESTACCESSKEY01"
SECRET_KEY = "vaulttestsecretkey0000000000000000000000"
GATEWAY_IDS = "ab"


def missing_reason() -> str | None:
    """Why Ceph cannot run here, or None when it can."""
    for tool in ("radosgw", "ceph-mon", "ceph-osd", "radosgw-admin", "uuidgen"):
        if shutil.which(tool) is None:
            return (
                f"Ceph RADOS Gateway not installed ({tool} missing): "
                "run scripts/setup.d/ceph.sh as root (make test does)"
            )
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie no longer does: daemons may not be reaped here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _pick_base() -> int:
    """A mon port P with P+500, P+501 (gateways) free; daemons use P+100..P+400."""
    for _ in range(50):
        base = random.randrange(20000, 40000, 1000)
        if all(_port_free(p) for p in (base, base + 500, base + 501)):
            return base
    raise RuntimeError("no free loopback ports for Ceph")


@dataclass
class CephCluster:
    dir: Path
    mon_port: int
    rgw_port: int
    keep: bool = False
    rgw_count: int = len(GATEWAY_IDS)

    @property
    def endpoints(self) -> list[str]:
        return [f"http://127.0.0.1:{self.rgw_port + i}" for i in range(self.rgw_count)]

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CEPH_DIR": str(self.dir),
            "MON_PORT": str(self.mon_port),
            "RGW_PORT": str(self.rgw_port),
            "RGW_COUNT": str(self.rgw_count),
            "OSD_STORE": "memstore",
            "OSD_SIZE_GB": "6",
            "RGW_CACHE": "false",  # see ceph-rgw-up.sh: killed gateways must not stall the rest
            "S3_ACCESS_KEY": ACCESS_KEY,
            "S3_SECRET_KEY": SECRET_KEY,
        }

    def up(self) -> None:
        """Start whatever is not running (idempotent): also restarts a killed gateway."""
        proc = subprocess.run(
            ["bash", str(UP)], env=self._env(), capture_output=True, text=True, timeout=240
        )
        if proc.returncode != 0:
            logs = ""
            for log in sorted((self.dir / "log").glob("client.rgw.*.log")):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                logs += f"\n--- {log.name}\n" + "\n".join(tail)
            raise RuntimeError(f"ceph-rgw-up.sh failed:\n{proc.stderr[-3000:]}{logs}")

    def down(self, purge: bool) -> None:
        args = ["bash", str(DOWN)] + (["--purge"] if purge else [])
        subprocess.run(args, env=self._env(), capture_output=True, timeout=120, check=False)

    def gateway_pid(self, i: int) -> int:
        return int((self.dir / "run" / f"client.rgw.{GATEWAY_IDS[i]}.pid").read_text())

    def kill_gateway(self, i: int) -> None:
        """SIGKILL gateway ``i`` (a provider outage) and wait until it is gone."""
        pid = self.gateway_pid(i)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def restart_gateway(self, i: int) -> None:
        self.up()

    def gateway_config(self, i: int, option: str, value: str) -> None:
        """Change a running gateway's option through its admin socket (takes effect at once)."""
        asok = self.dir / "run" / f"client.rgw.{GATEWAY_IDS[i]}.asok"
        subprocess.run(
            ["ceph", "--admin-daemon", str(asok), "config", "set", option, value],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def admin(self, *args: str) -> str:
        """radosgw-admin against this cluster."""
        proc = subprocess.run(
            ["radosgw-admin", "--conf", str(self.dir / "ceph.conf"), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.stdout

    def client(self, i: int = 0) -> S3Client:
        """A plain boto3 client (the tests' independent view of the gateway)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoints[i],
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "total_max_attempts": 3},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=16,
            ),
        )

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name


def start_cluster() -> CephCluster:
    """Start (or with OWNVAULT_CEPH_DIR, reuse) a cluster; raises RuntimeError on failure."""
    keep_dir = os.environ.get("OWNVAULT_CEPH_DIR")
    if keep_dir:
        d = Path(keep_dir)
        params = d / "params"
        if params.exists():
            vals = dict(line.split("=", 1) for line in params.read_text().split() if "=" in line)
            cluster = CephCluster(d, int(vals["P_MON_PORT"]), int(vals["P_RGW_PORT"]), keep=True)
        else:
            base = _pick_base()
            cluster = CephCluster(d, base, base + 500, keep=True)
    else:
        base = _pick_base()
        d = Path(tempfile.mkdtemp(prefix="ownvault-ceph-"))
        cluster = CephCluster(d, base, base + 500)
    try:
        cluster.up()
    except BaseException:
        if not cluster.keep:
            cluster.down(purge=True)
        raise
    return cluster
