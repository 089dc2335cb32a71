//! Line charts over time, as SVG (they render on GitHub and in any browser, and need no font libraries).

use std::fmt::Write as _;

/// One line: its name, its colour and its points (seconds, value).
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A chart of the series over time on one linear scale from 0.
pub fn lines(title: &str, unit: &str, series: &[Series]) -> String {
    let (width, height, left, top, bottom) = (900.0, 320.0, 70.0, 40.0, 40.0);
    let plot_width = width - left - 20.0;
    let plot_height = height - top - bottom;
    let points = || series.iter().flat_map(|line| line.points.iter());
    let last_second = points().map(|(x, _)| *x).fold(1.0_f64, f64::max);
    let highest = nice_ceiling(points().map(|(_, y)| *y).fold(0.0_f64, f64::max));
    let x = |second: f64| left + second / last_second * plot_width;
    let y = |value: f64| top + plot_height - value / highest * plot_height;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">{title}</text>\n"
    );
    for step in 0..=4 {
        let value = highest * f64::from(step) / 4.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{label_x}\" y=\"{label_y:.1}\" text-anchor=\"end\">{value:.0} {unit}</text>",
            right = left + plot_width,
            at = y(value),
            label_x = left - 6.0,
            label_y = y(value) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{}\">0 s</text><text x=\"{}\" y=\"{0}\" text-anchor=\"end\">{last_second:.0} s</text>",
        height - 15.0,
        left + plot_width
    );
    for (index, line) in series.iter().enumerate() {
        let path: Vec<String> = line
            .points
            .iter()
            .map(|(second, value)| format!("{:.1},{:.1}", x(*second), y(*value)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{0}\">{}</text>",
            line.colour,
            path.join(" "),
            left + 10.0 + index as f64 * 220.0,
            top - 6.0,
            line.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let power = 10_f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|ceiling| *ceiling >= value)
        .unwrap_or(10.0 * power)
}
