//! Vital-sign trend charts as text-free SVG: the line, the points out of
//! the normal range and the normal band. The axis labels are typeset by
//! typst next to the image, so the SVG needs no font and the labels use
//! the document's.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{Vital, VitalKind};

/// The SVG's user space; typst stretches it to the chart's box, whose
/// aspect ratio is about this one.
const W: f64 = 600.0;
const H: f64 = 200.0;
/// At most this many points get a dot each (beyond, the line says it).
const DOTS: usize = 60;

/// One chart, as the template reads it.
#[derive(Debug, Serialize)]
pub(crate) struct Chart {
    /// `Heart rate`.
    pub title: String,
    /// The unit for people (`/min`, `°C`).
    pub unit: String,
    /// The virtual file holding the SVG.
    pub file: String,
    /// The value at the top of the plot area.
    pub y_max: String,
    /// The value at its bottom.
    pub y_min: String,
    /// The first date (left edge).
    pub x_first: String,
    /// The last date (right edge).
    pub x_last: String,
    /// `12 measurements · last 72 · normal 60–100`.
    pub summary: String,
    /// The SVG itself (not serialized: the template reads it via `file`).
    #[serde(skip)]
    pub svg: String,
}

/// One chart per vital kind and unit with at least two measurements, in
/// [`VitalKind::ALL`] order.
pub(crate) fn charts(vitals: &[Vital]) -> Vec<Chart> {
    let mut out = Vec::new();
    for kind in VitalKind::ALL {
        // Units in order of first appearance: a kind measured in two units
        // gets two charts rather than one mixing scales.
        let mut units: Vec<&str> = Vec::new();
        for v in vitals.iter().filter(|v| v.kind == kind) {
            if !units.contains(&v.measure.unit.as_str()) {
                units.push(&v.measure.unit);
            }
        }
        for unit in units {
            let points: Vec<&Vital> = vitals.iter().filter(|v| v.kind == kind && v.measure.unit == unit).collect();
            if points.len() >= 2 {
                let file = format!("/chart-{}.svg", out.len());
                out.push(chart(kind, unit, &points, file));
            }
        }
    }
    out
}

fn chart(kind: VitalKind, unit: &str, points: &[&Vital], file: String) -> Chart {
    let values: Vec<f64> = points.iter().map(|v| v.measure.value).collect();
    // Dates place the points in time; when a date does not parse (or all
    // are one day) the points are spaced evenly instead.
    let days: Option<Vec<i64>> = points.iter().map(|v| days_of(&v.date)).collect();
    let xs: Vec<f64> = match days {
        Some(d) if d.first() != d.last() => d.iter().map(|&x| x as f64).collect(),
        _ => (0..points.len()).map(|i| i as f64).collect(),
    };
    let normal = kind.normal_range(unit);

    let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some((a, b)) = normal {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    let pad = if hi > lo { (hi - lo) * 0.08 } else { lo.abs().max(1.0) * 0.05 };
    // Round the bounds outwards to the range's precision so the axis
    // labels are short and still exactly where the plot's edges are.
    let decimals = (1 - (hi - lo + 2.0 * pad).log10().floor() as i32).clamp(0, 4);
    let scale = 10f64.powi(decimals);
    let (lo, hi) = (((lo - pad) * scale).floor() / scale, ((hi + pad) * scale).ceil() / scale);
    let label = |v: f64| format!("{v:.prec$}", prec = decimals as usize);
    let (x0, x1) = (xs[0], xs[xs.len() - 1]);
    let sx = |x: f64| if x1 > x0 { (x - x0) / (x1 - x0) * W } else { W / 2.0 };
    let sy = |y: f64| H - (y - lo) / (hi - lo) * H;

    let mut svg = String::with_capacity(64 + points.len() * 16);
    // Writing to a String cannot fail.
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" preserveAspectRatio="none">"##
    );
    let _ = write!(
        svg,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff" stroke="#b0b0b0" stroke-width="1"/>"##
    );
    if let Some((a, b)) = normal {
        let _ =
            write!(svg, r##"<rect x="0" y="{:.1}" width="{W}" height="{:.1}" fill="#e3f1e4"/>"##, sy(b), sy(a) - sy(b));
    }
    for q in [0.25, 0.5, 0.75] {
        let _ = write!(
            svg,
            r##"<line x1="0" x2="{W}" y1="{y:.1}" y2="{y:.1}" stroke="#dddddd" stroke-width="1"/>"##,
            y = H * q
        );
    }
    svg.push_str(r##"<polyline fill="none" stroke="#1f4e79" stroke-width="2.5" stroke-linejoin="round" points=""##);
    for (x, y) in xs.iter().zip(&values) {
        let _ = write!(svg, "{:.1},{:.1} ", sx(*x), sy(*y));
    }
    svg.push_str(r#""/>"#);
    for (x, y) in xs.iter().zip(&values) {
        let out_of_range = normal.is_some_and(|(a, b)| *y < a || *y > b);
        if out_of_range || points.len() <= DOTS {
            let fill = if out_of_range { "#b00020" } else { "#1f4e79" };
            let _ = write!(svg, r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{fill}"/>"##, sx(*x), sy(*y));
        }
    }
    svg.push_str("</svg>");

    let unit_label = super::unit_label(unit);
    let last = values[values.len() - 1];
    let mut summary = format!("{} measurements · last {} {unit_label}", points.len(), super::num(last));
    if let Some((a, b)) = normal {
        let _ = write!(summary, " · normal {}–{}", super::num(a), super::num(b));
    }
    Chart {
        title: kind.label().to_string(),
        unit: unit_label,
        file,
        y_max: label(hi),
        y_min: label(lo),
        x_first: points[0].date.clone(),
        x_last: points[points.len() - 1].date.clone(),
        summary,
        svg,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (Howard Hinnant's
/// `days_from_civil`).
fn days_of(date: &str) -> Option<i64> {
    let mut parts = date.get(..10)?.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{date_of_ms, Measure};

    #[test]
    fn days_match_the_model_dates() {
        for ms in [0, 951_782_400_000, 1_796_428_799_999] {
            assert_eq!(days_of(&date_of_ms(ms)), Some((ms / 86_400_000) as i64));
        }
        assert_eq!(days_of("2026-13-01"), None);
        assert_eq!(days_of("soon"), None);
    }

    fn vital(kind: VitalKind, value: f64, unit: &str, date: &str) -> Vital {
        Vital {
            kind,
            measure: Measure { value, unit: unit.into() },
            date: date.into(),
            record_id: "0x01".into(),
            version: 1,
        }
    }

    #[test]
    fn one_chart_per_kind_and_unit_with_two_points() {
        let vitals = [
            vital(VitalKind::HeartRate, 70.0, "/min", "2026-01-01"),
            vital(VitalKind::HeartRate, 120.0, "/min", "2026-01-03"),
            vital(VitalKind::Weight, 70.0, "kg", "2026-01-01"),
            vital(VitalKind::Temperature, 37.0, "Cel", "2026-01-01"),
            vital(VitalKind::Temperature, 99.0, "[degF]", "2026-01-02"),
        ];
        let charts = charts(&vitals);
        assert_eq!(charts.len(), 1, "a single point, or one per unit, makes no trend");
        let c = &charts[0];
        assert_eq!(
            (c.title.as_str(), c.x_first.as_str(), c.x_last.as_str()),
            ("Heart rate", "2026-01-01", "2026-01-03")
        );
        assert!(c.svg.contains("<polyline"));
        // 60–120 padded by 8% each way, rounded outwards to whole beats.
        assert_eq!((c.y_min.as_str(), c.y_max.as_str()), ("55", "125"));
        // 120/min is above the normal range: a red dot.
        assert!(c.svg.contains("#b00020"));
        assert!(!c.svg.contains("<text"), "the SVG carries no text");
    }
}
