"""What a request handler knows about the request it serves and the broker serving it."""
from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from kafkapy.server.broker import KafkaServer


@attrs.define(slots=True)
class RequestContext:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_host: str
    server: "KafkaServer"
    connection_id: str = ""
