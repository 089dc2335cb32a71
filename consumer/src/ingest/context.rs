//! The consumer group member's context: the lag of each partition, from librdkafka's statistics, and a
//! flag raised by every rebalance.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prometheus::{IntGaugeVec, Opts};
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Statistics};

/// The consumer group's lag, per partition: messages in Kafka not yet stored in PostgreSQL, refreshed from
/// librdkafka's statistics.
#[derive(Clone)]
pub struct LagReporter {
    lag: IntGaugeVec,
    rebalanced: Arc<AtomicBool>,
}

impl LagReporter {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let lag = IntGaugeVec::new(
            Opts::new(
                "lag_messages",
                "Messages of an assigned partition not yet stored (high watermark minus stored offset)",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        Ok(LagReporter {
            lag,
            rebalanced: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Messages not yet stored, over every partition this member holds.
    pub fn total(&self) -> i64 {
        use prometheus::core::Collector;
        self.lag
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_gauge().get_value() as i64)
            .sum()
    }

    /// Whether the assignment changed since the last call.
    pub fn take_rebalanced(&self) -> bool {
        self.rebalanced.swap(false, Ordering::AcqRel)
    }
}

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        for (topic, topic_statistics) in &statistics.topics {
            for partition in topic_statistics.partitions.values() {
                if partition.partition < 0 {
                    continue;
                }
                let number = partition.partition.to_string();
                let labels = [topic.as_str(), number.as_str()];
                match partition_lag(partition) {
                    Some(lag) => self.lag.with_label_values(&labels).set(lag),
                    None => {
                        let _ = self.lag.remove_label_values(&labels);
                    }
                }
            }
        }
    }
}

/// Messages of a partition this consumer has not stored yet, counted from the stored offset, else the
/// committed one, else the low watermark (where `auto.offset.reset=earliest` starts); `None` for a partition
/// not assigned to this consumer. librdkafka writes -1 for an offset it does not know.
fn partition_lag(partition: &rdkafka::statistics::Partition) -> Option<i64> {
    if matches!(partition.fetch_state.as_str(), "none" | "stopped") || partition.hi_offset < 0 {
        return None;
    }
    let next = [
        partition.stored_offset,
        partition.committed_offset,
        partition.lo_offset,
    ]
    .into_iter()
    .find(|offset| *offset >= 0)
    .unwrap_or(0);
    Some((partition.hi_offset - next).max(0))
}

impl ConsumerContext for LagReporter {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                log::info!("assigned partitions {:?}", partition_numbers(partitions))
            }
            Rebalance::Revoke(partitions) => {
                log::info!("partitions {:?} revoked", partition_numbers(partitions))
            }
            Rebalance::Error(error) => log::warn!("rebalance failed: {error}"),
        }
        self.rebalanced.store(true, Ordering::Release);
    }
}

fn partition_numbers(list: &rdkafka::TopicPartitionList) -> Vec<i32> {
    list.elements()
        .iter()
        .map(|element| element.partition())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition as librdkafka's statistics describe it, with the offsets that matter here.
    fn partition(fetch_state: &str, offsets: [i64; 4]) -> rdkafka::statistics::Partition {
        let [stored, committed, lo, hi] = offsets;
        let mut fields = serde_json::json!({
            "partition": 0, "broker": 1, "leader": 1, "desired": true, "unknown": false,
            "fetch_state": fetch_state, "stored_offset": stored, "committed_offset": committed,
            "lo_offset": lo, "hi_offset": hi,
        });
        for unset in [
            "msgq_cnt",
            "msgq_bytes",
            "xmit_msgq_cnt",
            "xmit_msgq_bytes",
            "fetchq_cnt",
            "fetchq_size",
            "query_offset",
            "next_offset",
            "app_offset",
            "eof_offset",
            "ls_offset",
            "consumer_lag",
            "consumer_lag_stored",
            "txmsgs",
            "txbytes",
            "rxmsgs",
            "rxbytes",
            "msgs",
            "rx_ver_drops",
            "msgs_inflight",
            "next_ack_seq",
            "next_err_seq",
            "acked_msgid",
        ] {
            fields[unset] = serde_json::json!(0);
        }
        serde_json::from_value(fields).expect("a partition's statistics")
    }

    #[test]
    fn lag_counts_from_the_stored_offset_then_the_committed_one_then_the_low_watermark() {
        assert_eq!(partition_lag(&partition("active", [40, 30, 0, 100])), Some(60));
        assert_eq!(partition_lag(&partition("active", [-1, 30, 0, 100])), Some(70));
        assert_eq!(partition_lag(&partition("active", [-1, -1, 20, 100])), Some(80));
        assert_eq!(partition_lag(&partition("active", [-1, -1, -1, 0])), Some(0));
        assert_eq!(
            partition_lag(&partition("none", [40, 30, 0, 100])),
            None,
            "not assigned here"
        );
        assert_eq!(
            partition_lag(&partition("active", [40, 30, 0, -1])),
            None,
            "watermark unknown"
        );
    }
}
