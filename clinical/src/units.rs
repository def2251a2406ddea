//! Measurements: which UCUM units each quantity may be written in, how
//! they convert, and the range a real value can fall in.
//!
//! The ranges are *plausible*, not normal: they refuse a heart rate of 720
//! (a typo for 72) or a temperature of 98.6 °C (°F entered as °C), and
//! accept every value a living patient can have. Values are stored as
//! written, in the unit written; conversion is only for the range check.

use serde::{Deserialize, Serialize};

/// A unit's conversion to its quantity's canonical unit: `a·x + b`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Linear {
    a: f64,
    b: f64,
}

const SAME: Linear = Linear { a: 1.0, b: 0.0 };

/// Something measured in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Quantity {
    /// Heart rate.
    HeartRate,
    /// Systolic blood pressure.
    SystolicPressure,
    /// Diastolic blood pressure.
    DiastolicPressure,
    /// Body temperature.
    Temperature,
    /// Peripheral oxygen saturation.
    OxygenSaturation,
    /// Respiratory rate.
    RespiratoryRate,
    /// Body weight.
    Weight,
    /// Body height.
    Height,
    /// Blood glucose.
    Glucose,
    /// A medication dose: mass, volume or units, no range (doses span
    /// micrograms to grams).
    Dose,
}

impl Quantity {
    /// The unit ranges are stated in.
    pub fn canonical_unit(self) -> &'static str {
        self.units()[0].0
    }

    /// The UCUM codes this quantity may be written in, canonical first,
    /// with their conversion to the canonical unit.
    fn units(self) -> &'static [(&'static str, Linear)] {
        match self {
            Quantity::HeartRate | Quantity::RespiratoryRate => &[("/min", SAME)],
            Quantity::SystolicPressure | Quantity::DiastolicPressure => &[("mm[Hg]", SAME)],
            // °F → °C: (x − 32)·5/9.
            Quantity::Temperature => &[("Cel", SAME), ("[degF]", Linear { a: 5.0 / 9.0, b: -160.0 / 9.0 })],
            Quantity::OxygenSaturation => &[("%", SAME)],
            Quantity::Weight => {
                &[("kg", SAME), ("g", Linear { a: 0.001, b: 0.0 }), ("[lb_av]", Linear { a: 0.453_592_37, b: 0.0 })]
            }
            Quantity::Height => {
                &[("cm", SAME), ("m", Linear { a: 100.0, b: 0.0 }), ("[in_i]", Linear { a: 2.54, b: 0.0 })]
            }
            // Glucose's molar mass is 180.16 g/mol: 1 mmol/L = 18.016 mg/dL.
            Quantity::Glucose => &[("mg/dL", SAME), ("mmol/L", Linear { a: 18.016, b: 0.0 })],
            Quantity::Dose => &[
                ("mg", SAME),
                ("g", Linear { a: 1000.0, b: 0.0 }),
                ("ug", Linear { a: 0.001, b: 0.0 }),
                ("mL", SAME),
                ("[iU]", SAME),
                ("{tablet}", SAME),
                ("{capsule}", SAME),
                ("{puff}", SAME),
                ("{drop}", SAME),
            ],
        }
    }

    /// The unit codes allowed, canonical first.
    pub fn unit_codes(self) -> Vec<&'static str> {
        self.units().iter().map(|(u, _)| *u).collect()
    }

    /// The plausible range in the canonical unit, inclusive; `None` when
    /// any positive value can be real.
    pub fn plausible(self) -> Option<(f64, f64)> {
        Some(match self {
            Quantity::HeartRate => (20.0, 300.0),
            Quantity::SystolicPressure => (40.0, 300.0),
            Quantity::DiastolicPressure => (20.0, 200.0),
            Quantity::Temperature => (25.0, 45.0),
            Quantity::OxygenSaturation => (50.0, 100.0),
            Quantity::RespiratoryRate => (4.0, 80.0),
            Quantity::Weight => (0.2, 700.0),
            Quantity::Height => (20.0, 275.0),
            Quantity::Glucose => (10.0, 2000.0),
            Quantity::Dose => return None,
        })
    }

    /// `value` in `unit` converted to the canonical unit, or `None` when
    /// the unit is not one of this quantity's.
    pub fn to_canonical(self, value: f64, unit: &str) -> Option<f64> {
        self.units().iter().find(|(u, _)| *u == unit).map(|(_, l)| l.a * value + l.b)
    }
}

/// Why a measurement is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeasureError {
    /// The unit is not one this quantity may be written in.
    #[error("unit {unit:?} is not one of {allowed:?}")]
    Unit {
        /// The unit given (bounded by the caller).
        unit: String,
        /// The allowed UCUM codes.
        allowed: Vec<&'static str>,
    },
    /// Not a finite number, or negative where nothing can be.
    #[error("not a finite, non-negative number")]
    NotANumber,
    /// Outside the plausible range.
    #[error("{value} {unit} is outside the plausible range {min}–{max} {canonical}")]
    Implausible {
        /// The value given.
        value: f64,
        /// Its unit.
        unit: String,
        /// The range's low end, in `canonical`.
        min: f64,
        /// The range's high end.
        max: f64,
        /// The canonical unit.
        canonical: &'static str,
    },
}

/// Checks `value` in `unit` as a `quantity`.
pub fn check(quantity: Quantity, value: f64, unit: &str) -> Result<(), MeasureError> {
    if !value.is_finite() || value < 0.0 {
        return Err(MeasureError::NotANumber);
    }
    let canonical = quantity
        .to_canonical(value, unit)
        .ok_or_else(|| MeasureError::Unit { unit: unit.chars().take(32).collect(), allowed: quantity.unit_codes() })?;
    match quantity.plausible() {
        // A little slack for the conversion's rounding at the edges.
        Some((min, max)) if canonical < min - 1e-9 || canonical > max + 1e-9 => Err(MeasureError::Implausible {
            value,
            unit: unit.to_string(),
            min,
            max,
            canonical: quantity.canonical_unit(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_are_checked_in_every_allowed_unit() {
        use Quantity::*;
        let ok: &[(Quantity, f64, &str)] = &[
            (HeartRate, 72.0, "/min"),
            (Temperature, 37.0, "Cel"),
            (Temperature, 98.6, "[degF]"),
            (Temperature, 45.0, "Cel"),
            (Weight, 70.0, "kg"),
            (Weight, 154.0, "[lb_av]"),
            (Weight, 3400.0, "g"),
            (Height, 1.8, "m"),
            (Height, 70.0, "[in_i]"),
            (Glucose, 5.5, "mmol/L"),
            (Glucose, 99.0, "mg/dL"),
            (OxygenSaturation, 100.0, "%"),
            (Dose, 0.0, "mg"),
            (Dose, 250_000.0, "ug"),
        ];
        for (q, v, u) in ok {
            assert_eq!(check(*q, *v, u), Ok(()), "{q:?} {v} {u}");
        }
        let refused: &[(Quantity, f64, &str, &str)] = &[
            (HeartRate, 720.0, "/min", "implausible"),
            (Temperature, 98.6, "Cel", "implausible"),
            (Temperature, 37.0, "[degF]", "implausible"),
            (Weight, 70.0, "lb", "unit"),
            (OxygenSaturation, 101.0, "%", "implausible"),
            (Glucose, 150.0, "mmol/L", "implausible"),
            (Height, f64::NAN, "cm", "number"),
            (Dose, -1.0, "mg", "number"),
            (SystolicPressure, 120.0, "mmHg", "unit"),
        ];
        for (q, v, u, why) in refused {
            let got = check(*q, *v, u);
            let kind = match got {
                Err(MeasureError::Implausible { .. }) => "implausible",
                Err(MeasureError::Unit { .. }) => "unit",
                Err(MeasureError::NotANumber) => "number",
                Ok(()) => "accepted",
            };
            assert_eq!(kind, *why, "{q:?} {v} {u}");
        }
    }

    #[test]
    fn conversions_agree_at_known_points() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(Quantity::Temperature.to_canonical(212.0, "[degF]").unwrap_or(0.0), 100.0));
        assert!(close(Quantity::Weight.to_canonical(1.0, "[lb_av]").unwrap_or(0.0), 0.45359237));
        assert!(close(Quantity::Height.to_canonical(1.0, "[in_i]").unwrap_or(0.0), 2.54));
        assert_eq!(Quantity::Height.to_canonical(1.0, "ft"), None);
    }
}
