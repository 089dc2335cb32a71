//! The benchmark's two charts of the whole pipeline at 80%, drawn to `target/bench/`.

use system_tests::bench;
use system_tests::chart::{self, Scale, Series, BLUE, RED};
use system_tests::loadgen::Report;

use super::Sample;

/// Draws the throughput chart (receipts a second, and each second's p99 on a scale of its own) and the
/// queues chart (outbox backlog and consumer lag); returns, for the report, a line for each chart that could
/// not be drawn.
pub fn draw(pipeline: &Report, per_second_p99: &[f64], samples: &[Sample]) -> String {
    let throughput = Scale {
        unit: "receipts/s",
        series: vec![Series {
            name: "accepted/s",
            colour: BLUE,
            points: pipeline
                .seconds
                .iter()
                .enumerate()
                .map(|(s, second)| (s as f64, second.accepted as f64))
                .collect(),
        }],
    };
    let latency = Scale {
        unit: "ms",
        series: vec![Series {
            name: "p99 ms",
            colour: RED,
            points: per_second_p99
                .iter()
                .enumerate()
                .map(|(s, p99)| (s as f64, *p99))
                .collect(),
        }],
    };
    let queues = Scale {
        unit: "messages",
        series: vec![
            Series {
                name: "outbox backlog",
                colour: BLUE,
                points: samples.iter().map(|(s, backlog, _)| (*s, *backlog)).collect(),
            },
            Series {
                name: "consumer lag",
                colour: RED,
                points: samples.iter().map(|(s, _, lag)| (*s, *lag)).collect(),
            },
        ],
    };
    let charts = [
        (
            "pipeline-throughput.png",
            "The whole pipeline at 80%: receipts accepted per second, and each second's p99 latency",
            &throughput,
            Some(&latency),
        ),
        (
            "pipeline-queues.png",
            "The whole pipeline at 80%: outbox backlog and consumer lag",
            &queues,
            None,
        ),
    ];
    charts
        .into_iter()
        .map(|(file, title, left, right)| {
            bench::write_chart(file, |path| chart::write_lines(path, title, left, right))
        })
        .collect()
}
