"""`listeners`, `advertised.listeners`, `listener.security.protocol.map`, `zookeeper.connect`.

These are strings with their own little grammar; parsing them once here means the network
layer and broker registration get typed endpoints and a clear error at startup.
"""
from __future__ import annotations

import re
import socket

import attrs

from .definitions import ConfigError

SUPPORTED_PROTOCOLS = ("PLAINTEXT",)
_KNOWN_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# NAME://host:port, host may be empty or a bracketed IPv6 address.
_LISTENER_RE = re.compile(r"^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$")


@attrs.frozen(slots=True)
class Endpoint:
    """One listener: empty host = all interfaces (advertised: this machine's name)."""

    listener_name: str
    host: str
    port: int
    security_protocol: str = "PLAINTEXT"

    def connection_string(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.listener_name}://{host}:{self.port}"


@attrs.frozen(slots=True)
class ZkConnect:
    """`zookeeper.connect` split into the host list and the optional chroot path."""

    hosts: str
    chroot: str

    @property
    def connect_string(self) -> str:
        return self.hosts + self.chroot


def parse_protocol_map(text: str, key: str = "listener.security.protocol.map") -> dict[str, str]:
    """`NAME:PROTOCOL,...` -> {NAME: PROTOCOL}; names are case-insensitive (upper-cased)."""
    mapping: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        name, sep, proto = item.partition(":")
        name, proto = name.strip().upper(), proto.strip().upper()
        if not sep or not name or proto not in _KNOWN_PROTOCOLS:
            raise ConfigError(
                f"Invalid value '{text}' for configuration '{key}': entry '{item}' must be "
                f"LISTENER_NAME:PROTOCOL with PROTOCOL one of {', '.join(_KNOWN_PROTOCOLS)}")
        if name in mapping:
            raise ConfigError(f"Invalid value '{text}' for configuration '{key}': "
                              f"listener name {name} appears twice")
        mapping[name] = proto
    return mapping


def parse_listeners(text: str, protocol_map: dict[str, str], key: str = "listeners",
                    require_unique_ports: bool = True) -> list[Endpoint]:
    """Parse `PLAINTEXT://host:port,...` into endpoints; only PLAINTEXT is supported."""
    endpoints: list[Endpoint] = []
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise ConfigError(f"Invalid value '{text}' for configuration '{key}': at least one "
                          "listener such as PLAINTEXT://:9092 is required")
    for item in items:
        m = _LISTENER_RE.match(item)
        if m is None:
            raise ConfigError(
                f"Invalid value '{text}' for configuration '{key}': '{item}' is not of the "
                "form LISTENER_NAME://host:port (e.g. PLAINTEXT://localhost:9092, "
                "PLAINTEXT://:9092)")
        name, host, port = m.group(1).upper(), m.group(2), int(m.group(3))
        if not 0 <= port <= 65535:
            raise ConfigError(f"Invalid value '{text}' for configuration '{key}': port {port} "
                              f"of listener {name} must be between 0 and 65535")
        protocol = protocol_map.get(name)
        if protocol is None:
            raise ConfigError(
                f"Invalid value '{text}' for configuration '{key}': no security protocol "
                f"defined for listener {name}; add {name}:PLAINTEXT to "
                "listener.security.protocol.map")
        if protocol not in SUPPORTED_PROTOCOLS:
            raise ConfigError(
                f"Invalid value '{text}' for configuration '{key}': listener {name} uses "
                f"security protocol {protocol}, but kafkapy supports only PLAINTEXT for now")
        endpoints.append(Endpoint(name, host, port, protocol))
    names = [e.listener_name for e in endpoints]
    if len(set(names)) != len(names):
        raise ConfigError(f"Invalid value '{text}' for configuration '{key}': each listener "
                          "must have a different name")
    ports = [e.port for e in endpoints if e.port != 0]
    if require_unique_ports and len(set(ports)) != len(ports):
        raise ConfigError(f"Invalid value '{text}' for configuration '{key}': each listener "
                          "must have a different port")
    return endpoints


def parse_zookeeper_connect(text: str) -> ZkConnect:
    """`h1:2181,h2:2181/chroot` -> ZkConnect(hosts, chroot); chroot is "" when absent."""
    text = text.strip()
    hosts, slash, path = text.partition("/")
    chroot = slash + path
    bad = "Invalid value '{}' for configuration 'zookeeper.connect': {}"
    if not hosts or any(not h.strip() or h.strip().startswith(":") for h in hosts.split(",")):
        raise ConfigError(bad.format(text, "expected host:port[,host:port...][/chroot], "
                                           "e.g. localhost:2181"))
    for h in hosts.split(","):
        _, colon, port = h.strip().rpartition(":")
        if colon and not (port.isdigit() and 0 < int(port) <= 65535):
            raise ConfigError(bad.format(text, f"port of '{h.strip()}' is not a valid port"))
    if chroot == "/":
        chroot = ""
    if chroot and (chroot.endswith("/") or "//" in chroot):
        raise ConfigError(bad.format(text, f"chroot path '{chroot}' must not end with '/' "
                                           "or contain empty segments"))
    return ZkConnect(hosts, chroot)


def resolve_advertised(endpoints: list[Endpoint], bound_ports: dict[str, int] | None = None,
                       hostname: str | None = None) -> list[Endpoint]:
    """What the broker registers in ZooKeeper: empty host -> this machine's canonical name
    (as Kafka does), port 0 -> the port actually bound for that listener name."""
    bound_ports = bound_ports or {}
    out: list[Endpoint] = []
    for ep in endpoints:
        host = ep.host or hostname or socket.getfqdn()
        port = ep.port or bound_ports.get(ep.listener_name, 0)
        out.append(attrs.evolve(ep, host=host, port=port))
    return out
