//! Properties every agreement statistic keeps, whatever the data: no panics, values at most
//! 1, and results that do not depend on the order coders or units are listed in.

use proptest::prelude::*;

use super::*;

/// 2-4 coders, up to 15 units, values 0-4 or gaps.
fn reliability_data() -> impl Strategy<Value = Vec<Vec<Option<f64>>>> {
    (2usize..=4, 0usize..=15).prop_flat_map(|(coders, units)| {
        prop::collection::vec(
            prop::collection::vec(
                prop::option::weighted(0.8, (0u8..5).prop_map(f64::from)),
                units,
            ),
            coders,
        )
    })
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        (None, None) => true,
        _ => false,
    }
}

fn event() -> impl Strategy<Value = CodedEvent> {
    (0u8..3, 0u64..10_000, prop::option::of(0u64..4_000)).prop_map(|(code, start, length)| {
        let code = ["A", "B", "C"][usize::from(code)];
        match length {
            Some(length) => CodedEvent::state(code, start, start + length),
            None => CodedEvent::point(code, start),
        }
    })
}

proptest! {
    #[test]
    fn alpha_is_at_most_1_and_the_order_of_coders_and_units_does_not_matter(
        data in reliability_data()
    ) {
        for metric in [Metric::Nominal, Metric::Ordinal, Metric::Interval] {
            let result = krippendorff_alpha(&data, metric).unwrap();
            prop_assert!(result.value.is_none_or(|alpha| alpha <= 1.0 + 1e-9));
            prop_assert_eq!(result.units + result.dropped, data[0].len());
            let mut coders_reversed = data.clone();
            coders_reversed.reverse();
            let mut units_reversed = data.clone();
            units_reversed.iter_mut().for_each(|coder| coder.reverse());
            for other in [coders_reversed, units_reversed] {
                let again = krippendorff_alpha(&other, metric).unwrap();
                prop_assert!(close(result.value, again.value));
            }
        }
    }

    #[test]
    fn two_coders_alpha_and_kappa_agree_on_perfect_agreement_and_stay_at_most_1(
        data in reliability_data()
    ) {
        let scale = [0.0, 1.0, 2.0, 3.0, 4.0];
        for weighting in [Weighting::Unweighted, Weighting::Linear, Weighting::Quadratic] {
            let result = cohen_kappa(&scale, &data[0], &data[1], weighting).unwrap();
            prop_assert!(result.value.is_none_or(|kappa| kappa <= 1.0 + 1e-9));
            prop_assert_eq!(result.units + result.dropped, data[0].len());
            let same = cohen_kappa(&scale, &data[0], &data[0], weighting).unwrap();
            prop_assert!(same.value.is_none_or(|kappa| (kappa - 1.0).abs() < 1e-9));
        }
    }

    #[test]
    fn time_sliced_kappa_never_fails_on_well_formed_events(
        first in prop::collection::vec(event(), 0..8),
        second in prop::collection::vec(event(), 0..8),
        slice_ms in 1u64..3_000,
    ) {
        let options = SliceOptions::new(0, 12_000, slice_ms);
        let result = time_sliced_kappa(&first, &second, options).unwrap();
        let percent = result.percent_agreement.unwrap();
        prop_assert!((0.0..=100.0).contains(&percent));
        prop_assert!(result.value.is_none_or(|kappa| kappa <= 1.0 + 1e-9));
        prop_assert_eq!(result.units as u64, 12_000 / slice_ms + 1);
        let swapped = time_sliced_kappa(&second, &first, options).unwrap();
        prop_assert!(close(result.value, swapped.value));
    }
}
