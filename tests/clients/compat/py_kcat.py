"""kcat (librdkafka's command-line client) for the compat suite.

What kcat 1.7 cannot do, named on stderr as UNSUPPORTED by this driver:
* admin: no CreateTopics/DeleteTopics/DescribeConfigs (kcat has no admin API); it describes
  with `-L -J` a topic the test created (and leaves it).
* produce: its line-mode producer (`-P -K <tab>`) gives every message the same `-H` headers
  (`kcat_headers`) and no explicit timestamp (librdkafka stamps CreateTime at produce time),
  and it prints no per-message delivery reports (it exits non-zero when one failed).
It is otherwise run as a user would: idempotent producer, acks=all, `-z` codec; consume with
`-C -o beginning -e -J`; groups with the balanced consumer `-G` (librdkafka auto-commit of
the offsets of records handed to kcat, every 5 s and at close; kcat exits after `-c` records
or at the end with `-e`).
"""
from __future__ import annotations

import json
import subprocess
import time

import compat_common as cc

LARGE = 4 * 1024 * 1024
NO_HEADERS_REASON = "kcat -P gives every message the same -H headers, none per message"


def kcat_headers(src: str) -> list[tuple[str, str]]:
    return [("src", src), ("producer", "kcat")]


def _run(a, cmd: list[str], stdin: bytes | None = None) -> bytes:
    res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=cc.time_left(a))
    err = res.stderr.decode(errors="replace")
    if res.returncode != 0 or "Delivery failed" in err:
        cc.fail(f"{' '.join(cmd[:3])} exited {res.returncode}: {err[-3000:]}")
    return res.stdout


def _large_conf(a) -> list[str]:
    if not a.value_size:
        return []
    return ["-X", f"message.max.bytes={LARGE}", "-X", f"fetch.max.bytes={LARGE}"]


def admin(a) -> None:
    cc.unsupported("create", "kcat has no admin API (no CreateTopics)")
    while True:
        md = json.loads(_run(a, ["kcat", "-L", "-J", "-b", a.bootstrap, "-t", a.topic]))
        topics = [t for t in md.get("topics", []) if t["topic"] == a.topic and not t.get("error")]
        parts = {}
        if topics:
            parts = {str(p["partition"]): {"leader": p["leader"],
                                           "replicas": [r["id"] for r in p["replicas"]],
                                           "isr": [r["id"] for r in p["isrs"]]}
                     for p in topics[0]["partitions"]}
        if (len(parts) == cc.PARTITIONS
                and all(len(p["replicas"]) == cc.REPLICATION_FACTOR and p["leader"] >= 0
                        for p in parts.values())):
            break
        cc.time_left(a)
        time.sleep(0.2)
    cc.unsupported("describe-configs", "kcat has no DescribeConfigs")
    cc.unsupported("delete", "kcat has no admin API (no DeleteTopics)")
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"created": False, "partitions": parts, "deleted": False}, f)


def produce(a) -> None:
    cc.unsupported("headers", NO_HEADERS_REASON)
    cc.unsupported("timestamps", "kcat -P cannot set a message's timestamp")
    cc.unsupported("delivery-reports", "kcat -P prints no per-message delivery reports")
    cmd = ["kcat", "-P", "-b", a.bootstrap, "-t", a.topic, "-K", "\t",
           "-X", "acks=all", "-X", "enable.idempotence=true", "-X", "linger.ms=5",
           "-X", "message.timeout.ms=90000"] + _large_conf(a)
    if a.codec != "none":
        cmd += ["-z", a.codec]
    for k, v in kcat_headers(a.src):
        cmd += ["-H", f"{k}={v}"]
    lines = b"".join(m.key + b"\t" + m.value + b"\n" for m in cc.messages(a))
    _run(a, cmd, lines)
    cc.log(f"produced {a.count}")


def _write(a, stdout: bytes, path: str) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for line in stdout.decode().splitlines():
            if line.strip():
                r = json.loads(line)
                h = r.get("headers") or []  # kcat -J: ["k1", "v1", "k2", "v2"]
                out.write(cc.record_line(a, r["partition"], r["offset"], r["key"],
                                         r["payload"], list(zip(h[0::2], h[1::2])), r["ts"]))
                n += 1
    return n


def consume(a) -> None:
    out = _run(a, ["kcat", "-C", "-b", a.bootstrap, "-t", a.topic, "-o", "beginning", "-e",
                   "-J", "-q"] + _large_conf(a))
    cc.log(f"consumed {_write(a, out, a.out)}")


def group(a) -> None:
    cmd = ["kcat", "-b", a.bootstrap, "-G", a.group, "-J", "-q",
           "-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true"]
    cmd += ["-c", str(a.max)] if a.max is not None else ["-e"]
    out = _run(a, cmd + _large_conf(a) + [a.topic])
    cc.log(f"group consumed {_write(a, out, a.out)}")


SCENARIOS = {"admin": admin, "produce": produce, "consume": consume, "group": group}
