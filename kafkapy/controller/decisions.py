"""The pure controller: `on_event(ctx, event) -> list[Action]` (Kafka's KafkaController
event handlers, §3.4-3.6 of the reference).

No I/O: the edge has already read whatever ZooKeeper data the event needs and applies the
returned actions. Each handler logs its decision in plain words.
"""
from __future__ import annotations

import logging
from kafkapy.controller import context as C
from kafkapy.controller import events as E
from kafkapy.controller import reassignment
from kafkapy.controller.actions import (Action, AddBrokerChannel, DeleteIsrChangeNotifications,
                                        DeleteTopicZNodes, DeleteZNode, RemoveBrokerChannel)
from kafkapy.controller.context import ControllerContext
from kafkapy.controller.state_machines import (Planner, controlled_shutdown_strategy, describe,
                                               preferred_strategy, unclean_strategy)
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk import paths

log = logging.getLogger(__name__)


def on_event(ctx: ControllerContext, event: object) -> list[Action]:
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise TypeError(f"the pure controller does not handle {type(event).__name__}")
    planner = Planner(ctx)
    handler(planner, event)
    return planner.finish()


# --- failover --------------------------------------------------------------------------

def _failover(p: Planner, _: E.Failover) -> None:
    ctx = p.ctx
    p.batch.add_update_metadata(ctx.live_or_shutting_down_ids, [])
    p.flush()  # brokers learn the live set (and the new controller) before anything else
    online_pairs, offline_pairs = [], []
    for tp in ctx.all_partitions():
        state = ctx.states.get(tp)
        if state is None:
            ctx.partition_states[tp] = C.NEW
        elif ctx.is_replica_online(state.leader):
            ctx.partition_states[tp] = C.ONLINE
        else:
            ctx.partition_states[tp] = C.OFFLINE
        for broker in ctx.replicas(tp):
            pair = (tp, broker)
            if ctx.is_replica_online(broker, include_shutting_down=True):
                online_pairs.append(pair)
            else:
                ctx.replica_states[pair] = C.R_DELETION_INELIGIBLE
                offline_pairs.append(pair)
    before = {tp: (s.leader, list(s.isr)) for tp, s in ctx.states.items()}
    p.online_replicas(online_pairs)
    p.offline_replicas([pair for pair in offline_pairs if not ctx.is_deleting(pair[0].topic)])
    failed = p.trigger_online()
    changed = "; ".join(f"{tp} now led by {s.leader}, ISR {s.isr}"
                        for tp, s in sorted(ctx.states.items(), key=lambda i: str(i[0]))
                        if tp in before and before[tp] != (s.leader, s.isr))
    p.note(f"controller {ctx.controller_id} took over at epoch {ctx.epoch}: "
           f"{len(ctx.live_brokers)} live brokers {sorted(ctx.live_brokers)}, "
           f"{len(ctx.assignments)} partitions"
           + (f"; {changed}" if changed else "")
           + (f"; leaderless: {describe(failed)}" if failed else ""))
    _resume_deletions(p)


# --- brokers ---------------------------------------------------------------------------

def _broker_change(p: Planner, ev: E.BrokerChange) -> None:
    ctx = p.ctx
    old = dict(ctx.live_brokers)
    new_ids = sorted(set(ev.current) - set(old))
    dead_ids = sorted(set(old) - set(ev.current))
    bounced = sorted(b for b in set(ev.current) & set(old) if ev.current[b].epoch > old[b].epoch)
    for b in dead_ids:
        p.actions.append(RemoveBrokerChannel(b))
        del ctx.live_brokers[b]
    for b in new_ids:
        ctx.live_brokers[b] = ev.current[b]
        p.actions.append(AddBrokerChannel(ev.current[b]))
    if new_ids:
        _broker_startup(p, new_ids)
    if bounced:
        p.note(f"brokers {bounced} bounced (new broker epoch): handling as failure then join")
        for b in bounced:
            p.actions.append(RemoveBrokerChannel(b))
            del ctx.live_brokers[b]
        _broker_failure(p, bounced)
        p.flush()
        for b in bounced:
            ctx.live_brokers[b] = ev.current[b]
            p.actions.append(AddBrokerChannel(ev.current[b]))
        _broker_startup(p, bounced)
    if dead_ids:
        _broker_failure(p, dead_ids)


def _broker_startup(p: Planner, brokers: list[int]) -> None:
    ctx = p.ctx
    ctx.shutting_down.difference_update(brokers)
    existing = ctx.live_or_shutting_down_ids - set(brokers)
    p.batch.add_update_metadata(existing, [])
    p.batch.add_update_metadata(brokers, ctx.all_partitions())
    p.flush()
    pairs = [(tp, b) for b in brokers for tp in ctx.partitions_on_broker(b)]
    p.online_replicas([pair for pair in pairs if not ctx.is_deleting(pair[0].topic)])
    before = {tp: ctx.states[tp].leader for tp in ctx.states}
    p.trigger_online()
    moved = [f"{tp} led by {s.leader}" for tp, s in sorted(ctx.states.items(), key=lambda i: str(i[0]))
             if before.get(tp) != s.leader]
    p.note(f"brokers {brokers} joined" + (f" -> {', '.join(moved)}" if moved else ""))
    for tp, b in pairs:
        if ctx.is_deleting(tp.topic) and ctx.replica_state(tp, b) == C.R_DELETION_INELIGIBLE:
            ctx.replica_states[(tp, b)] = C.R_OFFLINE
    _resume_deletions(p)


def _broker_failure(p: Planner, brokers: list[int]) -> None:
    ctx = p.ctx
    ctx.shutting_down.difference_update(brokers)
    dead = set(brokers)
    isr_before = {tp: list(s.isr) for tp, s in ctx.states.items()}
    led = [tp for tp, s in ctx.states.items()
           if s.leader in dead and not ctx.is_deleting(tp.topic)]
    p.offline_partitions(led)
    leaderless = p.online_partitions(led)
    pairs = [(tp, b) for b in brokers for tp in ctx.partitions_on_broker(b)]
    p.offline_replicas([pair for pair in pairs if not ctx.is_deleting(pair[0].topic)])
    for tp, b in pairs:
        if ctx.is_deleting(tp.topic):
            ctx.replica_states[(tp, b)] = C.R_DELETION_INELIGIBLE
            ctx.topics_ineligible.add(tp.topic)
    p.batch.add_update_metadata(ctx.live_or_shutting_down_ids, [])
    moved = [tp for tp in led if tp not in leaderless]
    detail = "; ".join(f"{tp} now led by {ctx.states[tp].leader}, ISR {ctx.states[tp].isr}"
                       for tp in sorted(moved, key=str))
    # partitions it only followed: out of the ISR (the leader stays)
    shrunk = "; ".join(f"{tp} ISR {isr_before[tp]} -> {ctx.states[tp].isr}"
                       for tp in sorted({tp for tp, _ in pairs}, key=str)
                       if tp not in led and tp in isr_before and tp in ctx.states
                       and ctx.states[tp].isr != isr_before[tp])
    p.note(f"broker(s) {brokers} failed (registration gone) -> "
           + (detail or "no leadership moved")
           + (f"; followers dropped from ISR: {shrunk}" if shrunk else "")
           + (f"; leaderless: {describe(leaderless)}" if leaderless else ""))


def _broker_modification(p: Planner, ev: E.BrokerModification) -> None:
    ctx = p.ctx
    old = ctx.live_brokers.get(ev.broker_id)
    if old is None or (old.endpoints == ev.registration.endpoints and old.rack == ev.registration.rack):
        return
    ctx.live_brokers[ev.broker_id] = ev.registration
    p.actions.append(RemoveBrokerChannel(ev.broker_id))
    p.actions.append(AddBrokerChannel(ev.registration))
    p.batch.add_update_metadata(ctx.live_or_shutting_down_ids, ctx.all_partitions())
    p.note(f"broker {ev.broker_id} changed endpoints to "
           f"{[e.connection_string() for e in ev.registration.endpoints]}")


# --- topics ----------------------------------------------------------------------------

def _new_partitions(p: Planner, tps: list[TopicPartition]) -> None:
    ctx = p.ctx
    for tp in tps:
        ctx.partition_states[tp] = C.NEW
        for b in ctx.replicas(tp):
            ctx.replica_states[(tp, b)] = C.R_NEW
    failed = p.online_partitions(tps)
    p.online_replicas([(tp, b) for tp in tps if tp not in failed for b in ctx.replicas(tp)
                       if ctx.is_replica_online(b, include_shutting_down=True)])


def _topic_change(p: Planner, ev: E.TopicChange) -> None:
    ctx = p.ctx
    current = set(ev.assignments)
    for topic in sorted(ctx.topics - current):
        ctx.remove_topic(topic)
    added: list[TopicPartition] = []
    for topic in sorted(current - ctx.topics):
        if topic in ev.configs:
            ctx.topic_configs[topic] = dict(ev.configs[topic])
        added += ctx.add_topic(topic, ev.assignments[topic])
    if added:
        p.note(f"new topic partitions {describe(added)}")
        _new_partitions(p, added)


def _partition_modifications(p: Planner, ev: E.PartitionModifications) -> None:
    ctx = p.ctx
    if ctx.is_deleting(ev.topic):
        p.note(f"ignoring partition changes of {ev.topic}: it is being deleted")
        return
    known = {tp.partition for tp in ctx.partitions_of(ev.topic)}
    grown = {k: v for k, v in ev.assignment.partitions.items() if k not in known}
    if not grown:
        return
    added = ctx.add_topic(ev.topic, ev.assignment)
    p.note(f"partitions added to {ev.topic}: {describe(added)}")
    _new_partitions(p, added)


# --- deletion --------------------------------------------------------------------------

def _topic_deletion(p: Planner, ev: E.TopicDeletion) -> None:
    ctx = p.ctx
    for topic in sorted(ev.topics - ctx.topics):
        p.actions.append(DeleteZNode(paths.delete_topic_path(topic)))
    wanted = ev.topics & ctx.topics
    if not ctx.delete_topic_enable:
        for topic in sorted(wanted):
            p.note(f"not deleting {topic}: delete.topic.enable is false")
            p.actions.append(DeleteZNode(paths.delete_topic_path(topic)))
        return
    fresh = sorted(wanted - ctx.topics_to_delete)
    if fresh:
        p.note(f"deletion requested for topics {fresh}")
    ctx.topics_to_delete.update(wanted)
    _resume_deletions(p)


def _resume_deletions(p: Planner) -> None:
    """Kafka's resumeDeletions: finish topics whose replicas are all deleted; start or
    retry those whose replicas are all on live brokers; others wait (ineligible)."""
    ctx = p.ctx
    for topic in sorted(ctx.topics_to_delete):
        tps = ctx.partitions_of(topic)
        pairs = [(tp, b) for tp in tps for b in ctx.replicas(tp)]
        states = [ctx.replica_state(tp, b) for tp, b in pairs]
        if all(s == C.R_DELETION_SUCCESSFUL for s in states):
            p.actions.append(DeleteTopicZNodes(topic))
            ctx.remove_topic(topic)
            p.note(f"topic {topic} deleted")
            continue
        if any(s == C.R_DELETION_STARTED for s in states):
            continue  # waiting for StopReplica responses
        if any(not ctx.is_replica_online(b, include_shutting_down=True) for _, b in pairs):
            ctx.topics_ineligible.add(topic)
            for tp, b in pairs:
                if not ctx.is_replica_online(b, include_shutting_down=True):
                    ctx.replica_states[(tp, b)] = C.R_DELETION_INELIGIBLE
            continue
        ctx.topics_ineligible.discard(topic)
        todo = [(tp, b) for tp, b in pairs if ctx.replica_state(tp, b) != C.R_DELETION_SUCCESSFUL]
        p.batch.add_update_metadata(ctx.live_or_shutting_down_ids, tps)  # leader -2: drop it
        p.offline_partitions(tps)
        p.nonexistent_partitions(tps)
        for tp, b in todo:
            p.batch.add_stop_replica([b], tp, delete=False)
        p.start_replica_deletion(todo)


def _replica_deletion_result(p: Planner, ev: E.ReplicaDeletionResult) -> None:
    ctx = p.ctx
    for tp in ev.succeeded:
        if ctx.replica_state(tp, ev.broker_id) == C.R_DELETION_STARTED:
            ctx.replica_states[(tp, ev.broker_id)] = C.R_DELETION_SUCCESSFUL
    for tp in ev.failed:
        if ctx.replica_state(tp, ev.broker_id) == C.R_DELETION_STARTED:
            ctx.replica_states[(tp, ev.broker_id)] = C.R_DELETION_INELIGIBLE
            ctx.topics_ineligible.add(tp.topic)
    if ev.failed:
        p.note(f"broker {ev.broker_id} failed to delete {describe(ev.failed)}; will retry")
        for tp in ev.failed:  # retried on the next resume
            ctx.replica_states[(tp, ev.broker_id)] = C.R_OFFLINE
    _resume_deletions(p)


# --- ISR notifications, shutdown, preferred election, retries ---------------------------

def _isr_change(p: Planner, ev: E.IsrChangeNotification) -> None:
    ctx = p.ctx
    known = {tp: s for tp, s in ev.states.items() if tp in ctx.assignments}
    ctx.states.update(known)
    p.batch.add_update_metadata(ctx.live_or_shutting_down_ids, known)
    if ev.names:
        p.actions.append(DeleteIsrChangeNotifications(tuple(ev.names)))
    reassignment.maybe_complete(p, list(known))
    if known:
        p.note("ISR changes: " + "; ".join(f"{tp} ISR {s.isr}" for tp, s in sorted(
            known.items(), key=lambda i: str(i[0]))))


def controlled_shutdown_error(ctx: ControllerContext, broker_id: int, broker_epoch: int) -> ErrorCode:
    if broker_id not in ctx.live_brokers:
        return ErrorCode.BROKER_NOT_AVAILABLE
    if broker_epoch != -1 and broker_epoch < ctx.broker_epoch(broker_id):
        return ErrorCode.STALE_BROKER_EPOCH
    return ErrorCode.NONE


def remaining_partitions(ctx: ControllerContext, broker_id: int) -> list[TopicPartition]:
    """Partitions (RF > 1) the broker still leads: what ControlledShutdown replies with."""
    return [tp for tp in ctx.partitions_led_by(broker_id) if len(ctx.replicas(tp)) > 1]


def _controlled_shutdown(p: Planner, ev: E.ControlledShutdown) -> None:
    ctx = p.ctx
    if controlled_shutdown_error(ctx, ev.broker_id, ev.broker_epoch) != ErrorCode.NONE:
        return
    ctx.shutting_down.add(ev.broker_id)
    act_on = [tp for tp in ctx.partitions_on_broker(ev.broker_id)
              if len(ctx.replicas(tp)) > 1 and tp in ctx.states and not ctx.is_deleting(tp.topic)]
    led = [tp for tp in act_on if ctx.states[tp].leader == ev.broker_id]
    followed = [tp for tp in act_on if ctx.states[tp].leader != ev.broker_id]
    isr_before = {tp: list(ctx.states[tp].isr) for tp in followed}
    stuck = p.online_partitions(led, controlled_shutdown_strategy)
    p.offline_replicas([(tp, ev.broker_id) for tp in followed])
    moved = "; ".join(f"{tp} now led by {ctx.states[tp].leader}, ISR {ctx.states[tp].isr}"
                      for tp in led if tp not in stuck)
    shrunk = "; ".join(f"{tp} ISR {isr_before[tp]} -> {ctx.states[tp].isr}"
                       for tp in followed if ctx.states[tp].isr != isr_before[tp])
    p.note(f"broker {ev.broker_id} shutting down -> {moved or 'no leadership to move'}"
           + (f"; follower dropped from ISR: {shrunk}" if shrunk else "")
           + (f"; still led by it (no other live ISR member): {describe(stuck)}"
              if stuck else ""))


def _preferred_election(p: Planner, ev: E.PreferredReplicaElection) -> None:
    ctx = p.ctx
    todo = [tp for tp in ev.partitions
            if tp in ctx.states and not ctx.is_deleting(tp.topic)
            and ctx.partition_state(tp) == C.ONLINE and ctx.replicas(tp)
            and ctx.states[tp].leader != ctx.replicas(tp)[0]]
    failed = p.online_partitions(todo, preferred_strategy)
    done = [tp for tp in todo if tp not in failed]
    if todo:
        p.note(f"preferred leader election: moved {describe(done)}"
               + (f"; preferred leader unavailable for {describe(failed)}" if failed else ""))
    if ev.from_admin_node:
        p.actions.append(DeleteZNode(paths.PREFERRED_REPLICA_ELECTION))


def _unclean_election(p: Planner, ev: E.UncleanElection) -> None:
    ctx = p.ctx
    todo = [tp for tp in ev.partitions if tp in ctx.states and not ctx.is_deleting(tp.topic)
            and not ctx.is_replica_online(ctx.states[tp].leader)]
    p.offline_partitions(todo)
    failed = p.online_partitions(todo, unclean_strategy)
    p.note(f"admin unclean election for {describe(todo)}"
           + (f"; no live replica for {describe(failed)}" if failed else ""))


def _reassign(p: Planner, ev: E.Reassign) -> None:
    reassignment.start(p, dict(ev.targets))


def _reassignment_check(p: Planner, ev: E.ReassignmentCheck) -> None:
    reassignment.maybe_complete(p, ev.partitions)


def _retry_election(p: Planner, ev: E.RetryElection) -> None:
    ctx = p.ctx
    tps = [tp for tp in ev.partitions if tp in ctx.assignments and not ctx.is_deleting(tp.topic)]
    for tp in tps:
        ctx.partition_states[tp] = C.ONLINE if tp in ctx.states else C.NEW
    existing = [tp for tp in tps if tp in ctx.states]
    p.offline_partitions(existing)
    p.online_partitions(tps)


_HANDLERS = {
    E.Failover: _failover,
    E.BrokerChange: _broker_change,
    E.BrokerModification: _broker_modification,
    E.TopicChange: _topic_change,
    E.PartitionModifications: _partition_modifications,
    E.TopicDeletion: _topic_deletion,
    E.ReplicaDeletionResult: _replica_deletion_result,
    E.IsrChangeNotification: _isr_change,
    E.ControlledShutdown: _controlled_shutdown,
    E.PreferredReplicaElection: _preferred_election,
    E.UncleanElection: _unclean_election,
    E.Reassign: _reassign,
    E.ReassignmentCheck: _reassignment_check,
    E.RetryElection: _retry_election,
}
