"""`kafkapy-server-start PATH [--override k=v ...]`: start a broker from server.properties.

Mirrors Kafka's `kafka-server-start.sh` / `kafka.Kafka` entry point: read the properties,
apply overrides, set up Kafka-style logging and run until SIGTERM/SIGINT. A configuration
mistake prints one line on stderr and exits 1, so scripts and humans see what to fix.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from kafkapy.config.definitions import ConfigError

LOG_LEVEL_ENV = "KAFKAPY_LOG_LEVEL"
_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL")


class KafkaLogFormatter(logging.Formatter):
    """`[2026-11-25 12:00:00,123] INFO message (logger.name)`, as Kafka's log4j layout."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        level = {"WARNING": "WARN", "CRITICAL": "FATAL"}.get(record.levelname, record.levelname)
        text = f"[{stamp},{int(record.msecs):03d}] {level} {record.getMessage()} ({record.name})"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def parse_level(value: str | None) -> int:
    """Log level from KAFKAPY_LOG_LEVEL (Kafka names accepted: TRACE, WARN, FATAL)."""
    name = (value or "INFO").strip().upper()
    if name not in _LEVELS:
        raise ConfigError(f"Invalid {LOG_LEVEL_ENV} '{value}': expected one of "
                          "TRACE, DEBUG, INFO, WARN, ERROR, FATAL")
    return {"TRACE": logging.DEBUG, "WARN": logging.WARNING, "FATAL": logging.CRITICAL}.get(
        name, getattr(logging, name, logging.INFO))


def setup_logging(level: int) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(KafkaLogFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("kazoo").setLevel(max(level, logging.WARNING))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafkapy-server-start",
        description="Start a kafkapy broker (ZooKeeper mode) from a Kafka server.properties.")
    parser.add_argument("config", metavar="server.properties", help="broker properties file")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a property of the file (repeatable)")
    return parser


def _split_overrides(argv: list[str]) -> list[str]:
    """Accept Kafka's `--override k=v` and also `--override=k=v`."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("--override="):
            out += ["--override", arg[len("--override="):]]
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(_split_overrides(list(sys.argv[1:] if argv is None else argv)))
    bad = [o for o in args.override if "=" not in o or not o.partition("=")[0].strip()]
    if bad:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: --override expects KEY=VALUE, got '{bad[0]}'",
              file=sys.stderr)
        return 2
    try:
        level = parse_level(os.environ.get(LOG_LEVEL_ENV))
        from kafkapy.config.broker import KafkaConfig

        config = KafkaConfig.from_file(args.config, args.override)
    except ConfigError as exc:
        print(f"kafkapy: configuration error: {exc}", file=sys.stderr)
        return 1
    setup_logging(level)
    from kafkapy.server.broker import run_server

    try:
        return run_server(config)
    except Exception:  # noqa: BLE001 - last line of defence: log it the way Kafka does
        logging.getLogger("kafkapy.Kafka").exception("Exiting kafkapy due to fatal exception")
        return 1


if __name__ == "__main__":
    sys.exit(main())
