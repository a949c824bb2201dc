"""kcat driver: `kcat -P` then `kcat -C -e -J`. Arguments: see workload.parse_args.

kcat has no admin API: the topic is auto-created by the producer's Metadata request, so the
broker must run with auto.create.topics.enable=true and num.partitions=3.
kcat 1.7's line-mode producer cannot give messages their own headers or timestamps: every
message gets the same two headers (`kcat_headers`) and a CreateTime stamped by librdkafka,
and there are no per-message delivery reports (kcat exits non-zero if any delivery failed).
"""
from __future__ import annotations

import json
import subprocess
import sys

import workload as wl


def kcat_headers(src: str) -> list[tuple[str, str]]:
    return [("src", src), ("producer", "kcat")]


def produce(args) -> None:
    cmd = ["kcat", "-P", "-b", args.bootstrap, "-t", args.topic, "-K", "\t",
           "-X", "acks=all", "-X", "linger.ms=5"]
    if args.codec != "none":
        cmd += ["-z", args.codec]
    for k, v in kcat_headers(args.src):
        cmd += ["-H", f"{k}={v}"]
    lines = "".join(f"{m.key}\t{m.value}\n" for m in wl.messages(args.count, args.src, args.base_ts))
    res = subprocess.run(cmd, input=lines.encode(), capture_output=True,
                         timeout=wl.time_left(args))
    if res.returncode != 0 or b"Delivery failed" in res.stderr:
        wl.fail(f"kcat -P exited {res.returncode}: {res.stderr.decode(errors='replace')[-2000:]}")
    wl.log(f"produced {args.count}")


def consume(args) -> None:
    cmd = ["kcat", "-C", "-b", args.bootstrap, "-t", args.topic, "-o", "beginning", "-e", "-J",
           "-q"]
    res = subprocess.run(cmd, capture_output=True, timeout=wl.time_left(args))
    if res.returncode != 0:
        wl.fail(f"kcat -C exited {res.returncode}: {res.stderr.decode(errors='replace')[-2000:]}")
    got = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for line in res.stdout.decode().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            h = r.get("headers") or []
            headers = list(zip(h[0::2], h[1::2]))  # kcat -J: ["k1", "v1", "k2", "v2"]
            out.write(wl.record_line(r["partition"], r["offset"], r["key"], r["payload"],
                                     headers, r["ts"]))
            got += 1
    wl.log(f"consumed {got}")


def main(argv: list[str] | None = None) -> None:
    args = wl.parse_args("kcat", argv)
    produce(args)
    consume(args)


if __name__ == "__main__":
    main(sys.argv[1:])
