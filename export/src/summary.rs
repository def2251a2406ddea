//! Provider summary reports — referral, consultation, discharge — computed
//! from an export (so they hold exactly what its requester may read):
//! recent encounters, active problems, current medications and key
//! indicators with their trend over the chosen window. Every statistic is
//! deterministic: the latest value, its change from the first value in the
//! window, and flags against the normal range (vital signs) or the
//! laboratory's flag (results).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::*;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// For a colleague taking the patient over: problems, medications,
    /// allergies, the last encounters, the indicators.
    Referral,
    /// Before seeing the patient: a wider window of encounters.
    Consultation,
    /// At discharge: every encounter of the window.
    Discharge,
}

impl Preset {
    /// Its name in requests.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Referral => "referral",
            Preset::Consultation => "consultation",
            Preset::Discharge => "discharge",
        }
    }

    /// A title for people.
    pub fn title(self) -> &'static str {
        match self {
            Preset::Referral => "Referral summary",
            Preset::Consultation => "Consultation summary",
            Preset::Discharge => "Discharge summary",
        }
    }

    /// The window when none is asked for, in days.
    pub fn default_window_days(self) -> u32 {
        match self {
            Preset::Referral => 365,
            Preset::Consultation => 180,
            Preset::Discharge => 30,
        }
    }

    /// How many of the newest encounters it lists (`None`: all in the
    /// window).
    fn encounters(self) -> Option<usize> {
        match self {
            Preset::Referral => Some(5),
            Preset::Consultation => Some(10),
            Preset::Discharge => None,
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Preset> {
        match s {
            "referral" => Some(Preset::Referral),
            "consultation" => Some(Preset::Consultation),
            "discharge" => Some(Preset::Discharge),
            _ => None,
        }
    }
}

/// One encounter (a record) as the summary lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    /// Clinical date.
    pub date: String,
    /// The record's title.
    pub title: String,
    /// The record.
    pub record_id: String,
    /// Who wrote it.
    pub author: String,
    /// Its first lines (at most three), for the reader.
    pub highlights: Vec<Field>,
}

/// A problem, once per code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// ICD-10-CM.
    pub code: String,
    /// Its description as last written.
    pub description: Option<String>,
    /// First noted in the window (or on the profile: `None`).
    pub first: Option<String>,
    /// Last noted.
    pub last: Option<String>,
    /// How many times it was noted.
    pub mentions: usize,
}

/// Which way an indicator moved over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Up by more than 5 % of the first value.
    Rising,
    /// Down by more than 5 %.
    Falling,
    /// Within 5 %.
    Stable,
    /// One value only.
    Single,
}

/// A key indicator over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// Its name (`Systolic blood pressure`, `HbA1c`).
    pub name: String,
    /// LOINC code, when known.
    pub loinc: Option<String>,
    /// Its unit.
    pub unit: String,
    /// How many values in the window.
    pub count: usize,
    /// The first value and its date.
    pub first: (String, f64),
    /// The latest value and its date.
    pub latest: (String, f64),
    /// Latest minus first.
    pub change: f64,
    /// Lowest and highest.
    pub min: f64,
    /// Highest.
    pub max: f64,
    /// Mean, rounded to two decimals.
    pub mean: f64,
    /// The trend.
    pub direction: Direction,
    /// Values outside the normal range (vital signs) or flagged by the
    /// laboratory (results).
    pub out_of_range: usize,
    /// Whether the latest value is one of them.
    pub latest_out_of_range: bool,
    /// The normal range used, when one applies.
    pub normal: Option<(f64, f64)>,
    /// Every value in the window, oldest first (for a chart).
    pub series: Vec<(String, f64)>,
}

/// A summary report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Which.
    pub preset: Preset,
    /// Window start (inclusive).
    pub from: String,
    /// Window end (inclusive): the day it was made.
    pub to: String,
    /// The export it was computed from (its header: patient, requester,
    /// scope and withheld types, issuer).
    pub id: String,
    /// When it was made.
    pub generated_ms: u64,
    /// Who it is about.
    pub patient: Patient,
    /// Who asked.
    pub requester: Requester,
    /// The data types withheld from the requester.
    pub withheld: Vec<String>,
    /// Allergies, all of them (whatever the window).
    pub allergies: Vec<Allergy>,
    /// Medical alerts.
    pub alerts: Vec<String>,
    /// Problems noted in the window and on the profile, most mentioned
    /// first.
    pub problems: Vec<Problem>,
    /// Medications without an end date before the window's end, newest
    /// first, once per name.
    pub medications: Vec<Medication>,
    /// The newest encounters, newest first.
    pub encounters: Vec<Encounter>,
    /// Vital signs and numeric lab results over the window.
    pub indicators: Vec<Indicator>,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Dated values, each with whether it is out of range.
type Series = Vec<(String, f64, bool)>;

fn indicator(
    name: String,
    loinc: Option<String>,
    unit: String,
    values: &[(String, f64, bool)],
    normal: Option<(f64, f64)>,
) -> Option<Indicator> {
    let (first, latest) = (values.first()?, values.last()?);
    let n = values.len();
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v.1), hi.max(v.1)));
    let mean = values.iter().map(|v| v.1).sum::<f64>() / n as f64;
    let change = latest.1 - first.1;
    let direction = if n == 1 {
        Direction::Single
    } else if change.abs() <= 0.05 * first.1.abs() {
        Direction::Stable
    } else if change > 0.0 {
        Direction::Rising
    } else {
        Direction::Falling
    };
    Some(Indicator {
        name,
        loinc,
        unit,
        count: n,
        first: (first.0.clone(), first.1),
        latest: (latest.0.clone(), latest.1),
        change: round2(change),
        min,
        max,
        mean: round2(mean),
        direction,
        out_of_range: values.iter().filter(|v| v.2).count(),
        latest_out_of_range: latest.2,
        normal,
        series: values.iter().map(|v| (v.0.clone(), v.1)).collect(),
    })
}

/// The summary of `export` for `preset` over `from ..= to` (dates).
pub fn build(export: &Export, preset: Preset, from: &str, to: &str) -> Summary {
    let within = |d: &str| d >= from && d <= to;
    let mut records: Vec<&Record> = export.records.iter().filter(|r| within(&r.date)).collect();
    records.sort_by(|a, b| (&b.date, b.created_ms).cmp(&(&a.date, a.created_ms)));
    let take = preset.encounters().unwrap_or(usize::MAX);
    let encounters = records
        .iter()
        .take(take)
        .map(|r| Encounter {
            date: r.date.clone(),
            title: r.title.clone(),
            record_id: r.id.clone(),
            author: r.author.clone(),
            highlights: r.fields.iter().filter(|f| f.value != r.date).take(3).cloned().collect(),
        })
        .collect();

    let mut problems: BTreeMap<String, Problem> = BTreeMap::new();
    for c in export.conditions.iter().filter(|c| c.date.as_deref().is_none_or(within)) {
        let p = problems.entry(c.code.clone()).or_insert_with(|| Problem {
            code: c.code.clone(),
            description: None,
            first: None,
            last: None,
            mentions: 0,
        });
        p.mentions += 1;
        if c.description.is_some() {
            p.description = c.description.clone();
        }
        if let Some(d) = &c.date {
            if p.first.as_ref().is_none_or(|f| d < f) {
                p.first = Some(d.clone());
            }
            if p.last.as_ref().is_none_or(|l| d > l) {
                p.last = Some(d.clone());
            }
        }
    }
    let mut problems: Vec<Problem> = problems.into_values().collect();
    problems.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(a.code.cmp(&b.code)));

    let mut meds: Vec<&Medication> = export
        .medications
        .iter()
        .filter(|m| m.end.as_deref().is_none_or(|e| e >= to))
        .filter(|m| m.date.as_deref().is_none_or(within))
        .collect();
    meds.sort_by(|a, b| b.date.cmp(&a.date));
    let mut seen = std::collections::BTreeSet::new();
    let medications =
        meds.into_iter().filter(|m| seen.insert(m.name.to_lowercase())).cloned().collect::<Vec<Medication>>();

    let mut indicators = Vec::new();
    let mut vitals: BTreeMap<(VitalKind, String), Series> = BTreeMap::new();
    for v in export.vitals.iter().filter(|v| within(&v.date)) {
        let out =
            v.kind.normal_range(&v.measure.unit).is_some_and(|(lo, hi)| v.measure.value < lo || v.measure.value > hi);
        vitals.entry((v.kind, v.measure.unit.clone())).or_default().push((v.date.clone(), v.measure.value, out));
    }
    for ((kind, unit), mut values) in vitals {
        values.sort_by(|a, b| a.0.cmp(&b.0));
        let normal = kind.normal_range(&unit);
        indicators.extend(indicator(kind.label().into(), Some(kind.loinc().into()), unit, &values, normal));
    }
    let mut labs: BTreeMap<(String, String), (Option<String>, Series)> = BTreeMap::new();
    for l in export.labs.iter().filter(|l| within(&l.date)) {
        let Some(value) = l.value.as_f64() else { continue };
        let flagged = l.flag.as_deref().is_some_and(|f| f != "normal");
        let e = labs.entry((l.test.clone(), l.unit.clone().unwrap_or_default())).or_default();
        e.0 = e.0.take().or_else(|| l.loinc.clone());
        e.1.push((l.date.clone(), value, flagged));
    }
    for ((test, unit), (loinc, mut values)) in labs {
        values.sort_by(|a, b| a.0.cmp(&b.0));
        indicators.extend(indicator(test, loinc, unit, &values, None));
    }

    Summary {
        preset,
        from: from.into(),
        to: to.into(),
        id: export.id.clone(),
        generated_ms: export.generated_ms,
        patient: export.patient.clone(),
        requester: export.requester.clone(),
        withheld: export.scope.withheld.clone(),
        allergies: export.allergies.clone(),
        alerts: export.alerts.clone(),
        problems,
        medications,
        encounters,
        indicators,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::sample;

    #[test]
    fn presets_window_and_statistics_are_deterministic() {
        let e = sample(60);
        let s = build(&e, Preset::Referral, "2026-01-01", "2026-12-31");
        assert_eq!(s, build(&e, Preset::Referral, "2026-01-01", "2026-12-31"));
        assert_eq!(s.encounters.len(), 5, "a referral lists the five newest");
        assert!(s.encounters.windows(2).all(|w| w[0].date >= w[1].date));
        let d = build(&e, Preset::Discharge, "2026-01-01", "2026-12-31");
        assert_eq!(d.encounters.len(), 60);
        // E11.9 noted in every consultation (20), once per code.
        let dm = s.problems.iter().find(|p| p.code == "E11.9").expect("E11.9");
        assert_eq!(dm.mentions, 20);
        assert_eq!(s.problems[0].code, "E11.9", "most mentioned first");
        assert_eq!(s.medications.iter().filter(|m| m.name == "Metformin").count(), 1, "once per name");
        // Heart rate: 70 + (i % 7) * 3 for i ≡ 1 (mod 3), i < 60.
        let hr = s.indicators.iter().find(|i| i.name == "Heart rate").expect("heart rate");
        let values: Vec<f64> = (0..60u64).filter(|i| i % 3 == 1).map(|i| 70.0 + (i % 7) as f64 * 3.0).collect();
        assert_eq!(hr.count, values.len());
        assert_eq!(hr.first.1, values[0]);
        assert_eq!(hr.latest.1, *values.last().expect("last"));
        assert_eq!(hr.change, round2(values.last().expect("last") - values[0]));
        assert_eq!(hr.max, 88.0);
        assert_eq!(hr.out_of_range, 0, "60–100 /min");
        // Systolic 128 + 2·(i % 7): above 129 except when i % 7 == 0.
        let sys = s.indicators.iter().find(|i| i.name == "Systolic blood pressure").expect("systolic");
        let over = (0..60u64).filter(|i| i % 3 == 1 && i % 7 != 0).count();
        assert_eq!(sys.out_of_range, over);
        let hba1c = s.indicators.iter().find(|i| i.name == "HbA1c").expect("HbA1c");
        assert_eq!(hba1c.out_of_range, hba1c.count, "every result flagged high");
        assert_eq!(hba1c.loinc.as_deref(), Some("4548-4"));
        // A window that holds nothing: no encounters, no indicators; the
        // allergies stay (they hold whatever the window).
        let empty = build(&e, Preset::Consultation, "2030-01-01", "2030-12-31");
        assert!(empty.encounters.is_empty() && empty.indicators.is_empty());
        assert_eq!(empty.allergies.len(), e.allergies.len());
    }
}
