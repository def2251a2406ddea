//! The provider summary report as a signed PDF: the same typesetting,
//! fonts, QR code and PAdES signature as the full export, a one- or
//! two-page layout (`summary.typ`) fed only with display strings.

use serde::Serialize;

use super::chart::{self, Chart};
use super::{num, unit_label, Error};
use crate::model::{instant_of_ms, Issuer, Measure, Vital, VitalKind};
use crate::sign::ExportKey;
use crate::summary::{Direction, Summary};

const TEMPLATE: &str = include_str!("summary.typ");

#[derive(Debug, Serialize)]
struct IndicatorView {
    name: String,
    unit: String,
    latest: String,
    latest_out: bool,
    change: String,
    range: String,
    direction: &'static str,
    out_of_range: String,
    normal: String,
}

#[derive(Debug, Serialize)]
struct EncounterView {
    date: String,
    title: String,
    author: String,
    lines: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
struct View {
    title: String,
    id: String,
    generated: String,
    tenant: String,
    verify_url: String,
    patient: String,
    principal: String,
    window: String,
    requester: String,
    role: String,
    withheld: Vec<String>,
    allergies: Vec<(String, String)>,
    alerts: Vec<String>,
    problems: Vec<(String, String, String, String)>,
    medications: Vec<(String, String, String)>,
    indicators: Vec<IndicatorView>,
    encounters: Vec<EncounterView>,
    charts: Vec<Chart>,
}

fn view(s: &Summary, issuer: &Issuer) -> View {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let indicators = s
        .indicators
        .iter()
        .map(|i| IndicatorView {
            name: i.name.clone(),
            unit: unit_label(&i.unit),
            latest: format!("{} ({})", num(i.latest.1), i.latest.0),
            latest_out: i.latest_out_of_range,
            change: if i.count > 1 {
                format!("{}{}", if i.change > 0.0 { "+" } else { "" }, num(i.change))
            } else {
                "—".into()
            },
            range: format!("{}–{}", num(i.min), num(i.max)),
            direction: match i.direction {
                Direction::Rising => "rising",
                Direction::Falling => "falling",
                Direction::Stable => "stable",
                Direction::Single => "one value",
            },
            out_of_range: format!("{} of {}", i.out_of_range, i.count),
            normal: i.normal.map(|(lo, hi)| format!("{}–{}", num(lo), num(hi))).unwrap_or_else(|| "lab flag".into()),
        })
        .collect();
    // Charts for the vital signs measured at least twice, drawn like the
    // full export's.
    let vitals: Vec<Vital> = s
        .indicators
        .iter()
        .filter_map(|i| {
            let kind = VitalKind::ALL.into_iter().find(|k| i.loinc.as_deref() == Some(k.loinc()))?;
            Some(i.series.iter().map(move |(date, value)| Vital {
                kind,
                measure: Measure { value: *value, unit: i.unit.clone() },
                date: date.clone(),
                record_id: String::new(),
                version: 0,
            }))
        })
        .flatten()
        .collect();
    View {
        title: s.preset.title().into(),
        id: s.id.clone(),
        generated: instant_of_ms(s.generated_ms).replace('T', " ").chars().take(16).collect::<String>() + " UTC",
        tenant: issuer.tenant.clone(),
        verify_url: issuer.verify_url.clone(),
        patient: s.patient.name.clone().unwrap_or_else(|| "Name not shared with this requester".into()),
        principal: s.patient.principal.clone(),
        window: format!("{} to {}", s.from, s.to),
        requester: s.requester.principal.clone(),
        role: s.requester.role.clone(),
        withheld: s.withheld.clone(),
        allergies: s
            .allergies
            .iter()
            .map(|a| (a.substance.clone(), format!("{} ({})", a.reaction, a.severity)))
            .collect(),
        alerts: s.alerts.clone(),
        problems: s
            .problems
            .iter()
            .map(|p| {
                let noted = match (&p.first, &p.last) {
                    (Some(f), Some(l)) if f != l => format!("{f} – {l}"),
                    (Some(f), _) => f.clone(),
                    _ => "profile".into(),
                };
                (p.code.clone(), text(&p.description), noted, p.mentions.to_string())
            })
            .collect(),
        medications: s
            .medications
            .iter()
            .map(|m| {
                let regimen = [
                    m.dose.as_ref().map(|d| format!("{} {}", num(d.value), unit_label(&d.unit))),
                    m.route.clone(),
                    m.frequency.clone(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
                (m.name.clone(), regimen, m.start.clone().or_else(|| m.date.clone()).unwrap_or_else(|| "—".into()))
            })
            .collect(),
        indicators,
        encounters: s
            .encounters
            .iter()
            .map(|e| EncounterView {
                date: e.date.clone(),
                title: e.title.clone(),
                author: e.author.clone(),
                lines: e.highlights.iter().map(|f| (f.label.clone(), f.value.clone())).collect(),
            })
            .collect(),
        charts: chart::charts(&vitals),
    }
}

/// The summary as a signed PDF; its QR code and signature name the export
/// it was computed from (`summary.id`).
pub fn render_summary(summary: &Summary, issuer: &Issuer, key: &ExportKey) -> Result<Vec<u8>, Error> {
    let view = view(summary, issuer);
    let mut files = vec![
        ("/data.json".to_string(), serde_json::to_vec(&view).map_err(|e| Error::Data(e.to_string()))?),
        ("/qr.svg".to_string(), super::qr_svg(&issuer.verify_url)?.into_bytes()),
    ];
    files.extend(view.charts.iter().map(|c| (c.file.clone(), c.svg.clone().into_bytes())));
    let pdf = super::typeset_source(TEMPLATE, files, &summary.id, summary.generated_ms)?;
    super::sign_as(&summary.id, &issuer.tenant, summary.generated_ms, key, &pdf)
}
