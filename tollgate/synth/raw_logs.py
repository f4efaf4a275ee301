"""Seeded raw security logs for one month: what a SOC really receives, before any table exists.

    python -m tollgate.synth.raw_logs --month 2026-03 --lines 200000            # → data/raw_logs/security/2026-03/
    python -m tollgate.synth.raw_logs --month 2026-03 --lines 5000000 --out /tmp/big

Writes, in the month's folder:
- ``events.jsonl``: network and authentication events as JSON lines;
- ``auth.log``: the same kind of events in a syslog-style ``key=value`` text form;
- ``ground_truth.csv``: the SOC's incident records, one row per attacking session
  (``session_id``, ``src_ip``, ``window_start``, ``attack_kind``); sessions not listed are normal.

Normal traffic follows a daily rhythm. Attack campaigns: SSH/RDP brute force, credential stuffing,
horizontal and vertical port scans, and data exfiltration at night. A slice of the lines is broken
the way real feeds break (truncated JSON, a missing field, an unreadable timestamp or number,
garbage), some sources log in local time with an offset (clock skew) and some lines arrive twice.
Events carry: timestamp, src_ip, dst_ip, dst_port, user, event (login_success, login_failure,
connect, transfer), bytes (``transfer``: sent by the source; ``connect``: received by it),
protocol and user_agent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from tollgate.config.settings import PROJECT_ROOT

EVENTS = np.array(["login_success", "login_failure", "connect", "transfer"])
PORTS = np.array([443, 80, 53, 22, 445, 3389, 21, 8080])
PORT_WEIGHTS = np.array([0.45, 0.17, 0.12, 0.1, 0.07, 0.04, 0.02, 0.03])
BROWSERS = np.array(
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",  # noqa: E501
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0",  # noqa: E501
    ]
)
TOOLS = {"ssh": "OpenSSH_8.9p1", "python": "python-requests/2.32.3", "curl": "curl/8.5.0", "scanner": "masscan/1.3"}
USERS = np.array(["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"])
ATTACK_KINDS = ("brute_force", "credential_stuffing", "horizontal_scan", "vertical_scan", "exfiltration")
MALFORMED_KINDS = ("truncated_json", "missing_field", "bad_timestamp", "bad_number", "garbage")
WINDOW_SECONDS = 3600  # the security spec's raw_logs.window_minutes: sessions are (src_ip, hour)
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 12, 13, 14, 14, 12, 9, 6, 4, 3, 2, 1.5, 1], float)


@dataclass
class Events:
    """Columns of events, one entry per event (timestamps in epoch seconds, UTC)."""

    ts: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    port: np.ndarray
    user: np.ndarray
    event: np.ndarray
    bytes: np.ndarray
    protocol: np.ndarray
    agent: np.ndarray

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(*(np.concatenate([getattr(p, name) for p in parts]) for name in Events.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.ts)


def _month_bounds(month: str) -> tuple[int, int]:
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = (pd.Timestamp(start) + pd.offsets.MonthBegin(1)).to_pydatetime()
    return int(start.timestamp()), int(end.timestamp())


def _internal(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"10.{a}.{b}.{c}" for a, b, c in rng.integers(1, 255, size=(n, 3))], dtype=object)


def _external(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(11, 223, size=(n, 4))], dtype=object)


def _normal(rng: np.random.Generator, n: int, start: int, end: int, hosts: np.ndarray) -> Events:
    days = (end - start) // 86400
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    ts = start + rng.integers(0, days, n) * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    src = hosts[rng.integers(0, len(hosts), n)]
    port = rng.choice(PORTS, size=n, p=PORT_WEIGHTS)
    event = rng.choice(EVENTS, size=n, p=[0.08, 0.01, 0.71, 0.20])
    size = np.where(
        event == "transfer", rng.lognormal(9.0, 1.4, n), np.where(event == "connect", rng.lognormal(10.5, 1.4, n), 0)
    )
    agent = np.where(port == 22, TOOLS["ssh"], BROWSERS[rng.integers(0, len(BROWSERS), n)])
    return Events(
        ts,
        src,
        _external(rng, n) if n else np.array([], dtype=object),
        port,
        USERS[rng.integers(0, len(USERS), n)],
        event,
        np.round(size).astype(np.int64),
        np.where(port == 53, "udp", "tcp").astype(object),
        agent.astype(object),
    )


def _campaign(rng: np.random.Generator, kind: str, start: int, end: int, hosts: np.ndarray, size: int) -> Events:
    """One attack campaign: ``size`` events from one source within one or two hours."""
    night = kind == "exfiltration"
    days = (end - start) // 86400
    hour = rng.integers(0, 5) if night else rng.integers(0, 24)
    begin = start + int(rng.integers(0, days)) * 86400 + int(hour) * 3600 + int(rng.integers(0, 1800))
    ts = np.sort(begin + rng.choice(3000, size=size, replace=False))  # one event per second at most
    src = np.full(size, hosts[rng.integers(0, len(hosts))] if night else _external(rng, 1)[0], dtype=object)
    target = _internal(rng, 1)[0]
    user = USERS[rng.integers(0, len(USERS), size)]
    proto = np.full(size, "tcp", dtype=object)
    if kind == "brute_force":
        port = np.full(size, rng.choice([22, 3389]))
        dst, event = (
            np.full(size, target, dtype=object),
            np.where(rng.random(size) < 0.98, "login_failure", "login_success"),
        )
        agent, nbytes = np.full(size, TOOLS["ssh"] if port[0] == 22 else TOOLS["python"], dtype=object), np.zeros(size)
        user = np.full(size, rng.choice(["root", "admin", "administrator"]), dtype=object)
    elif kind == "credential_stuffing":
        port, dst = np.full(size, 443), np.full(size, target, dtype=object)
        event = np.where(rng.random(size) < 0.95, "login_failure", "login_success")
        user = np.array([f"user{n}" for n in rng.integers(0, 100000, size)], dtype=object)
        agent, nbytes = np.full(size, TOOLS["python"], dtype=object), rng.lognormal(7, 0.5, size)
    elif kind == "horizontal_scan":
        port = np.full(size, rng.choice([22, 445, 3389]))
        dst, event = _internal(rng, size), np.full(size, "connect")
        agent, nbytes = np.full(size, TOOLS["scanner"], dtype=object), rng.lognormal(5, 0.5, size)
    elif kind == "vertical_scan":
        port, dst = rng.integers(1, 65535, size), np.full(size, target, dtype=object)
        event, agent = np.full(size, "connect"), np.full(size, TOOLS["scanner"], dtype=object)
        nbytes = rng.lognormal(5, 0.5, size)
    else:  # exfiltration: a compromised internal host ships data out at night
        port, dst = np.full(size, 443), np.full(size, _external(rng, 1)[0], dtype=object)
        event, agent = np.full(size, "transfer"), np.full(size, TOOLS["curl"], dtype=object)
        nbytes = rng.lognormal(17.5, 0.6, size)
    return Events(ts, src, dst, port, user, event.astype(object), np.round(nbytes).astype(np.int64), proto, agent)


def session_id(src_ip: str, window_start: int) -> str:
    """The session an event belongs to: its source and the UTC hour (the spec's window) it falls in."""
    return f"{src_ip}@{datetime.fromtimestamp(window_start, UTC):%Y-%m-%dT%H:%MZ}"


def month_events(month: str, lines: int, seed: int) -> tuple[Events, pd.DataFrame]:
    """All events of the month in time order, and the ground truth of the attacking sessions."""
    rng = np.random.default_rng([seed, int(month.replace("-", ""))])
    start, end = _month_bounds(month)
    hosts = _internal(rng, max(20, lines // 20_000))
    campaigns, attack_lines = [], 0
    while attack_lines < 0.08 * lines:
        kind = ATTACK_KINDS[rng.integers(0, len(ATTACK_KINDS))]
        size = int(rng.integers(20, 150)) if kind != "exfiltration" else int(rng.integers(3, 30))
        campaigns.append((kind, _campaign(rng, kind, start, end, hosts, size)))
        attack_lines += size
    events = Events.concat(
        [_normal(rng, max(lines - attack_lines, 0), start, end, hosts), *(part for _, part in campaigns)]
    )
    truth = {}
    for kind, part in campaigns:
        for src, window in set(zip(part.src, part.ts - part.ts % WINDOW_SECONDS, strict=False)):
            truth[session_id(src, int(window))] = (
                src,
                datetime.fromtimestamp(int(window), UTC).isoformat(),
                kind,
            )
    order = np.argsort(events.ts, kind="stable")
    events = Events(*(getattr(events, name)[order] for name in Events.__dataclass_fields__))
    ground_truth = pd.DataFrame(
        [(sid, *rest) for sid, rest in truth.items()], columns=["session_id", "src_ip", "window_start", "attack_kind"]
    )
    return events, ground_truth.sort_values("session_id").reset_index(drop=True)


def _timestamp(ts: int, offset_hours: int) -> str:
    moment = datetime.fromtimestamp(ts + offset_hours * 3600, UTC)
    if offset_hours == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = "+" if offset_hours > 0 else "-"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{abs(offset_hours):02d}:00"


def _json_line(e: Events, i: int, stamp: str) -> bytes:
    return orjson.dumps(
        {
            "timestamp": stamp,
            "src_ip": e.src[i],
            "dst_ip": e.dst[i],
            "dst_port": int(e.port[i]),
            "user": e.user[i],
            "event": e.event[i],
            "bytes": int(e.bytes[i]),
            "protocol": e.protocol[i],
            "user_agent": e.agent[i],
        }
    )


def _syslog_line(e: Events, i: int, stamp: str) -> bytes:
    return (
        f"{stamp} gw01 tollgate-sensor: event={e.event[i]} src={e.src[i]} dst={e.dst[i]} port={e.port[i]} "
        f'user={e.user[i]} bytes={e.bytes[i]} proto={e.protocol[i]} ua="{e.agent[i]}"'
    ).encode()


def _break(line: bytes, kind: str, rng: np.random.Generator) -> bytes:
    if kind == "truncated_json":
        return line[: max(5, len(line) // 2)]
    if kind == "missing_field":
        return line.replace(b"src_ip", b"source", 1).replace(b" src=", b" ", 1)
    if kind == "bad_timestamp":
        return line.replace(line[line.find(b"20") : line.find(b"20") + 10], b"32/13/2026", 1)
    if kind == "bad_number":
        return line.replace(b'"bytes":', b'"bytes":"lots",' + b'"_":', 1).replace(b" bytes=", b" bytes=lots", 1)
    return bytes(rng.integers(32, 127, size=int(rng.integers(10, 80))).astype(np.uint8))


def write_month(
    month: str,
    lines: int,
    out: Path,
    seed: int = 7,
    malformed: float = 0.01,
    duplicates: float = 0.005,
    skewed_sources: float = 0.1,
    progress: bool = True,
) -> dict:
    """Write the month's two log files and its ground truth; returns what was written. The files are
    written beside ``out`` first and moved in when complete (the ground truth last), so an interrupted
    run never leaves half a month that looks whole."""
    writing = out.parent / f".{out.name}.writing"
    shutil.rmtree(writing, ignore_errors=True)
    writing.mkdir(parents=True)
    events, truth = month_events(month, lines, seed)
    rng = np.random.default_rng([seed, int(month.replace("-", "")), 1])
    sources = np.unique(events.src)
    skewed = set(sources[rng.random(len(sources)) < skewed_sources])  # these log local time with an offset
    offsets = {src: int(rng.choice([-5, -4, 1, 2, 3, 8])) for src in skewed}
    to_syslog = rng.random(len(events)) < 0.4
    broken = rng.random(len(events)) < malformed
    broken_kind = rng.integers(0, len(MALFORMED_KINDS), len(events))
    repeated = rng.random(len(events)) < duplicates
    counts = {"lines": 0, "malformed": 0, "duplicates": 0}
    started = datetime.now()
    with open(writing / "events.jsonl", "wb") as as_json, open(writing / "auth.log", "wb") as as_text:
        for i in range(len(events)):
            stamp = _timestamp(int(events.ts[i]), offsets.get(events.src[i], 0))
            syslog = bool(to_syslog[i])
            line = _syslog_line(events, i, stamp) if syslog else _json_line(events, i, stamp)
            if broken[i]:
                kind = MALFORMED_KINDS[broken_kind[i]]
                if kind == "truncated_json" and syslog:
                    kind = "garbage"
                line = _break(line, kind, rng)
                counts["malformed"] += 1
            target = as_text if syslog else as_json
            target.write(line + b"\n")
            counts["lines"] += 1
            if repeated[i]:  # delivered twice: a broken line is then two broken lines
                target.write(line + b"\n")
                counts["lines"] += 1
                counts["malformed" if broken[i] else "duplicates"] += 1
            if progress and i and i % 1_000_000 == 0:
                print(f"  {month}: {i:,} / {len(events):,} events written", file=sys.stderr)
    truth.to_csv(writing / "ground_truth.csv", index=False)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("events.jsonl", "auth.log", "ground_truth.csv"):
        os.replace(writing / name, out / name)
    writing.rmdir()
    seconds = (datetime.now() - started).total_seconds()
    return {**counts, "attack_sessions": len(truth), "folder": str(out), "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--month", action="append", required=True, help="YYYY-MM (repeat for several months)")
    parser.add_argument("--lines", type=int, default=200_000, help="events per month (default 200,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the month folders (default data/raw_logs/security)"
    )
    args = parser.parse_args(argv)
    root = args.out or PROJECT_ROOT / "data" / "raw_logs" / "security"
    for month in args.month:
        written = write_month(month, args.lines, root / month, seed=args.seed)
        print(orjson.dumps(written).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
