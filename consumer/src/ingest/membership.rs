//! Keeping the member's place in the group: re-creating topics a broker lost, reading each partition on from
//! where it should, and joining the group again when it has left this member without partitions.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use shared_models::kafka;
use tokio::time::Instant;

use super::positions::Admission;
use super::{join_group, Ingest, REJOIN_MARGIN};

/// Partitions of the topic this member does not hold whose group offset stands still behind their end: the
/// committed offset and when it was first seen there.
#[derive(Debug, Default)]
pub struct Stalled(HashMap<i32, (i64, Instant)>);

impl Ingest {
    /// The messages of a batch that follow on from what each partition has delivered; a partition that skipped
    /// messages is sought back, and its messages after the gap wait for the re-read.
    pub(super) fn in_order(&mut self, batch: Vec<OwnedMessage>) -> Vec<OwnedMessage> {
        if self.lag.take_rebalanced() {
            self.positions.reset();
        }
        let mut rewound = Vec::new();
        let mut kept = Vec::with_capacity(batch.len());
        for message in batch {
            let partition = message.partition();
            if rewound.contains(&partition) {
                continue;
            }
            if self.positions.expected(partition).is_none() {
                if let Some(start) = self.committed(message.topic(), partition) {
                    self.positions.start(partition, start);
                }
            }
            match self.positions.admit(partition, message.offset()) {
                Admission::Take => kept.push(message),
                Admission::Rewind(offset) => {
                    self.metrics.gaps.inc();
                    log::warn!(
                        "partition {partition} went on at offset {} where {:?} was expected: seeking back to {offset}",
                        message.offset(),
                        self.positions.expected(partition)
                    );
                    if let Err(error) = self.consumer.seek(
                        message.topic(),
                        partition,
                        Offset::Offset(offset),
                        Duration::from_secs(5),
                    ) {
                        log::warn!("cannot seek partition {partition} back yet: {error}");
                    }
                    rewound.push(partition);
                }
            }
        }
        kept
    }

    /// Where the group left a partition: its committed offset, or its first offset when nothing is committed
    /// (`auto.offset.reset=earliest`). `None` when the broker cannot say right now.
    fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(topic, partition);
        let committed = self
            .consumer
            .committed_offsets(wanted, Duration::from_secs(5))
            .ok()?
            .find_partition(topic, partition)?
            .offset();
        match committed {
            Offset::Offset(offset) => Some(offset),
            _ => self
                .consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(5))
                .ok()
                .map(|(low, _)| low),
        }
    }

    /// The watchdog of an idle loop. A member that has held no partition for longer than a session (plus a
    /// margin for the rebalance) joins the group again as a new member. tansu 0.6 can leave a group without
    /// a leader when its leader dies, and its other members then wait for ever (docs/reliability.md); a new
    /// member's join forms the group again.
    pub(super) fn watch_assignment(&mut self, unassigned_since: &mut Option<Instant>) {
        let assigned = self.consumer.assignment().map(|list| list.count()).unwrap_or(0);
        if assigned > 0 {
            *unassigned_since = None;
            return;
        }
        let since = *unassigned_since.get_or_insert_with(Instant::now);
        let limit = Duration::from_millis(self.config.session_timeout_ms) + REJOIN_MARGIN;
        if since.elapsed() < limit {
            return;
        }
        log::warn!(
            "no partition assigned for {:?}; joining the consumer group again as a new member",
            since.elapsed()
        );
        self.rejoin();
        *unassigned_since = Some(Instant::now());
    }

    /// A broker that came back empty has lost its topics: create them again (at most every 10 seconds).
    pub(super) async fn recreate_missing_topics(&self, error: &KafkaError, checked: &mut Instant) {
        let missing = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        );
        if missing && checked.elapsed() >= Duration::from_secs(10) {
            *checked = Instant::now();
            match kafka::ensure_topics(&self.brokers, &self.topics).await {
                Ok(()) => log::info!("the receipts topics exist again"),
                Err(error) => log::warn!("cannot create the receipts topics yet: {error}"),
            }
        }
    }

    /// The watchdog of the group. tansu 0.6 can assign a killed member's partitions to it again when it
    /// rebalances before the member's session ends, and not rebalance when the session does end: those
    /// partitions then stand still for ever while this member works (docs/reliability.md). A partition this
    /// member does not hold whose committed offset has not moved for longer than a session (plus a margin),
    /// though messages wait on it, makes this member join the group again as a new member, and the new
    /// member's join assigns every partition again. Runs between batches, so only while this member itself
    /// is storing.
    pub(super) fn watch_group(&mut self) {
        let owned: BTreeSet<i32> = self
            .consumer
            .assignment()
            .map(|list| {
                list.elements()
                    .iter()
                    .map(|element| element.partition())
                    .collect()
            })
            .unwrap_or_default();
        if owned.is_empty() {
            self.stalled.0.clear();
            return;
        }
        let partitions = self
            .topics
            .first()
            .map(|(_, partitions)| *partitions)
            .unwrap_or_default();
        let others: Vec<i32> = (0..partitions)
            .filter(|partition| !owned.contains(partition))
            .collect();
        self.stalled.0.retain(|partition, _| others.contains(partition));
        for partition in others {
            let Some(committed) = self.committed(&self.topic, partition) else {
                continue;
            };
            let waiting = self
                .consumer
                .fetch_watermarks(&self.topic, partition, Duration::from_secs(2))
                .is_ok_and(|(_, high)| high > committed);
            match self.stalled.0.get(&partition) {
                _ if !waiting => {
                    self.stalled.0.remove(&partition);
                }
                Some((offset, _)) if *offset == committed => {}
                _ => {
                    self.stalled.0.insert(partition, (committed, Instant::now()));
                }
            }
        }
        let limit = Duration::from_millis(self.config.session_timeout_ms) + REJOIN_MARGIN;
        let stuck: Vec<i32> = self
            .stalled
            .0
            .iter()
            .filter(|(_, (_, since))| since.elapsed() >= limit)
            .map(|(partition, _)| *partition)
            .collect();
        if stuck.is_empty() {
            return;
        }
        log::warn!(
            "partitions {stuck:?}, held by other members, have not moved on for {limit:?} though messages wait \
             on them; joining the consumer group again as a new member"
        );
        self.rejoin();
        self.stalled.0.clear();
    }

    /// Leaves the group (committing what was stored) and joins it again as a new member.
    fn rejoin(&mut self) {
        match join_group(&self.member, &self.topic, &self.lag) {
            Ok(consumer) => {
                self.metrics.rejoins.inc();
                self.consumer = consumer;
                self.positions.reset();
            }
            Err(error) => log::warn!("cannot join the consumer group again yet: {error}"),
        }
    }
}
