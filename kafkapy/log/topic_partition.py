"""TopicPartition: the key for a partition everywhere, and its on-disk directory name."""
from __future__ import annotations

import attrs


@attrs.frozen(slots=True)
class TopicPartition:
    """One partition of one topic; hashable so it keys dicts across the broker."""

    topic: str
    partition: int

    @property
    def dir_name(self) -> str:
        """Kafka's partition directory name `<topic>-<partition>`."""
        return f"{self.topic}-{self.partition}"

    @classmethod
    def from_dir_name(cls, name: str) -> "TopicPartition":
        """Parse `<topic>-<partition>`; the topic itself may contain dashes."""
        topic, sep, part = name.rpartition("-")
        if not sep or not topic or not part.isdigit():
            raise ValueError(f"not a partition directory name: {name!r}")
        return cls(topic, int(part))

    def __str__(self) -> str:
        return self.dir_name
