"""A loopback fake of a Pinning Service API *and* of the upload node's Kubo RPC, to assert
what the pinning client sends (origins, swarm/connect calls) and how it reads what a
service answers (delegates, created timestamps in any RFC 3339 form).

It stores no bytes: ``block/put`` answers with the CID of what it got, pins are ``pinned``
at once. A test scripts it through ``POST /_control`` (JSON: ``addresses`` for ``id``,
``delegates`` for every PinStatus, ``created`` = a list of timestamps handed out by the next
``POST /pins`` in order, ``rival`` = a pin added right after the next ``POST /pins``,
``preload`` = pins to add now, ``fail_dial`` = multiaddrs whose ``swarm/connect`` fails) and
reads ``GET /_log`` (every ``POST /pins`` body and ``swarm/connect`` argument). Run as
``python -m tests.providers.fakepinning``; it prints ``{"listening": URL}``.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from ownvault.core.cid import CID

TOKEN = "fake-pinning-token"
CODECS = {"raw": 0x55, "dag-pb": 0x70}


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pins: dict[str, dict[str, Any]] = {}
        self.addresses: list[str] = []
        self.delegates: list[str] = []
        self.created: list[str] = []
        self.rival: dict[str, Any] | None = None
        self.fail_dial: set[str] = set()
        self.log: dict[str, list[Any]] = {"posts": [], "dials": [], "queries": []}
        self.clock = 0

    def stamp(self) -> str:
        if self.created:
            return self.created.pop(0)
        self.clock += 1
        return f"2030-01-01T00:00:{self.clock % 60:02d}.{self.clock:06d}Z"

    def add(self, pin: dict[str, Any], created: str, status: str = "pinned") -> dict[str, Any]:
        rec = {"requestid": uuid.uuid4().hex, "status": status, "created": created, "pin": pin}
        self.pins[rec["requestid"]] = rec
        return rec

    def public(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {**rec, "delegates": list(self.delegates), "info": {}}


STATE = State()


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.upper())


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, code: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out = bytearray()
        while size := int(self.rfile.readline().split(b";")[0], 16):
            out += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass  # trailers
        return bytes(out)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/_log":
            with STATE.lock:
                return self._send(200, STATE.log)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"error": {"reason": "UNAUTHORIZED"}})
        with STATE.lock:
            STATE.log["queries"].append(q)
            if url.path == "/pins":
                return self._send(200, self._list(q))
            rec = STATE.pins.get(url.path.removeprefix("/pins/"))
            if rec is None:
                return self._send(404, {"error": {"reason": "NOT_FOUND"}})
            return self._send(200, STATE.public(rec))

    def _list(self, q: dict[str, str]) -> dict[str, Any]:
        statuses = q.get("status", "pinned").split(",")
        meta = json.loads(q["meta"]) if "meta" in q else {}
        name, match = q.get("name"), q.get("match", "exact")
        before = _when(q["before"]) if "before" in q else None
        out = []
        for rec in STATE.pins.values():
            pin = rec["pin"]
            n = pin.get("name")
            if rec["status"] not in statuses or any(
                pin["meta"].get(k) != v for k, v in meta.items()
            ):
                continue
            if name is not None and (
                n is None or (n != name if match == "exact" else name not in n)
            ):
                continue
            if "cid" in q and pin["cid"] not in q["cid"].split(","):
                continue
            if before is not None and not _when(rec["created"]) < before:
                continue
            out.append(rec)
        out.sort(key=lambda r: _when(r["created"]), reverse=True)
        limit = int(q.get("limit", "10"))
        return {"count": len(out), "results": [STATE.public(r) for r in out[:limit]]}

    def do_DELETE(self) -> None:
        with STATE.lock:
            rec = STATE.pins.pop(urlparse(self.path).path.removeprefix("/pins/"), None)
        self.send_response(202 if rec else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        raw = self._body()
        with STATE.lock:
            if url.path == "/_control":
                doc = json.loads(raw)
                for key in ("addresses", "delegates", "created", "rival"):
                    if key in doc:
                        setattr(STATE, key, doc[key])
                STATE.fail_dial = set(doc.get("fail_dial", STATE.fail_dial))
                for p in doc.get("preload", []):
                    STATE.add(p["pin"], p["created"], p.get("status", "pinned"))
                return self._send(200, {})
            if url.path == "/api/v0/id":
                return self._send(200, {"ID": "fake", "Addresses": STATE.addresses})
            if url.path == "/api/v0/block/put":
                data = _multipart_payload(raw, self.headers.get("Content-Type", ""))
                cid = CID.for_block(CODECS[q.get("cid-codec", "raw")], data)
                return self._send(200, {"Key": str(cid), "Size": len(data)})
            if url.path == "/api/v0/swarm/connect":
                STATE.log["dials"].append(q["arg"])
                if q["arg"] in STATE.fail_dial:
                    return self._send(500, {"Message": "failed to dial", "Code": 0})
                return self._send(200, {"Strings": [f"connect {q['arg']} success"]})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"error": {"reason": "UNAUTHORIZED"}})
            if url.path == "/pins":
                body = json.loads(raw)
                STATE.log["posts"].append(body)
                pin = {k: body[k] for k in ("cid", "name", "origins", "meta") if k in body}
                rec = STATE.add(pin, STATE.stamp())
                if STATE.rival is not None:
                    STATE.add(
                        {**pin, "cid": STATE.rival.get("cid", pin["cid"])}, STATE.rival["created"]
                    )
                    STATE.rival = None
                return self._send(202, STATE.public(rec))
        self._send(404, {"error": {"reason": "NOT_FOUND"}})


def _multipart_payload(raw: bytes, content_type: str) -> bytes:
    boundary = content_type.split("boundary=", 1)[1].encode()
    part = raw.split(b"--" + boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"listening": f"http://127.0.0.1:{server.server_port}"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
