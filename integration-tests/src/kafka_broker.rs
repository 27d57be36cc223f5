//! A Kafka broker for the `kafka` tests and the Kafka benchmark: librdkafka's mock cluster
//! (`rd_kafka_mock_cluster_new`), an implementation of the Kafka protocol's broker side that
//! librdkafka's own test suite runs against, built from source with the client (nothing to
//! download, no JVM).
//!
//! Why not Apache Kafka itself: its released artifacts come from Maven Central (or the Apache
//! mirrors), which this project's machines and CI cannot reach (`mvn dependency:get` fails to
//! resolve the host at once), and no package registry they reach carries them. The mock
//! cluster speaks the same wire protocol to the bridge's librdkafka clients — produce with
//! idempotence and `acks=all`, fetch, consumer groups with JoinGroup/SyncGroup/Heartbeat and
//! member session timeouts, offset commits — but it is not the JVM broker: it keeps data in
//! memory (at most 5 MiB per partition: older message sets are deleted, as with a small
//! `retention.bytes`, so a test's unread backlog must stay under it), has no replication to
//! lose, and its group coordinator is librdkafka's, not Kafka's (after a member's session
//! times out it waits up to the session timeout less a second for the others to rejoin). Tests against a real cluster remain to be run where one is reachable (the bridge
//! takes any `--kafka-brokers`).
//!
//! The broker listens on 127.0.0.1 on a port the kernel picks (librdkafka binds port 0
//! itself), so there is no port to race for. [`KafkaBroker::stop`] and
//! [`KafkaBroker::restart`] take the broker down (connections dropped, new ones refused) and
//! back up, with its data kept, as a restarted broker with its log directory would.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A one-broker cluster on 127.0.0.1; stops when dropped.
pub struct KafkaBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

/// The broker could not be started or driven.
#[derive(Debug)]
pub struct BrokerError(pub String);

impl std::fmt::Display for BrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BrokerError {}

impl KafkaBroker {
    /// Starts a broker with `topic` of `partitions` partitions.
    ///
    /// # Errors
    /// librdkafka could not create the cluster or the topic.
    pub fn start(topic: &str, partitions: i32) -> Result<KafkaBroker, BrokerError> {
        let cluster = MockCluster::new(1).map_err(|e| BrokerError(format!("mock cluster: {e}")))?;
        cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| BrokerError(format!("creating {topic}: {e}")))?;
        Ok(KafkaBroker { cluster })
    }

    /// Adds another topic.
    ///
    /// # Errors
    /// librdkafka refused it.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), BrokerError> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| BrokerError(format!("creating {topic}: {e}")))
    }

    /// `HOST:PORT` for `--kafka-brokers` / `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Takes the broker down: open connections are closed, new ones refused.
    ///
    /// # Errors
    /// librdkafka refused.
    pub fn stop(&self) -> Result<(), BrokerError> {
        self.cluster
            .broker_down(1)
            .map_err(|e| BrokerError(format!("broker down: {e}")))
    }

    /// Brings the broker back with everything it had.
    ///
    /// # Errors
    /// librdkafka refused.
    pub fn restart(&self) -> Result<(), BrokerError> {
        self.cluster
            .broker_up(1)
            .map_err(|e| BrokerError(format!("broker up: {e}")))
    }

    /// Delays every answer of the broker by `rtt` (none: `Duration::ZERO`).
    ///
    /// # Errors
    /// librdkafka refused.
    pub fn round_trip_time(&self, rtt: Duration) -> Result<(), BrokerError> {
        self.cluster
            .broker_round_trip_time(1, rtt)
            .map_err(|e| BrokerError(format!("round trip time: {e}")))
    }
}
