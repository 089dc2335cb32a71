//! The benchmarks' line charts over time, drawn by plotters as PNG. Text is rendered by plotters' pure-Rust
//! font support (`ab_glyph`) from a TrueType font on the machine (Debian's `fonts-dejavu-core`, which
//! `scripts/lib.sh` installs), not by its default `ttf` feature, which builds against the system's
//! fontconfig and FreeType development libraries (docs/decisions.md, "Benchmark charts are PNG").

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

/// Where a TrueType font is looked for, in order, after `BENCH_CHART_FONT`.
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// The family the charts' text is drawn in, once a font is registered under it.
const FAMILY: &str = "sans-serif";

/// One line: its name, its colour and its points (seconds, value).
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// Lines that share a vertical scale from 0, and what that scale counts.
pub struct Scale<'a> {
    pub unit: &'a str,
    pub series: Vec<Series<'a>>,
}

impl Scale<'_> {
    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.series.iter().flat_map(|line| line.points.iter())
    }

    /// The top of the scale: a little above its highest point.
    fn top(&self) -> f64 {
        self.points().map(|(_, y)| *y).fold(0.0_f64, f64::max).max(1.0) * 1.05
    }
}

/// Blue and red, the two lines of each chart.
pub const BLUE: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
pub const RED: RGBColor = RGBColor(0xc0, 0x39, 0x2b);

const WIDTH: u32 = 960;
const HEIGHT: u32 = 360;

/// Draws lines over time into `path` (a PNG of 960 by 360 pixels): those of `left` on the left axis, those of
/// `right`, if any, on a scale of their own on the right axis, so that a latency in milliseconds can be read
/// beside a rate in thousands.
pub fn write_lines(path: &Path, title: &str, left: &Scale, right: Option<&Scale>) -> Result<(), String> {
    register_font()?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, title, left, right).map_err(|error| format!("drawing {}: {error}", path.display()))?;
    root.present()
        .map_err(|error| format!("writing {}: {error}", path.display()))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    left: &Scale,
    right: Option<&Scale>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let last_second = left
        .points()
        .chain(right.into_iter().flat_map(Scale::points))
        .map(|(x, _)| *x)
        .fold(1.0_f64, f64::max);
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 17))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .right_y_label_area_size(if right.is_some() { 64 } else { 0 })
        .build_cartesian_2d(0.0..last_second, 0.0..left.top())?
        .set_secondary_coord(0.0..last_second, 0.0..right.unwrap_or(left).top());
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(left.unit)
        .x_label_formatter(&|second| format!("{second:.0}"))
        .y_label_formatter(&|value| format!("{value:.0}"))
        .label_style((FAMILY, 13))
        .light_line_style(WHITE)
        .draw()?;
    let drawn = |line: &Series| LineSeries::new(line.points.iter().copied(), line.colour.stroke_width(2));
    let legend =
        |colour: RGBColor| move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2));
    for line in &left.series {
        chart
            .draw_series(drawn(line))?
            .label(line.name)
            .legend(legend(line.colour));
    }
    if let Some(right) = right {
        chart
            .configure_secondary_axes()
            .y_desc(right.unit)
            .y_label_formatter(&|value| format!("{value:.0}"))
            .label_style((FAMILY, 13))
            .draw()?;
        for line in &right.series {
            chart
                .draw_secondary_series(drawn(line))?
                .label(format!("{} (right)", line.name))
                .legend(legend(line.colour));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Registers the first font found for the charts' text, once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let candidates: Vec<PathBuf> = std::env::var_os("BENCH_CHART_FONT")
                .map(PathBuf::from)
                .into_iter()
                .chain(FONTS.iter().map(PathBuf::from))
                .collect();
            let (path, bytes) = candidates
                .iter()
                .find_map(|path| Some((path, std::fs::read(path).ok()?)))
                .ok_or_else(|| {
                    format!("no TrueType font for the charts' text: set BENCH_CHART_FONT or install fonts-dejavu-core (looked for {candidates:?})")
                })?;
            // plotters keeps a registered font for the rest of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a font plotters can read", path.display()))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_a_png_of_its_size_with_the_lines_of_both_scales_drawn() {
        let directory = std::env::temp_dir().join(format!("chart-test-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("a directory");
        let path = directory.join("lines.png");
        let rising = Series {
            name: "rising",
            colour: BLUE,
            points: (0..60)
                .map(|second| (f64::from(second), f64::from(second) * 10.0))
                .collect(),
        };
        let flat = Series {
            name: "flat",
            colour: RED,
            points: (0..60).map(|second| (f64::from(second), 200.0)).collect(),
        };
        let left = Scale {
            unit: "receipts/s",
            series: vec![rising],
        };
        let right = Scale {
            unit: "ms",
            series: vec![flat],
        };
        write_lines(&path, "Two lines", &left, Some(&right)).expect("the chart drawn");

        let png = std::fs::read(&path).expect("the PNG");
        std::fs::remove_dir_all(&directory).expect("clean up");
        let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .expect("a PNG that decodes")
            .to_rgb8();
        assert_eq!(
            image.dimensions(),
            (WIDTH, HEIGHT),
            "the image's width and height"
        );
        let has = |colour: RGBColor| {
            image
                .pixels()
                .any(|pixel| pixel.0 == [colour.0, colour.1, colour.2])
        };
        assert!(
            has(BLUE) && has(RED),
            "the lines of both scales are drawn in their colours"
        );
    }
}
