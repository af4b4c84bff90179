//! How far coders agree: the statistics a study reports for its coded practice recordings.
//!
//! - [`krippendorff_alpha`]: Krippendorff's alpha for nominal, ordinal and interval data, any
//!   number of coders, gaps allowed (the per-recording ratings).
//! - [`cohen_kappa`] and [`cohen_kappa_from_table`]: Cohen's kappa for two coders, unweighted
//!   or with linear or quadratic weights for an ordinal scale.
//! - [`time_sliced_kappa`]: Cohen's kappa over time slices of two coders' point and state
//!   events (the timeline codes), as BORIS computes it, with the percentage agreement.
//!
//! Every function is pure: data in, an [`Agreement`] out, with the number of units it rests
//! on, the units left out for missing values, and a plain-English [`Reading`]. A statistic
//! that cannot be computed from the data (no variation at all, nothing to compare) has no
//! value and says why ([`Undefined`]) rather than giving a number that means nothing.

use std::fmt;

mod kappa;
mod krippendorff;
#[cfg(test)]
mod properties;
mod time_sliced;

pub use kappa::{Weighting, cohen_kappa, cohen_kappa_from_table};
pub use krippendorff::{Metric, krippendorff_alpha};
pub use time_sliced::{CodedEvent, MAX_SLICES, SliceOptions, time_sliced_kappa};

/// Which statistic an [`Agreement`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// Krippendorff's alpha with this metric.
    KrippendorffAlpha(Metric),
    /// Cohen's kappa with these weights.
    CohenKappa(Weighting),
    /// Cohen's kappa over time slices of event codes.
    TimeSlicedKappa,
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::KrippendorffAlpha(metric) => {
                write!(f, "Krippendorff's alpha ({})", metric.as_str())
            }
            Statistic::CohenKappa(Weighting::Unweighted) => f.write_str("Cohen's kappa"),
            Statistic::CohenKappa(weighting) => {
                write!(f, "Cohen's weighted kappa ({} weights)", weighting.as_str())
            }
            Statistic::TimeSlicedKappa => f.write_str("Cohen's kappa on time slices"),
        }
    }
}

/// The result of an agreement statistic.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Which statistic this is.
    pub statistic: Statistic,
    /// The coefficient (1 is perfect agreement, 0 what chance would give); `None` when it is
    /// undefined for this data, and [`Agreement::reading`] says why.
    pub value: Option<f64>,
    /// How many units the value rests on: the units with values from at least two coders
    /// (alpha), the pairs rated by both coders (kappa), the time slices (time-sliced kappa).
    pub units: usize,
    /// How many units were left out because a coder's value was missing (alpha: units with
    /// fewer than two values; kappa: pairs with a gap). Always 0 for time slices.
    pub dropped: usize,
    /// For kappa: the percentage (0-100) of units both coders put in the same category;
    /// `None` for alpha, or when there are no units.
    pub percent_agreement: Option<f64>,
    /// What the value means in words.
    pub reading: Reading,
}

impl Agreement {
    /// An agreement with `value` (or the reason it is undefined), read by the bands of its
    /// statistic.
    fn new(
        statistic: Statistic,
        value: Result<f64, Undefined>,
        units: usize,
        dropped: usize,
        percent_agreement: Option<f64>,
    ) -> Self {
        let reading = match (statistic, value) {
            (_, Err(reason)) => Reading::Undefined(reason),
            (Statistic::KrippendorffAlpha(_), Ok(alpha)) => Reading::Alpha(AlphaBand::of(alpha)),
            (_, Ok(kappa)) => Reading::Kappa(KappaBand::of(kappa)),
        };
        Self {
            statistic,
            value: value.ok(),
            units,
            dropped,
            percent_agreement,
            reading,
        }
    }
}

impl fmt::Display for Agreement {
    /// E.g. `Krippendorff's alpha (nominal) = 0.743 over 9 units (3 left out for missing
    /// values): tentative conclusions only (0.667 <= alpha < 0.800)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(value) => write!(f, "{} = {value:.3}", self.statistic)?,
            None => write!(f, "{} undefined", self.statistic)?,
        }
        let noun = if self.units == 1 { "unit" } else { "units" };
        write!(f, " over {} {noun}", self.units)?;
        if self.dropped > 0 {
            write!(f, " ({} left out for missing values)", self.dropped)?;
        }
        if let Some(percent) = self.percent_agreement {
            write!(f, ", {percent:.1}% agreement")?;
        }
        write!(f, ": {}", self.reading)
    }
}

/// What an agreement value means in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// A kappa, read by Landis & Koch's bands.
    Kappa(KappaBand),
    /// An alpha, read by Krippendorff's standards.
    Alpha(AlphaBand),
    /// No value: why not.
    Undefined(Undefined),
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reading::Kappa(band) => write!(f, "{} (Landis & Koch, 1977)", band.label()),
            Reading::Alpha(band) => f.write_str(band.label()),
            Reading::Undefined(reason) => f.write_str(reason.label()),
        }
    }
}

/// Landis & Koch's (1977) bands for kappa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KappaBand {
    /// Below 0: less agreement than chance.
    Poor,
    /// 0 to 0.20.
    Slight,
    /// Above 0.20 to 0.40.
    Fair,
    /// Above 0.40 to 0.60.
    Moderate,
    /// Above 0.60 to 0.80.
    Substantial,
    /// Above 0.80 to 1.
    AlmostPerfect,
}

impl KappaBand {
    /// The band of a kappa value. The published bands are 0.00-0.20, 0.21-0.40, ...: a
    /// value belongs to the lower band up to and including its upper bound.
    pub fn of(kappa: f64) -> Self {
        match kappa {
            k if k < 0.0 => KappaBand::Poor,
            k if k <= 0.20 => KappaBand::Slight,
            k if k <= 0.40 => KappaBand::Fair,
            k if k <= 0.60 => KappaBand::Moderate,
            k if k <= 0.80 => KappaBand::Substantial,
            _ => KappaBand::AlmostPerfect,
        }
    }

    /// The band in words, e.g. `moderate agreement`.
    pub fn label(self) -> &'static str {
        match self {
            KappaBand::Poor => "poor agreement (less than chance)",
            KappaBand::Slight => "slight agreement",
            KappaBand::Fair => "fair agreement",
            KappaBand::Moderate => "moderate agreement",
            KappaBand::Substantial => "substantial agreement",
            KappaBand::AlmostPerfect => "almost perfect agreement",
        }
    }
}

/// Krippendorff's (2004) standards for alpha.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlphaBand {
    /// Below 0.667: the data should not be relied on.
    NotReliable,
    /// 0.667 up to 0.800: only tentative conclusions.
    TentativeOnly,
    /// 0.800 or more: reliable.
    Reliable,
}

impl AlphaBand {
    /// The band of an alpha value.
    pub fn of(alpha: f64) -> Self {
        if alpha >= 0.800 {
            AlphaBand::Reliable
        } else if alpha >= 0.667 {
            AlphaBand::TentativeOnly
        } else {
            AlphaBand::NotReliable
        }
    }

    /// The band in words.
    pub fn label(self) -> &'static str {
        match self {
            AlphaBand::Reliable => "reliable (alpha >= 0.800)",
            AlphaBand::TentativeOnly => "tentative conclusions only (0.667 <= alpha < 0.800)",
            AlphaBand::NotReliable => "not reliable (alpha < 0.667)",
        }
    }
}

/// Why a statistic has no value for the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undefined {
    /// No unit was coded by two coders, so there is nothing to compare.
    NothingToCompare,
    /// Every value is the same (every unit, every coder), so agreement cannot be told apart
    /// from chance: the expected disagreement is 0 and the statistic divides by it.
    NoVariation,
}

impl Undefined {
    /// The reason in words.
    pub fn label(self) -> &'static str {
        match self {
            Undefined::NothingToCompare => {
                "undefined: no unit was coded by two coders, so there is nothing to compare"
            }
            Undefined::NoVariation => {
                "undefined: every value is the same, so agreement cannot be told apart from \
                 chance (the coders agree on all of them)"
            }
        }
    }
}

/// Data an agreement statistic cannot be computed from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgreementError {
    /// The coders' lists of values have different lengths.
    #[error(
        "coder {coder} has {found} values but coder 0 has {expected}: each coder needs one \
         value (or a gap) per unit"
    )]
    UnequalLengths {
        /// The coder (from 0) whose list differs.
        coder: usize,
        /// Its length.
        found: usize,
        /// Coder 0's length.
        expected: usize,
    },
    /// A value is not a finite number (NaN or infinite).
    #[error("coder {coder}'s value for unit {unit} is not a finite number")]
    NotFinite {
        /// The coder, from 0.
        coder: usize,
        /// The unit, from 0.
        unit: usize,
    },
    /// A rating is not one of the scale's categories.
    #[error("coder {coder}'s rating for unit {unit} is not one of the scale's categories")]
    NotOnScale {
        /// The coder, from 0.
        coder: usize,
        /// The unit, from 0.
        unit: usize,
    },
    /// A scale or table with fewer than two categories.
    #[error("a scale needs at least two categories, this one has {categories}")]
    ScaleTooSmall {
        /// How many it has.
        categories: usize,
    },
    /// A contingency table whose rows are not all as long as the table is high.
    #[error("the table has {rows} rows but row {row} has {columns} columns: it must be square")]
    TableNotSquare {
        /// How many rows.
        rows: usize,
        /// The first row of another length.
        row: usize,
        /// Its length.
        columns: usize,
    },
    /// A time slice of length 0.
    #[error("the time slices must be at least 1 ms long")]
    ZeroSliceLength,
    /// An observation that ends before it starts.
    #[error("the observation ends ({to_ms} ms) before it starts ({from_ms} ms)")]
    EndsBeforeStart {
        /// Its start.
        from_ms: u64,
        /// Its end.
        to_ms: u64,
    },
    /// More time slices than [`MAX_SLICES`].
    #[error("{slices} time slices is too many (at most {MAX_SLICES}): use longer slices")]
    TooManySlices {
        /// How many the options would make.
        slices: u64,
    },
    /// A state event that ends before it starts.
    #[error("coder {coder}'s event {event} ends before it starts")]
    EventEndsBeforeStart {
        /// The coder, 0 or 1.
        coder: usize,
        /// The event's index in that coder's list.
        event: usize,
    },
}
