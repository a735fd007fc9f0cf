//! Charts drawn on the server as SVG: no chart script, readable without JavaScript, coloured by
//! the stylesheet (so light and dark follow the reader's setting). Each has a text alternative.

use maud::{Markup, html};
use vigil_crds::finding::SeverityLabel;

use crate::backend::DayCounts;

/// Severity labels from the bottom of a stacked bar to the top.
const STACK: [SeverityLabel; 4] = [
    SeverityLabel::Low,
    SeverityLabel::Medium,
    SeverityLabel::High,
    SeverityLabel::Critical,
];

/// The CSS class of a severity.
pub fn severity_class(label: SeverityLabel) -> &'static str {
    match label {
        SeverityLabel::Low => "sev-low",
        SeverityLabel::Medium => "sev-medium",
        SeverityLabel::High => "sev-high",
        SeverityLabel::Critical => "sev-critical",
    }
}

/// Findings per day, stacked by severity.
pub fn by_day(days: &[DayCounts]) -> Markup {
    let width = 720.0_f64;
    let height = 220.0_f64;
    let (left, bottom, top) = (40.0, 30.0, 10.0);
    let plot_h = height - bottom - top;
    let max = days
        .iter()
        .map(|d| d.severities.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = days.len().max(1) as f64;
    let slot = (width - left) / n;
    let bar = (slot * 0.7).max(1.0);
    let total: u64 = days.iter().map(|d| d.severities.total()).sum();
    let alt = format!(
        "Findings last seen per day over {} days, {} in all, stacked by severity; the busiest day had {}",
        days.len(),
        total,
        max
    );
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(alt) {
            title { (alt) }
            line.axis x1=(left) y1=(height - bottom) x2=(width) y2=(height - bottom) {}
            text.tick x=(left - 6.0) y=(top + 4.0) text-anchor="end" { (max) }
            text.tick x=(left - 6.0) y=(height - bottom) text-anchor="end" { "0" }
            @for (i, d) in days.iter().enumerate() {
                @let x = left + i as f64 * slot + (slot - bar) / 2.0;
                g {
                    title { (d.day) ": " (d.severities.total()) " findings" }
                    @for (class, y, h) in stack(d, height - bottom, plot_h, max) {
                        rect class=(class) x=(fmt(x)) y=(fmt(y)) width=(fmt(bar)) height=(fmt(h)) {}
                    }
                }
                @if days.len() <= 16 || i % 2 == 0 {
                    text.tick x=(fmt(x + bar / 2.0)) y=(height - bottom + 16.0) text-anchor="middle" {
                        (d.day.get(5..).unwrap_or(&d.day))
                    }
                }
            }
        }
    }
}

/// Horizontal bars: label and count, most first.
pub fn bars(caption: &str, rows: &[(String, u64)], href: impl Fn(&str) -> String) -> Markup {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let row_h = 26.0;
    let width = 720.0;
    let label_w = 330.0;
    let height = row_h * rows.len().max(1) as f64;
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(caption) {
            title { (caption) }
            @if rows.is_empty() {
                text.tick x="0" y="18" { "none" }
            }
            @for (i, (name, n)) in rows.iter().enumerate() {
                @let y = i as f64 * row_h;
                @let w = (width - label_w - 60.0) * *n as f64 / max as f64;
                a href=(href(name)) {
                    text.label x="0" y=(fmt(y + 17.0)) { (shorten(name, 44)) }
                    rect.bar x=(label_w) y=(fmt(y + 5.0)) width=(fmt(w.max(1.0))) height="16" {}
                    text.tick x=(fmt(label_w + w + 6.0)) y=(fmt(y + 17.0)) { (n) }
                }
            }
        }
    }
}

/// The segments of one day's bar, bottom up: class, top y and height.
fn stack(d: &DayCounts, base: f64, plot_h: f64, max: u64) -> Vec<(&'static str, f64, f64)> {
    let mut y = base;
    let mut out = Vec::new();
    for label in STACK {
        let v = d.severities.get(label);
        if v > 0 {
            let h = plot_h * v as f64 / max as f64;
            y -= h;
            out.push((severity_class(label), y, h));
        }
    }
    out
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}
