"""The compat suite's driver for the Python-reachable clients: confluent-kafka, kafka-python,
aiokafka and kcat (run as a subprocess). One invocation runs one scenario:

  py_driver.py --client C --scenario admin|produce|consume|group --bootstrap B --topic T
               [--codec none|gzip|snappy|lz4|zstd] [--count N] [--value-size BYTES]
               [--base-ts MS] [--group G] [--max N] [--src NAME] [--out FILE]
               [--produced FILE] [--timeout SECONDS]

The scenarios and files are described in compat_common.py and tests/clients/README.md.
Exit 0 only when everything the client can do worked; an operation the client lacks is
named on stderr as "UNSUPPORTED <op>: <reason>".
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compat_common as cc  # noqa: E402

MODULES = {"confluent-kafka": "py_confluent", "kafka-python": "py_kafka_python",
           "aiokafka": "py_aiokafka", "kcat": "py_kcat"}


def main(argv: list[str] | None = None) -> None:
    a = cc.parse_args(tuple(MODULES), argv)
    module = importlib.import_module(MODULES[a.client])
    module.SCENARIOS[a.scenario](a)


if __name__ == "__main__":
    main(sys.argv[1:])
