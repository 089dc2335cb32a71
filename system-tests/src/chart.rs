//! The benchmarks' charts, drawn by plotters as PNG: lines over time, and bars on a logarithmic scale. Text
//! is rendered by plotters' pure-Rust font support (`ab_glyph`) from a TrueType font on the machine (Debian's
//! `fonts-dejavu-core`, which `scripts/lib.sh` installs), not by its default `ttf` feature, which builds
//! against the system's fontconfig and FreeType development libraries (docs/decisions.md, "Benchmark charts
//! are PNG").

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
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

/// Blue and red, the two lines of each line chart; blue and grey, the bars of a bar chart.
pub const BLUE: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
pub const RED: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
pub const GREY: RGBColor = RGBColor(0xaa, 0xaa, 0xaa);
/// The colour of secondary text.
const DARK_GREY: RGBColor = RGBColor(0x66, 0x66, 0x66);

const WIDTH: u32 = 960;
const HEIGHT: u32 = 360;

/// Draws lines over time into `path` (a PNG of 960 by 360 pixels): those of `left` on the left axis, those of
/// `right`, if any, on a scale of their own on the right axis, so that a latency in milliseconds can be read
/// beside a rate in thousands.
pub fn write_lines(path: &Path, title: &str, left: &Scale, right: Option<&Scale>) -> Result<(), String> {
    write_png(path, (WIDTH, HEIGHT), |root| draw(root, title, left, right))
}

/// Draws with `draw` on a white image of `size` and writes it to `path` as PNG.
fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend, Shift>,
    )
        -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>,
) -> Result<(), String> {
    register_font()?;
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)
        .and_then(|()| draw(&root))
        .map_err(|error| format!("drawing {}: {error}", path.display()))?;
    root.present()
        .map_err(|error| format!("writing {}: {error}", path.display()))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    left: &Scale,
    right: Option<&Scale>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let last_second = left
        .points()
        .chain(right.into_iter().flat_map(Scale::points))
        .map(|(x, _)| *x)
        .fold(1.0_f64, f64::max);
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

/// One bar: its value, the text written after it, and its colour.
pub struct Bar {
    pub value: f64,
    pub text: String,
    pub colour: RGBColor,
}

/// One row of a bar chart: what it measures, in two lines of text on the left, and its bars, one under the
/// other.
pub struct BarRow {
    pub label: String,
    pub note: String,
    pub bars: Vec<Bar>,
}

/// The height of one bar, and the gap between two rows, in pixels.
const BAR_HEIGHT: u32 = 14;
const ROW_GAP: u32 = 10;
/// The width of the rows' labels on the left, in pixels.
const LABEL_WIDTH: u32 = 330;

/// Draws rows of horizontal bars on a logarithmic scale of `unit` into `path`, a PNG 960 pixels wide and as
/// tall as its rows need, so that values a thousand times apart can be read on one chart; `legend` names
/// the bars' colours.
pub fn write_log_bars(
    path: &Path,
    title: &str,
    unit: &str,
    legend: &[(&str, RGBColor)],
    rows: &[BarRow],
) -> Result<(), String> {
    let bars_per_row = rows.iter().map(|row| row.bars.len()).max().unwrap_or(1).max(1) as u32;
    let height = 90 + rows.len() as u32 * (bars_per_row * BAR_HEIGHT + ROW_GAP);
    write_png(path, (WIDTH, height), |root| {
        draw_bars(root, title, unit, legend, rows)
    })
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    unit: &str,
    legend: &[(&str, RGBColor)],
    rows: &[BarRow],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let values = || rows.iter().flat_map(|row| row.bars.iter().map(|bar| bar.value));
    // Whole powers of ten around every value, so that the shortest bar is still seen and the longest has room
    // after it for its text.
    let low = 10_f64.powf(values().fold(f64::MAX, f64::min).max(1e-3).log10().ceil() - 1.0);
    let high = 10_f64.powf((values().fold(0.0, f64::max).max(low) * 4.0).log10().ceil());
    let (_, bars_area) = root.split_horizontally(LABEL_WIDTH);
    let mut chart = ChartBuilder::on(&bars_area)
        .caption(title, (FAMILY, 17))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(36)
        .build_cartesian_2d((low..high).log_scale(), 0.0..rows.len() as f64)?;
    chart
        .configure_mesh()
        .x_desc(format!("{unit}, logarithmic scale"))
        .x_label_formatter(&|value| format!("{value}"))
        .disable_y_mesh()
        .disable_y_axis()
        .label_style((FAMILY, 13))
        .draw()?;
    let text = |colour: &'static RGBColor| TextStyle::from((FAMILY, 13).into_font()).color(colour);
    // Row `index` lies between `rows - index` and the next whole number below it on the vertical scale.
    let top = |index: usize| chart.backend_coord(&(low, (rows.len() - index) as f64)).1;
    let (x0, _) = chart.backend_coord(&(low, 0.0));
    for (index, row) in rows.iter().enumerate() {
        let y = top(index) + ROW_GAP as i32 / 2;
        root.draw(&Text::new(row.label.as_str(), (10, y), text(&BLACK)))?;
        root.draw(&Text::new(row.note.as_str(), (10, y + 14), text(&DARK_GREY)))?;
        for (position, bar) in row.bars.iter().enumerate() {
            let bar_top = y + (position as u32 * BAR_HEIGHT) as i32;
            let (x1, _) = chart.backend_coord(&(bar.value.max(low), 0.0));
            root.draw(&Rectangle::new(
                [(x0, bar_top), (x1.max(x0 + 1), bar_top + BAR_HEIGHT as i32 - 1)],
                bar.colour.filled(),
            ))?;
            root.draw(&Text::new(bar.text.as_str(), (x1 + 4, bar_top), text(&BLACK)))?;
        }
    }
    for (position, (name, colour)) in legend.iter().enumerate() {
        let x = 10 + position as i32 * 160;
        let y = root.dim_in_pixel().1 as i32 - 24;
        root.draw(&Rectangle::new([(x, y), (x + 24, y + 12)], colour.filled()))?;
        root.draw(&Text::new(*name, (x + 30, y), text(&BLACK)))?;
    }
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
    use image::RgbImage;

    use super::*;

    /// Draws a chart into a file of its own and decodes it as PNG.
    fn drawn(name: &str, draw: impl FnOnce(&Path) -> Result<(), String>) -> RgbImage {
        let directory = std::env::temp_dir().join(format!("chart-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("a directory");
        let path = directory.join("chart.png");
        draw(&path).expect("the chart drawn");
        let png = std::fs::read(&path).expect("the PNG");
        std::fs::remove_dir_all(&directory).expect("clean up");
        image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .expect("a PNG that decodes")
            .to_rgb8()
    }

    /// The columns of the pixels drawn in `colour`.
    fn columns_in(image: &RgbImage, colour: RGBColor) -> Vec<u32> {
        image
            .enumerate_pixels()
            .filter(|(_, _, pixel)| pixel.0 == [colour.0, colour.1, colour.2])
            .map(|(x, _, _)| x)
            .collect()
    }

    #[test]
    fn a_chart_is_a_png_of_its_size_with_the_lines_of_both_scales_drawn() {
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
        let image = drawn("lines", |path| {
            write_lines(path, "Two lines", &left, Some(&right))
        });

        assert_eq!(
            image.dimensions(),
            (WIDTH, HEIGHT),
            "the image's width and height"
        );
        assert!(
            !columns_in(&image, BLUE).is_empty() && !columns_in(&image, RED).is_empty(),
            "the lines of both scales are drawn in their colours"
        );
    }

    #[test]
    fn bars_on_a_logarithmic_scale_are_as_long_as_their_values_make_them() {
        let bar = |value: f64, colour| Bar {
            value,
            text: format!("{value} ms"),
            colour,
        };
        let rows = [
            BarRow {
                label: "fast".into(),
                note: "and slow beside it".into(),
                bars: vec![bar(10.0, BLUE), bar(10_000.0, GREY)],
            },
            BarRow {
                label: "faster".into(),
                note: "alone".into(),
                bars: vec![bar(1.0, BLUE)],
            },
        ];
        let legend = [("p95", BLUE), ("naive", GREY)];
        let image = drawn("bars", |path| write_log_bars(path, "Bars", "ms", &legend, &rows));

        assert_eq!(
            image.dimensions(),
            (WIDTH, 90 + 2 * (2 * BAR_HEIGHT + ROW_GAP)),
            "960 wide, as tall as two rows of two bars need"
        );
        let end = |colour| columns_in(&image, colour).into_iter().max().expect("a bar drawn");
        let start = |colour| {
            columns_in(&image, colour)
                .into_iter()
                .filter(|x| *x > LABEL_WIDTH)
                .min()
        };
        let (blue_start, grey_start) = (start(BLUE).expect("a blue bar"), start(GREY).expect("a grey bar"));
        assert_eq!(blue_start, grey_start, "every bar starts at the scale's start");
        let decade = |value: f64| value.log10();
        let ratio = f64::from(end(GREY) - grey_start) / f64::from(end(BLUE) - blue_start);
        let expected = (decade(10_000.0) - decade(0.1)) / (decade(10.0) - decade(0.1));
        assert!(
            (ratio - expected).abs() < 0.1,
            "the 10 s bar is {ratio:.2} times as long as the 10 ms one; on a scale from 0.1 ms it is {expected}"
        );
        let shortest = columns_in(&image, BLUE)
            .into_iter()
            .filter(|x| *x > LABEL_WIDTH)
            .count();
        assert!(shortest > 0, "the 1 ms bar is drawn too");
    }
}
