//! The report's chart, drawn to `target/bench/`.

use system_tests::bench;
use system_tests::chart::{self, Bar, BarRow, BLUE, GREY};

use super::{ms, Row};

/// Draws the p95 of each case at the largest dataset against the naive aggregate, on a logarithmic scale;
/// returns, for the report, a line if it could not be drawn.
pub fn draw(rows: &[Row]) -> String {
    let largest = rows.last().map(|row| row.dataset.clone()).unwrap_or_default();
    let bars: Vec<BarRow> = rows
        .iter()
        .filter(|row| row.dataset == largest)
        .map(|row| {
            let (endpoint, who) = row.endpoint.split_once(" (").unwrap_or((&row.endpoint, ""));
            let bar = |value: std::time::Duration, colour| Bar {
                value: value.as_secs_f64() * 1000.0,
                text: ms(value),
                colour,
            };
            BarRow {
                label: format!("{endpoint} {}", row.period),
                note: who.trim_end_matches(')').to_owned(),
                bars: std::iter::once(bar(row.p95, BLUE))
                    .chain(row.naive.map(|naive| bar(naive, GREY)))
                    .collect(),
            }
        })
        .collect();
    let title = format!("{largest}: p95 over HTTP against the naive aggregate");
    let legend = [("p95 over HTTP", BLUE), ("naive aggregate", GREY)];
    bench::write_chart("analytics.png", |path| {
        chart::write_log_bars(path, &title, "ms", &legend, &bars)
    })
}
