//! Cohen's kappa on time slices of two coders' timelines, as BORIS computes it
//! (`boris/irr.py`, after Bakeman & Quera, "Sequential Analysis and Observational Methods
//! for the Behavioral Sciences", p. 77).
//!
//! The observation is sampled every `slice_ms` from `from_ms` up to and including `to_ms`.
//! At each sample instant, each coder's label is the set of codes they have there: every
//! state event running at that instant (its start and end included) and every point event
//! within `point_tolerance_ms` of it (by default half a slice, so each point event falls in
//! the slice around it). Each different set, the empty set included, is one category, and
//! kappa is computed over the slices. Where BORIS reports kappa 1 for two timelines with a
//! single label throughout, this says it is undefined and gives 100% agreement.

use std::collections::BTreeMap;

use super::kappa::{Weighting, kappa_of_table};
use super::{Agreement, AgreementError, Statistic};

/// The most time slices one comparison makes (a three-hour recording in 10 ms slices).
pub const MAX_SLICES: u64 = 1_080_000;

/// One coded event on a coder's timeline, in milliseconds from the start of the recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodedEvent {
    /// The code's id.
    pub code: String,
    /// When it starts (a point event: when it is).
    pub start_ms: u64,
    /// When a state event ends; `None` for a point event.
    pub end_ms: Option<u64>,
}

impl CodedEvent {
    /// A point event: a code at a moment.
    pub fn point(code: impl Into<String>, at_ms: u64) -> Self {
        Self {
            code: code.into(),
            start_ms: at_ms,
            end_ms: None,
        }
    }

    /// A state event: a code over an interval.
    pub fn state(code: impl Into<String>, start_ms: u64, end_ms: u64) -> Self {
        Self {
            code: code.into(),
            start_ms,
            end_ms: Some(end_ms),
        }
    }
}

/// How the observation is sliced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceOptions {
    /// The first sample instant.
    pub from_ms: u64,
    /// The last instant that can be sampled (sampled when it falls on a slice).
    pub to_ms: u64,
    /// The length of a slice, 1 ms or more.
    pub slice_ms: u64,
    /// How near a sample instant a point event must be to mark it.
    pub point_tolerance_ms: u64,
}

impl SliceOptions {
    /// Slices of `slice_ms` from `from_ms` to `to_ms`, point events marking the slice around
    /// them (a tolerance of half a slice, as in BORIS).
    pub fn new(from_ms: u64, to_ms: u64, slice_ms: u64) -> Self {
        Self {
            from_ms,
            to_ms,
            slice_ms,
            point_tolerance_ms: slice_ms / 2,
        }
    }

    /// The number of sample instants.
    fn slice_count(&self) -> Result<u64, AgreementError> {
        if self.slice_ms == 0 {
            return Err(AgreementError::ZeroSliceLength);
        }
        if self.to_ms < self.from_ms {
            return Err(AgreementError::EndsBeforeStart {
                from_ms: self.from_ms,
                to_ms: self.to_ms,
            });
        }
        let slices = ((self.to_ms - self.from_ms) / self.slice_ms).saturating_add(1);
        if slices > MAX_SLICES {
            return Err(AgreementError::TooManySlices { slices });
        }
        Ok(slices)
    }

    /// The sample instants `index` of the slices whose instant lies in `[low, high]`.
    fn slices_within(&self, low: u64, high: u64, count: usize) -> std::ops::Range<usize> {
        let low = low.max(self.from_ms);
        let high = high.min(self.to_ms);
        if high < low {
            return 0..0;
        }
        let first = (low - self.from_ms).div_ceil(self.slice_ms);
        let last = (high - self.from_ms) / self.slice_ms;
        let clamp = |i: u64| usize::try_from(i).unwrap_or(usize::MAX).min(count);
        clamp(first)..clamp(last.saturating_add(1))
    }
}

/// Cohen's kappa over the time slices of two coders' events, with the percentage of slices
/// they labelled the same ([`Agreement::percent_agreement`]); [`Agreement::units`] is the
/// number of slices.
///
/// # Errors
/// [`AgreementError::ZeroSliceLength`], [`AgreementError::EndsBeforeStart`] or
/// [`AgreementError::TooManySlices`] for bad options, and
/// [`AgreementError::EventEndsBeforeStart`] for a state event that ends before it starts.
pub fn time_sliced_kappa(
    first: &[CodedEvent],
    second: &[CodedEvent],
    options: SliceOptions,
) -> Result<Agreement, AgreementError> {
    let count = usize::try_from(options.slice_count()?).unwrap_or(usize::MAX);
    let first = labels(first, 0, &options, count)?;
    let second = labels(second, 1, &options, count)?;
    let mut categories: BTreeMap<&[&str], usize> = BTreeMap::new();
    for label in first.iter().chain(&second) {
        let next = categories.len();
        categories.entry(label.as_slice()).or_insert(next);
    }
    let k = categories.len();
    let mut table = vec![vec![0u64; k]; k];
    for (a, b) in first.iter().zip(&second) {
        table[categories[a.as_slice()]][categories[b.as_slice()]] += 1;
    }
    Ok(kappa_of_table(
        &table,
        Weighting::Unweighted,
        Statistic::TimeSlicedKappa,
        0,
    ))
}

/// Each slice's label for one coder: the sorted set of codes at its sample instant.
fn labels<'a>(
    events: &'a [CodedEvent],
    coder: usize,
    options: &SliceOptions,
    count: usize,
) -> Result<Vec<Vec<&'a str>>, AgreementError> {
    let mut labels: Vec<Vec<&str>> = vec![Vec::new(); count];
    for (index, event) in events.iter().enumerate() {
        let (low, high) = match event.end_ms {
            Some(end) if end < event.start_ms => {
                return Err(AgreementError::EventEndsBeforeStart {
                    coder,
                    event: index,
                });
            }
            Some(end) => (event.start_ms, end),
            None => (
                event.start_ms.saturating_sub(options.point_tolerance_ms),
                event.start_ms.saturating_add(options.point_tolerance_ms),
            ),
        };
        for slice in options.slices_within(low, high, count) {
            labels[slice].push(&event.code);
        }
    }
    for label in &mut labels {
        label.sort_unstable();
        label.dedup();
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{KappaBand, Reading, Undefined};

    fn rounded(agreement: &Agreement) -> f64 {
        (agreement.value.expect("a value") * 1000.0).round() / 1000.0
    }

    #[test]
    fn identical_timelines_agree_perfectly() {
        let events = [
            CodedEvent::state("waiting", 0, 3_000),
            CodedEvent::point("naming", 5_000),
            CodedEvent::state("scaffolding", 6_000, 9_000),
        ];
        let result =
            time_sliced_kappa(&events, &events, SliceOptions::new(0, 9_000, 1_000)).unwrap();
        assert_eq!(result.value, Some(1.0));
        assert_eq!(result.units, 10, "instants 0, 1000, ... 9000");
        assert_eq!(result.percent_agreement, Some(100.0));
        assert_eq!(result.statistic, Statistic::TimeSlicedKappa);
    }

    #[test]
    fn a_state_coded_later_by_one_coder_is_counted_by_hand() {
        // Ten instants 0..9 s. Coder 1: A over 0-4 s (instants 0-4), then nothing.
        // Coder 2: A over 2-6 s (instants 2-6). Labels by instant:
        //   1: A A A A A - - - - -
        //   2: - - A A A A A - - -
        // Table (A, none): A/A 3, A/none 2, none/A 2, none/none 3.
        // p_o = 6/10; p_e = 0.5*0.5 + 0.5*0.5 = 0.5; kappa = (0.6 - 0.5) / 0.5 = 0.2.
        let first = [CodedEvent::state("A", 0, 4_000)];
        let second = [CodedEvent::state("A", 2_000, 6_000)];
        let result =
            time_sliced_kappa(&first, &second, SliceOptions::new(0, 9_000, 1_000)).unwrap();
        assert_eq!(rounded(&result), 0.2);
        assert_eq!(result.percent_agreement, Some(60.0));
        assert_eq!(result.reading, Reading::Kappa(KappaBand::Slight));
    }

    #[test]
    fn a_point_event_marks_the_slice_within_the_tolerance() {
        // Slices of 1 s over 0-3 s (instants 0, 1, 2, 3). Coder 1 marks P at 1.4 s (within
        // 0.5 s of instant 1); coder 2 at 1.6 s (nearest instant 2). With the default
        // tolerance they disagree on two slices:
        //   1: - P - -      2: - - P -
        // Table (none, P): none/none 2, P/none 1, none/P 1. p_o = 0.5,
        // p_e = 0.75*0.75 + 0.25*0.25 = 0.625, kappa = (0.5 - 0.625) / 0.375 = -1/3.
        let first = [CodedEvent::point("P", 1_400)];
        let second = [CodedEvent::point("P", 1_600)];
        let options = SliceOptions::new(0, 3_000, 1_000);
        let result = time_sliced_kappa(&first, &second, options).unwrap();
        assert_eq!(rounded(&result), -0.333);
        assert_eq!(result.reading, Reading::Kappa(KappaBand::Poor));
        // A wider tolerance (0.7 s) lets both mark instants 1 and 2: they agree throughout.
        let wide = SliceOptions {
            point_tolerance_ms: 700,
            ..options
        };
        let result = time_sliced_kappa(&first, &second, wide).unwrap();
        assert_eq!(result.value, Some(1.0));
    }

    #[test]
    fn overlapping_codes_make_one_combined_label() {
        // Instants 0, 1, 2, 3 s. Coder 1 has A over 0-3 s and B over 1-2 s; coder 2 has A
        // over 0-3 s only. Labels: 1: A, AB, AB, A; 2: A, A, A, A.
        // Table (A, AB): A/A 2, AB/A 2. p_o = 0.5; p_e = 0.5*1 + 0.5*0 = 0.5; kappa 0.
        let first = [
            CodedEvent::state("A", 0, 3_000),
            CodedEvent::state("B", 1_000, 2_000),
        ];
        let second = [CodedEvent::state("A", 0, 3_000)];
        let result =
            time_sliced_kappa(&first, &second, SliceOptions::new(0, 3_000, 1_000)).unwrap();
        assert_eq!(rounded(&result), 0.0);
        assert_eq!(result.percent_agreement, Some(50.0));
        // The order events are listed in does not matter.
        let reordered = [first[1].clone(), first[0].clone()];
        let again =
            time_sliced_kappa(&reordered, &second, SliceOptions::new(0, 3_000, 1_000)).unwrap();
        assert_eq!(again, result);
    }

    #[test]
    fn one_label_throughout_is_undefined_with_full_agreement() {
        let events = [CodedEvent::state("A", 0, 10_000)];
        let result =
            time_sliced_kappa(&events, &events, SliceOptions::new(0, 5_000, 1_000)).unwrap();
        assert_eq!(result.value, None);
        assert_eq!(result.reading, Reading::Undefined(Undefined::NoVariation));
        assert_eq!(result.percent_agreement, Some(100.0));
        assert_eq!(result.units, 6);
        // No events at all: every slice is "nothing coded" for both.
        let result = time_sliced_kappa(&[], &[], SliceOptions::new(0, 5_000, 1_000)).unwrap();
        assert_eq!(result.reading, Reading::Undefined(Undefined::NoVariation));
    }

    #[test]
    fn bad_options_and_events_are_refused() {
        let none: [CodedEvent; 0] = [];
        assert_eq!(
            time_sliced_kappa(&none, &none, SliceOptions::new(0, 1_000, 0)),
            Err(AgreementError::ZeroSliceLength)
        );
        assert_eq!(
            time_sliced_kappa(&none, &none, SliceOptions::new(5_000, 1_000, 100)),
            Err(AgreementError::EndsBeforeStart {
                from_ms: 5_000,
                to_ms: 1_000
            })
        );
        assert!(matches!(
            time_sliced_kappa(&none, &none, SliceOptions::new(0, u64::MAX, 1)),
            Err(AgreementError::TooManySlices { .. })
        ));
        let backwards = [CodedEvent::state("A", 3_000, 1_000)];
        assert_eq!(
            time_sliced_kappa(&none, &backwards, SliceOptions::new(0, 5_000, 1_000)),
            Err(AgreementError::EventEndsBeforeStart { coder: 1, event: 0 })
        );
    }

    #[test]
    fn events_outside_the_observation_are_ignored() {
        // Instants 10, 11, 12 s; an event before and one after change nothing.
        let first = [
            CodedEvent::state("A", 0, 5_000),
            CodedEvent::point("P", 20_000),
        ];
        let result =
            time_sliced_kappa(&first, &[], SliceOptions::new(10_000, 12_000, 1_000)).unwrap();
        assert_eq!(result.percent_agreement, Some(100.0));
        assert_eq!(result.units, 3);
    }
}
