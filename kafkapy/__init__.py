"""kafkapy: a Kafka-protocol broker coordinated by ZooKeeper."""
