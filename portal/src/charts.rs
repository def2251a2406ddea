//! Charts drawn on the server as SVG: no chart library in the browser, no
//! script. Presentation attributes only (`fill`, `stroke`), never a
//! `style` attribute, so the CSP forbids nothing here. Each chart carries
//! a `title` and an `aria-label` with its numbers for screen readers.

use std::fmt::Write as _;

/// Escapes text for SVG/XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The colours of series (contrast ≥ 3:1 against white, as WCAG asks of
/// graphics).
const COLOURS: [&str; 4] = ["#1d4ed8", "#b45309", "#047857", "#9d174d"];

/// A horizontal bar chart of `(label, value)`.
pub fn bars(title: &str, items: &[(String, u64)]) -> String {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let (row, label_w, bar_w) = (26u64, 180u64, 300u64);
    let height = row * items.len().max(1) as u64 + 10;
    let summary: Vec<String> = items.iter().map(|(l, v)| format!("{l}: {v}")).collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {height}" role="img" aria-label="{t}: {s}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        w = label_w + bar_w + 70,
        t = esc(title),
        s = esc(&summary.join(", ")),
    );
    if items.is_empty() {
        let _ = write!(svg, r##"<text x="4" y="20" fill="#374151" font-size="14">No data in this period</text>"##);
    }
    for (i, (label, value)) in items.iter().enumerate() {
        let y = i as u64 * row + 5;
        let w = (value * bar_w / max).max(if *value > 0 { 2 } else { 0 });
        let _ = write!(
            svg,
            r##"<text x="{lx}" y="{ty}" text-anchor="end" fill="#111827" font-size="13">{l}</text><rect x="{label_w}" y="{y}" width="{w}" height="18" fill="{c}"/><text x="{vx}" y="{ty}" fill="#111827" font-size="13">{value}</text>"##,
            lx = label_w - 6,
            ty = y + 14,
            l = esc(label),
            c = COLOURS[0],
            vx = label_w + w + 6,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A line chart: one line per series over the same days (x labels).
pub fn lines(title: &str, days: &[String], series: &[(String, Vec<u64>)]) -> String {
    let (w, h, left, bottom) = (640u64, 220u64, 44u64, 28u64);
    let max = series.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(0).max(1);
    let n = days.len().max(2) as u64;
    let x = |i: usize| left + (i as u64) * (w - left - 10) / (n - 1);
    let y = |v: u64| 10 + (h - bottom - 10) - v * (h - bottom - 10) / max;
    let summary: Vec<String> =
        series.iter().map(|(name, v)| format!("{name} total {}", v.iter().sum::<u64>())).collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}: {s}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title),
        s = esc(&summary.join(", ")),
    );
    // Axes, the top value, and the first and last day.
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="10" x2="{left}" y2="{b}" stroke="#6b7280"/><line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#6b7280"/><text x="{tx}" y="16" text-anchor="end" fill="#111827" font-size="12">{max}</text><text x="{tx}" y="{b}" text-anchor="end" fill="#111827" font-size="12">0</text>"##,
        b = h - bottom,
        r = w - 10,
        tx = left - 4,
    );
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let _ = write!(
            svg,
            r##"<text x="{left}" y="{ly}" fill="#111827" font-size="12">{f}</text><text x="{r}" y="{ly}" text-anchor="end" fill="#111827" font-size="12">{l}</text>"##,
            ly = h - 8,
            r = w - 10,
            f = esc(first),
            l = esc(last),
        );
    }
    for (k, (name, values)) in series.iter().enumerate() {
        let points: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{},{}", x(i), y(*v))).collect();
        let c = COLOURS[k % COLOURS.len()];
        let _ = write!(
            svg,
            r##"<polyline points="{p}" fill="none" stroke="{c}" stroke-width="2"/><rect x="{lx}" y="{ly}" width="10" height="10" fill="{c}"/><text x="{tx}" y="{ty}" fill="#111827" font-size="12">{n}</text>"##,
            p = points.join(" "),
            lx = left + 10 + k as u64 * 150,
            ly = 2,
            tx = left + 24 + k as u64 * 150,
            ty = 11,
            n = esc(name),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_carry_their_numbers_for_screen_readers() {
        let svg = bars("Reads <by> type", &[("lab-results".into(), 3), ("<script>".into(), 0)]);
        assert!(svg.contains("Reads &lt;by&gt; type: lab-results: 3, &lt;script&gt;: 0"), "{svg}");
        assert!(!svg.contains("<script>"));
        assert!(!svg.contains("style="));
        let svg = lines("Per day", &["2026-12-01".into(), "2026-12-02".into()], &[("reads".into(), vec![1, 4])]);
        assert!(svg.contains("reads total 5"), "{svg}");
        assert!(svg.contains("<polyline"));
    }
}
