"""LeaderEpochFileCache: ordered (epoch, start offset) pairs in `leader-epoch-checkpoint`.

Followers use it to find where their log diverges from the leader's (KIP-101/279), so
every change is written through to the checkpoint before it is relied upon.
"""
from __future__ import annotations

from typing import Callable

from kafkapy.log.checkpoint import CheckpointError, read_epoch_checkpoint, write_epoch_checkpoint

UNDEFINED = -1


class LeaderEpochFileCache:
    """Epoch -> first offset written in that epoch, strictly increasing in both."""

    __slots__ = ("path", "_entries", "_log_end_offset")

    def __init__(self, path: str, log_end_offset: Callable[[], int]) -> None:
        self.path = path
        self._log_end_offset = log_end_offset
        try:
            self._entries: list[tuple[int, int]] = read_epoch_checkpoint(path)
        except CheckpointError:
            self._entries = []  # rebuilt from the batch headers by recovery

    @property
    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        return self._entries[-1][0] if self._entries else UNDEFINED

    def latest_entry(self) -> tuple[int, int] | None:
        return self._entries[-1] if self._entries else None

    def earliest_entry(self) -> tuple[int, int] | None:
        return self._entries[0] if self._entries else None

    def _flush(self) -> None:
        write_epoch_checkpoint(self.path, self._entries)

    def assign(self, epoch: int, start_offset: int, flush: bool = True) -> bool:
        """Record that `epoch` starts at `start_offset`; entries that would break
        monotonicity (epoch or offset not below the new one) are removed first."""
        if epoch < 0 or start_offset < 0:
            return False
        latest = self.latest_entry()
        if latest is not None and latest[0] == epoch and start_offset >= latest[1]:
            return False
        while self._entries and (self._entries[-1][0] >= epoch or self._entries[-1][1] >= start_offset):
            self._entries.pop()
        self._entries.append((epoch, start_offset))
        if flush:
            self._flush()
        return True

    def flush(self) -> None:
        self._flush()

    def end_offset_for(self, requested_epoch: int, log_end_offset: int | None = None) -> tuple[int, int]:
        """OffsetsForLeaderEpoch answer for `requested_epoch` (§4.4)."""
        leo = self._log_end_offset() if log_end_offset is None else log_end_offset
        if requested_epoch == UNDEFINED or not self._entries:
            return UNDEFINED, UNDEFINED
        if requested_epoch == self.latest_epoch:
            return requested_epoch, leo
        # First entry with epoch > requested.
        for i, (epoch, start) in enumerate(self._entries):
            if epoch > requested_epoch:
                if i == 0:
                    return requested_epoch, start
                return self._entries[i - 1][0], start
        # requested is above every epoch we know of
        return UNDEFINED, UNDEFINED

    def epoch_for_offset(self, offset: int) -> int | None:
        """Epoch of the leader that wrote `offset`, if known."""
        found = None
        for epoch, start in self._entries:
            if start <= offset:
                found = epoch
            else:
                break
        return found

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop entries starting at or after `end_offset` (log truncated to it)."""
        if end_offset >= 0 and self._entries and self._entries[-1][1] >= end_offset:
            self._entries = [e for e in self._entries if e[1] < end_offset]
            self._flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """Log start moved to `start_offset`: drop older entries, keeping the epoch
        that covers `start_offset` re-anchored there."""
        older = [e for e in self._entries if e[1] <= start_offset]
        if not older or (len(older) == 1 and older[0][1] == start_offset):
            return
        keep = (older[-1][0], start_offset)
        self._entries = [keep] + [e for e in self._entries if e[1] > start_offset]
        self._flush()

    def clear_and_flush(self) -> None:
        self._entries = []
        self._flush()
