"""DescribeCluster: the live brokers and the controller, from the metadata cache."""
from __future__ import annotations

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.describe_cluster import (
    DescribeClusterRequest,
    DescribeClusterResponse,
)
from kafkapy.server.context import RequestContext

BROKER_ENDPOINT = 1


async def handle_describe_cluster(ctx: RequestContext,
                                  req: DescribeClusterRequest) -> DescribeClusterResponse:
    server = ctx.server
    if ctx.api_version >= 1 and req.endpoint_type != BROKER_ENDPOINT:
        return DescribeClusterResponse(
            error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message="a ZooKeeper-mode broker only describes broker endpoints",
            endpoint_type=req.endpoint_type, cluster_id=server.cluster_id)
    cache = server.metadata_cache
    brokers = [DescribeClusterResponse.DescribeClusterBroker(broker_id=b.id, host=b.host,
                                                             port=b.port, rack=b.rack)
               for b in cache.alive_brokers()]
    return DescribeClusterResponse(throttle_time_ms=0, error_code=ErrorCode.NONE,
                                   endpoint_type=BROKER_ENDPOINT, cluster_id=server.cluster_id,
                                   controller_id=cache.controller_id, brokers=brokers)


HANDLERS = {ApiKey.DESCRIBE_CLUSTER: handle_describe_cluster}
