//! Cohen's kappa for two coders (Cohen, 1960) and weighted kappa for an ordinal scale
//! (Cohen, 1968), from paired ratings or from a contingency table.

use super::{Agreement, AgreementError, Statistic, Undefined};

/// How a disagreement between two categories counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// Every disagreement counts fully (Cohen's kappa).
    Unweighted,
    /// A disagreement counts by how far apart the categories are: `|i - j| / (k - 1)`.
    Linear,
    /// By the square of how far apart they are: `(i - j)^2 / (k - 1)^2`.
    Quadratic,
}

impl Weighting {
    /// The weighting's name, e.g. `linear`.
    pub fn as_str(self) -> &'static str {
        match self {
            Weighting::Unweighted => "unweighted",
            Weighting::Linear => "linear",
            Weighting::Quadratic => "quadratic",
        }
    }

    /// How much a disagreement between categories `i` and `j` of `k` counts, 0 to 1.
    fn disagreement(self, i: usize, j: usize, k: usize) -> f64 {
        let distance = i.abs_diff(j) as f64;
        let widest = k.saturating_sub(1).max(1) as f64;
        match self {
            Weighting::Unweighted => f64::from(u8::from(i != j)),
            Weighting::Linear => distance / widest,
            Weighting::Quadratic => (distance / widest).powi(2),
        }
    }
}

/// Cohen's kappa between two coders' ratings on `scale` (its categories in order, lowest
/// first: the order matters for the weighted kappas). `first[i]` and `second[i]` rate unit
/// `i`; a pair with a gap (`None`) on either side is left out and counted in
/// [`Agreement::dropped`].
///
/// Undefined when no pair is complete ([`Undefined::NothingToCompare`]) or both coders put
/// every unit in one and the same category ([`Undefined::NoVariation`]).
///
/// # Errors
/// [`AgreementError::UnequalLengths`] if the lists differ in length,
/// [`AgreementError::ScaleTooSmall`] for a scale of fewer than two categories,
/// [`AgreementError::NotOnScale`] for a rating that is not one of the scale's categories.
pub fn cohen_kappa<T: PartialEq>(
    scale: &[T],
    first: &[Option<T>],
    second: &[Option<T>],
    weighting: Weighting,
) -> Result<Agreement, AgreementError> {
    if first.len() != second.len() {
        return Err(AgreementError::UnequalLengths {
            coder: 1,
            found: second.len(),
            expected: first.len(),
        });
    }
    if scale.len() < 2 {
        return Err(AgreementError::ScaleTooSmall {
            categories: scale.len(),
        });
    }
    let mut table = vec![vec![0u64; scale.len()]; scale.len()];
    let mut dropped = 0;
    for (unit, pair) in first.iter().zip(second).enumerate() {
        let (Some(a), Some(b)) = pair else {
            dropped += 1;
            continue;
        };
        let position = |coder: usize, rating: &T| {
            scale
                .iter()
                .position(|category| category == rating)
                .ok_or(AgreementError::NotOnScale { coder, unit })
        };
        table[position(0, a)?][position(1, b)?] += 1;
    }
    Ok(kappa_of_table(
        &table,
        weighting,
        Statistic::CohenKappa(weighting),
        dropped,
    ))
}

/// Cohen's kappa from a contingency table of two coders: `table[i][j]` is how many units the
/// first coder put in category `i` and the second in category `j`, categories in scale order.
///
/// # Errors
/// [`AgreementError::TableNotSquare`], or [`AgreementError::ScaleTooSmall`] for a table of
/// fewer than two categories.
pub fn cohen_kappa_from_table(
    table: &[Vec<u64>],
    weighting: Weighting,
) -> Result<Agreement, AgreementError> {
    if table.len() < 2 {
        return Err(AgreementError::ScaleTooSmall {
            categories: table.len(),
        });
    }
    if let Some((row, columns)) = table
        .iter()
        .map(Vec::len)
        .enumerate()
        .find(|&(_, columns)| columns != table.len())
    {
        return Err(AgreementError::TableNotSquare {
            rows: table.len(),
            row,
            columns,
        });
    }
    Ok(kappa_of_table(
        table,
        weighting,
        Statistic::CohenKappa(weighting),
        0,
    ))
}

/// `1 - observed disagreement / expected disagreement` over a square table (checked by the
/// callers), each cell's disagreement weighted by `weighting`. Also used by the time-sliced
/// kappa, whose table can have a single category.
pub(super) fn kappa_of_table(
    table: &[Vec<u64>],
    weighting: Weighting,
    statistic: Statistic,
    dropped: usize,
) -> Agreement {
    let k = table.len();
    let total: u64 = table.iter().flatten().sum();
    if total == 0 {
        return Agreement::new(
            statistic,
            Err(Undefined::NothingToCompare),
            0,
            dropped,
            None,
        );
    }
    let n = total as f64;
    let rows: Vec<f64> = table
        .iter()
        .map(|row| row.iter().sum::<u64>() as f64 / n)
        .collect();
    let columns: Vec<f64> = (0..k)
        .map(|j| table.iter().map(|row| row[j]).sum::<u64>() as f64 / n)
        .collect();
    let mut observed = 0.0;
    let mut expected = 0.0;
    for i in 0..k {
        for j in 0..k {
            let weight = weighting.disagreement(i, j, k);
            observed += weight * table[i][j] as f64 / n;
            expected += weight * rows[i] * columns[j];
        }
    }
    let agreed: u64 = (0..k).map(|i| table[i][i]).sum();
    let percent = 100.0 * agreed as f64 / n;
    let value = if expected == 0.0 {
        Err(Undefined::NoVariation)
    } else {
        Ok(1.0 - observed / expected)
    };
    Agreement::new(
        statistic,
        value,
        usize::try_from(total).unwrap_or(usize::MAX),
        dropped,
        Some(percent),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{KappaBand, Reading};

    fn rounded(agreement: &Agreement, places: i32) -> f64 {
        let scale = 10f64.powi(places);
        (agreement.value.expect("a value") * scale).round() / scale
    }

    /// Two radiologists classifying 85 xeromammograms as normal, benign disease, suspected
    /// cancer or cancer: Boyd et al. (1982), J. Natl Cancer Inst. 68: 357-363, as tabulated in
    /// Altman (1991), Practical Statistics for Medical Research, pp. 403-405, and in the Stata
    /// Base Reference Manual, `kappa`, example 1 (`kap rada radb`): agreement 63.53%, expected
    /// 30.82%, kappa 0.4728; with `wgt(w)` (linear weights) 86.67% and 69.11%, kappa 0.5684;
    /// with `wgt(w2)` (quadratic) 94.77% and 84.09%, kappa 0.671. Checked here to 3 decimals.
    fn boyd_radiologists() -> Vec<Vec<u64>> {
        vec![
            vec![21, 12, 0, 0],
            vec![4, 17, 1, 0],
            vec![3, 9, 15, 2],
            vec![0, 0, 0, 1],
        ]
    }

    #[test]
    fn the_published_radiologist_table_gives_statas_kappas() {
        let table = boyd_radiologists();
        let plain = cohen_kappa_from_table(&table, Weighting::Unweighted).unwrap();
        assert_eq!(rounded(&plain, 3), 0.473);
        assert_eq!(plain.units, 85);
        assert_eq!(
            (plain.percent_agreement.unwrap() * 100.0).round() / 100.0,
            63.53
        );
        assert_eq!(plain.reading, Reading::Kappa(KappaBand::Moderate));
        let linear = cohen_kappa_from_table(&table, Weighting::Linear).unwrap();
        assert_eq!(rounded(&linear, 3), 0.568);
        assert_eq!(
            linear.percent_agreement, plain.percent_agreement,
            "the percentage counts exact agreements, whatever the weights"
        );
        let quadratic = cohen_kappa_from_table(&table, Weighting::Quadratic).unwrap();
        assert_eq!(rounded(&quadratic, 3), 0.671);
        assert_eq!(quadratic.reading, Reading::Kappa(KappaBand::Substantial));
    }

    #[test]
    fn the_published_two_by_two_example_gives_0_4() {
        // Wikipedia, "Cohen's kappa", simple example: 50 grant proposals read by two readers;
        // both yes 20, A yes B no 5, A no B yes 10, both no 15: p_o 0.7, p_e 0.5, kappa 0.4.
        let table = vec![vec![20, 5], vec![10, 15]];
        let result = cohen_kappa_from_table(&table, Weighting::Unweighted).unwrap();
        assert_eq!(rounded(&result, 3), 0.4);
        assert_eq!(result.reading, Reading::Kappa(KappaBand::Fair));
        // With two categories every weighting is the same kappa.
        for weighting in [Weighting::Linear, Weighting::Quadratic] {
            let weighted = cohen_kappa_from_table(&table, weighting).unwrap();
            assert_eq!(rounded(&weighted, 6), 0.4);
        }
    }

    #[test]
    fn ratings_give_the_same_kappa_as_their_table_and_gaps_are_counted() {
        // The radiologist table unrolled into 85 pairs, plus three pairs with a gap.
        let mut first = Vec::new();
        let mut second = Vec::new();
        for (i, row) in boyd_radiologists().iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                for _ in 0..count {
                    first.push(Some(i as i64));
                    second.push(Some(j as i64));
                }
            }
        }
        first.extend([None, Some(1), None]);
        second.extend([Some(2), None, None]);
        let scale = [0, 1, 2, 3];
        let result = cohen_kappa(&scale, &first, &second, Weighting::Linear).unwrap();
        assert_eq!(rounded(&result, 3), 0.568);
        assert_eq!((result.units, result.dropped), (85, 3));
        assert!(
            result.to_string().starts_with(
                "Cohen's weighted kappa (linear weights) = 0.568 over 85 units (3 left out for missing values), 63.5% agreement: moderate agreement"
            ),
            "{result}"
        );
    }

    #[test]
    fn perfect_agreement_is_1_and_one_category_throughout_is_undefined() {
        let ratings = [Some("low"), Some("high"), Some("mid"), Some("high")];
        let scale = ["low", "mid", "high"];
        for weighting in [
            Weighting::Unweighted,
            Weighting::Linear,
            Weighting::Quadratic,
        ] {
            let result = cohen_kappa(&scale, &ratings, &ratings, weighting).unwrap();
            assert_eq!(result.value, Some(1.0));
            assert_eq!(result.percent_agreement, Some(100.0));
            assert_eq!(result.reading, Reading::Kappa(KappaBand::AlmostPerfect));
        }
        let same = [Some("mid"); 4];
        let result = cohen_kappa(&scale, &same, &same, Weighting::Unweighted).unwrap();
        assert_eq!(result.value, None);
        assert_eq!(result.reading, Reading::Undefined(Undefined::NoVariation));
        assert_eq!(result.percent_agreement, Some(100.0));
        let gaps: [Option<&str>; 2] = [None, None];
        let result = cohen_kappa(&scale, &gaps, &gaps, Weighting::Unweighted).unwrap();
        assert_eq!(
            result.reading,
            Reading::Undefined(Undefined::NothingToCompare)
        );
        assert_eq!(result.dropped, 2);
    }

    #[test]
    fn bad_input_is_refused_with_where_it_is() {
        let scale = [0, 1, 2];
        assert_eq!(
            cohen_kappa(&scale, &[Some(0)], &[Some(0), Some(1)], Weighting::Linear),
            Err(AgreementError::UnequalLengths {
                coder: 1,
                found: 2,
                expected: 1
            })
        );
        assert_eq!(
            cohen_kappa(
                &scale,
                &[Some(0), Some(1)],
                &[Some(0), Some(7)],
                Weighting::Linear
            ),
            Err(AgreementError::NotOnScale { coder: 1, unit: 1 })
        );
        assert_eq!(
            cohen_kappa(&[0], &[Some(0)], &[Some(0)], Weighting::Linear),
            Err(AgreementError::ScaleTooSmall { categories: 1 })
        );
        assert_eq!(
            cohen_kappa_from_table(&[vec![1, 2], vec![3]], Weighting::Unweighted),
            Err(AgreementError::TableNotSquare {
                rows: 2,
                row: 1,
                columns: 1
            })
        );
    }

    #[test]
    fn kappa_bands_follow_landis_and_koch() {
        let bands: Vec<_> = [-0.1, 0.0, 0.2, 0.21, 0.4, 0.5, 0.61, 0.8, 0.81, 1.0]
            .map(KappaBand::of)
            .to_vec();
        use KappaBand::*;
        assert_eq!(
            bands,
            [
                Poor,
                Slight,
                Slight,
                Fair,
                Fair,
                Moderate,
                Substantial,
                Substantial,
                AlmostPerfect,
                AlmostPerfect
            ]
        );
    }
}
