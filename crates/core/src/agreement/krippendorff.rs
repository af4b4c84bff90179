//! Krippendorff's alpha, computed through the coincidence matrix as in Krippendorff (2011),
//! "Computing Krippendorff's Alpha-Reliability" (Annenberg School for Communication,
//! University of Pennsylvania):
//!
//! `alpha = 1 - (n - 1) * sum(o_ck * delta2_ck) / sum(n_c * n_k * delta2_ck)`
//!
//! where `o_ck` counts the pairs of values `c`, `k` coded by different coders in the same
//! unit (each unit's pairs weighted by `1 / (m_u - 1)`, `m_u` its number of values), `n_c`
//! is how often `c` is paired, `n` is every pairable value, and `delta2` is the metric's
//! squared difference.

use super::{Agreement, AgreementError, Statistic, Undefined};

/// The level of measurement: how different two values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Categories: two values agree or they do not.
    Nominal,
    /// Ranks: the difference grows with how many values lie between two values.
    Ordinal,
    /// Numbers: the difference is the squared distance.
    Interval,
}

impl Metric {
    /// The metric's name, e.g. `ordinal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Nominal => "nominal",
            Metric::Ordinal => "ordinal",
            Metric::Interval => "interval",
        }
    }
}

/// Krippendorff's alpha of reliability data given coder by coder: `data[coder][unit]` is the
/// value that coder gave the unit, `None` if they gave none. Any number of coders; units with
/// fewer than two values cannot be paired and are left out ([`Agreement::dropped`]).
///
/// For nominal data the numbers only name categories (map each category to a number). The
/// value is undefined when no unit has two values ([`Undefined::NothingToCompare`]) or every
/// paired value is the same ([`Undefined::NoVariation`]).
///
/// # Errors
/// [`AgreementError::UnequalLengths`] if the coders' lists differ in length,
/// [`AgreementError::NotFinite`] for a NaN or infinite value.
pub fn krippendorff_alpha(
    data: &[Vec<Option<f64>>],
    metric: Metric,
) -> Result<Agreement, AgreementError> {
    let unit_count = data.first().map_or(0, Vec::len);
    for (coder, values) in data.iter().enumerate() {
        if values.len() != unit_count {
            return Err(AgreementError::UnequalLengths {
                coder,
                found: values.len(),
                expected: unit_count,
            });
        }
        if let Some(unit) = values
            .iter()
            .position(|v| v.is_some_and(|v| !v.is_finite()))
        {
            return Err(AgreementError::NotFinite { coder, unit });
        }
    }
    let mut values: Vec<f64> = data.iter().flatten().flatten().copied().collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let coincidences = Coincidences::of(data, &values, unit_count);
    let statistic = Statistic::KrippendorffAlpha(metric);
    let value = coincidences.alpha(&values, metric);
    Ok(Agreement::new(
        statistic,
        value,
        coincidences.pairable_units,
        unit_count - coincidences.pairable_units,
        None,
    ))
}

/// The coincidence matrix of reliability data over its distinct values.
struct Coincidences {
    /// `o[c][k]`, over the indexes of the sorted distinct values.
    o: Vec<Vec<f64>>,
    /// How many units had at least two values.
    pairable_units: usize,
}

impl Coincidences {
    fn of(data: &[Vec<Option<f64>>], values: &[f64], unit_count: usize) -> Self {
        let k = values.len();
        let mut o = vec![vec![0.0; k]; k];
        let mut pairable_units = 0;
        let mut in_unit = vec![0usize; k];
        for unit in 0..unit_count {
            in_unit.iter_mut().for_each(|count| *count = 0);
            let mut m = 0usize;
            for value in data.iter().filter_map(|coder| coder[unit]) {
                // Every value is among `values`, which is sorted by `total_cmp`.
                if let Ok(index) = values.binary_search_by(|v| v.total_cmp(&value)) {
                    in_unit[index] += 1;
                    m += 1;
                }
            }
            if m < 2 {
                continue;
            }
            pairable_units += 1;
            let weight = 1.0 / (m - 1) as f64;
            for c in 0..k {
                if in_unit[c] == 0 {
                    continue;
                }
                for (kk, &count) in in_unit.iter().enumerate() {
                    // Pairs of different coders: a value is not paired with itself.
                    let pairs = in_unit[c] * if c == kk { count - 1 } else { count };
                    o[c][kk] += pairs as f64 * weight;
                }
            }
        }
        Self { o, pairable_units }
    }

    /// Alpha, or why it is undefined.
    fn alpha(&self, values: &[f64], metric: Metric) -> Result<f64, Undefined> {
        if self.pairable_units == 0 {
            return Err(Undefined::NothingToCompare);
        }
        let n_c: Vec<f64> = self.o.iter().map(|row| row.iter().sum()).collect();
        let n: f64 = n_c.iter().sum();
        let delta2 = |c: usize, k: usize| -> f64 {
            match metric {
                Metric::Nominal => f64::from(u8::from(c != k)),
                Metric::Interval => (values[c] - values[k]).powi(2),
                Metric::Ordinal => {
                    let (low, high) = (c.min(k), c.max(k));
                    let between: f64 = n_c[low..=high].iter().sum();
                    (between - (n_c[c] + n_c[k]) / 2.0).powi(2)
                }
            }
        };
        let mut observed = 0.0;
        let mut expected = 0.0;
        for c in 0..values.len() {
            for k in 0..values.len() {
                let d = delta2(c, k);
                observed += self.o[c][k] * d;
                expected += n_c[c] * n_c[k] * d;
            }
        }
        if expected == 0.0 {
            return Err(Undefined::NoVariation);
        }
        Ok(1.0 - (n - 1.0) * observed / expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{AlphaBand, Reading};

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
    /// observers A-D, twelve units, values 1-5, with missing values (`None`).
    fn krippendorff_2011_c() -> Vec<Vec<Option<f64>>> {
        let row = |values: [Option<u8>; 12]| -> Vec<Option<f64>> {
            values.iter().map(|v| v.map(f64::from)).collect()
        };
        let (a, b, c, d, e) = (Some(1), Some(2), Some(3), Some(4), Some(5));
        vec![
            row([a, b, c, c, b, a, d, a, b, None, None, None]),
            row([a, b, c, c, b, b, d, a, b, e, None, c]),
            row([None, c, c, c, b, c, d, b, b, e, a, None]),
            row([a, b, c, c, b, d, d, a, b, e, a, None]),
        ]
    }

    fn alpha(data: &[Vec<Option<f64>>], metric: Metric) -> Agreement {
        krippendorff_alpha(data, metric).unwrap()
    }

    fn rounded(value: Option<f64>) -> f64 {
        (value.expect("a value") * 1000.0).round() / 1000.0
    }

    #[test]
    fn the_published_four_coder_example_with_missing_values_gives_the_papers_alphas() {
        let data = krippendorff_2011_c();
        // The paper: nominal 0.743, ordinal 0.815, interval 0.849. Unit 12 has one value and
        // is not pairable, so 11 units count.
        let nominal = alpha(&data, Metric::Nominal);
        assert_eq!(rounded(nominal.value), 0.743);
        assert_eq!((nominal.units, nominal.dropped), (11, 1));
        assert_eq!(rounded(alpha(&data, Metric::Ordinal).value), 0.815);
        assert_eq!(rounded(alpha(&data, Metric::Interval).value), 0.849);
        assert_eq!(nominal.reading, Reading::Alpha(AlphaBand::TentativeOnly));
        assert_eq!(
            alpha(&data, Metric::Interval).reading,
            Reading::Alpha(AlphaBand::Reliable)
        );
    }

    #[test]
    fn the_published_two_coder_binary_example_gives_0_095() {
        // Krippendorff (2011), section A: two observers, ten units, binary values.
        let a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0];
        let b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0];
        let data: Vec<Vec<Option<f64>>> = [a, b]
            .iter()
            .map(|row| row.iter().map(|&v| Some(f64::from(v))).collect())
            .collect();
        let result = alpha(&data, Metric::Nominal);
        assert_eq!(rounded(result.value), 0.095);
        assert_eq!((result.units, result.dropped), (10, 0));
        assert_eq!(result.reading, Reading::Alpha(AlphaBand::NotReliable));
        assert!(
            result
                .to_string()
                .starts_with("Krippendorff's alpha (nominal) = 0.095 over 10 units: not reliable"),
            "{result}"
        );
    }

    #[test]
    fn perfect_agreement_is_1_at_every_level() {
        let row: Vec<Option<f64>> = [1.0, 2.0, 3.0, 2.0].map(Some).to_vec();
        let data = vec![row.clone(), row.clone(), row];
        for metric in [Metric::Nominal, Metric::Ordinal, Metric::Interval] {
            assert_eq!(alpha(&data, metric).value, Some(1.0), "{metric:?}");
        }
    }

    #[test]
    fn one_value_everywhere_is_undefined_not_perfect() {
        let data = vec![vec![Some(2.0); 5], vec![Some(2.0); 5]];
        let result = alpha(&data, Metric::Nominal);
        assert_eq!(result.value, None);
        assert_eq!(result.reading, Reading::Undefined(Undefined::NoVariation));
        assert!(result.to_string().contains("every value is the same"));
    }

    #[test]
    fn no_unit_coded_twice_is_undefined_and_every_unit_is_dropped() {
        let data = vec![vec![Some(1.0), None], vec![None, Some(2.0)]];
        let result = alpha(&data, Metric::Interval);
        assert_eq!(
            result.reading,
            Reading::Undefined(Undefined::NothingToCompare)
        );
        assert_eq!((result.units, result.dropped), (0, 2));
        let empty: Vec<Vec<Option<f64>>> = Vec::new();
        assert_eq!(alpha(&empty, Metric::Nominal).value, None);
    }

    #[test]
    fn ragged_or_non_finite_data_is_refused() {
        let data = vec![vec![Some(1.0), Some(2.0)], vec![Some(1.0)]];
        assert_eq!(
            krippendorff_alpha(&data, Metric::Nominal),
            Err(AgreementError::UnequalLengths {
                coder: 1,
                found: 1,
                expected: 2
            })
        );
        let data = vec![vec![Some(1.0), Some(f64::NAN)], vec![Some(1.0), Some(2.0)]];
        assert_eq!(
            krippendorff_alpha(&data, Metric::Nominal),
            Err(AgreementError::NotFinite { coder: 0, unit: 1 })
        );
    }
}
