//! The report's chart, as SVG.

use std::fmt::Write as _;
use std::time::Duration;

use super::{ms, Row};

/// A bar chart of the p95 of each case at the largest dataset, against the naive aggregate, on a log scale.
pub fn chart(rows: &[Row]) -> String {
    let largest = rows.last().map(|row| row.dataset.clone()).unwrap_or_default();
    let rows: Vec<&Row> = rows.iter().filter(|row| row.dataset == largest).collect();
    let (width, bar_height, gap, left) = (900.0, 14.0, 10.0, 330.0);
    let height = 60.0 + rows.len() as f64 * (2.0 * bar_height + gap);
    let scale = |value: Duration| {
        let ms = (value.as_secs_f64() * 1000.0).max(0.1);
        (ms.log10() + 1.0) / 6.0 * (width - left - 80.0)
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">{largest}: p95 over HTTP (blue) against the naive aggregate (grey), log scale</text>\n"
    );
    for (index, row) in rows.iter().enumerate() {
        let y = 40.0 + index as f64 * (2.0 * bar_height + gap);
        let label = format!(
            "{} {}",
            row.endpoint.split(" (").next().unwrap_or_default(),
            row.period
        );
        let who = row
            .endpoint
            .split(" (")
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches(')');
        let _ = write!(
            svg,
            "<text x=\"10\" y=\"{:.0}\">{label}</text><text x=\"10\" y=\"{:.0}\" fill=\"#666\">{who}</text>\n\
             <rect x=\"{left}\" y=\"{y:.0}\" width=\"{:.1}\" height=\"{bar_height}\" fill=\"#2f6fb0\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\">{}</text>\n",
            y + 11.0,
            y + 24.0,
            scale(row.p95),
            left + scale(row.p95) + 4.0,
            y + 11.0,
            ms(row.p95)
        );
        if let Some(naive) = row.naive {
            let _ = writeln!(
                svg,
                "<rect x=\"{left}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{bar_height}\" fill=\"#aaa\"/>\
                 <text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
                y + bar_height,
                scale(naive),
                left + scale(naive) + 4.0,
                y + bar_height + 11.0,
                ms(naive)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
