//! Allelic 2x2 tests for case/control counts: the sample odds ratio, Fisher's exact two-sided
//! p-value (the sum of the probabilities of all tables with the same margins that are no more
//! likely than the observed one, as `scipy.stats.fisher_exact`), and the Pearson chi-square
//! p-value with one degree of freedom, without continuity correction (as
//! `scipy.stats.chi2_contingency(..., correction=False)` and `plink --assoc`).
//!
//! The table is `[[alt_cases, ref_cases], [alt_controls, ref_controls]]` in allele counts.

// Cody's coefficients and the reference values are kept as published.
#![allow(clippy::excessive_precision)]

/// The sample odds ratio `a*d / (b*c)`: infinite when only `b*c` is 0, NaN when both are.
pub fn odds_ratio(a: u64, b: u64, c: u64, d: u64) -> f64 {
    (a as f64 * d as f64) / (b as f64 * c as f64)
}

/// `ln(k!)`.
fn log_factorial(k: u64) -> f64 {
    let x = k as f64 + 1.0;
    if x < 20.0 {
        return ln_gamma(x);
    }
    // Stirling's series; the first omitted term is below 1e-15 for x >= 20.
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    (x - 0.5) * x.ln() - x
        + 0.5 * (2.0 * std::f64::consts::PI).ln()
        + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))
}

/// Fisher's exact two-sided p-value of `[[a, b], [c, d]]`.
///
/// The tables with these margins follow a hypergeometric distribution, unimodal in the
/// top-left cell: the sum walks out from the mode in both directions, skipping the tables
/// more likely than the observed one, and stops where the terms no longer change it. The cost
/// is the spread of the distribution, not the table size.
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (row1, col1, n) = (a + b, a + c, a + b + c + d);
    if n == 0 {
        return 1.0;
    }
    let row2 = n - row1;
    let col2 = n - col1;
    let fixed =
        log_factorial(row1) + log_factorial(row2) + log_factorial(col1) + log_factorial(col2)
            - log_factorial(n);
    // Log-probability of the table whose top-left cell is x.
    let log_p = |x: u64| {
        fixed
            - log_factorial(x)
            - log_factorial(row1 - x)
            - log_factorial(col1 - x)
            - log_factorial(row2 + x - col1)
    };
    let lo = col1.saturating_sub(row2);
    let hi = row1.min(col1);
    let mode = (((row1 + 1) as f64 * (col1 + 1) as f64) / (n + 2) as f64).floor() as u64;
    let mode = mode.clamp(lo, hi);
    // Probabilities relative to the mode's, stepped by the ratio of neighbouring tables (no
    // logarithms in the loop); the observed table's with scipy's relative tolerance.
    let log_mode = log_p(mode);
    let threshold = (log_p(a) - log_mode).exp() * (1.0 + 1e-7);
    let (r1, c1, r2) = (row1 as f64, col1 as f64, row2 as f64);
    let mut total = 0.0;
    let mut add = |term: f64| -> bool {
        if term <= threshold {
            total += term;
            return term >= total * 1e-17;
        }
        true
    };
    let mut term = 1.0;
    let mut x = mode;
    while add(term) && x < hi {
        let xf = x as f64;
        term *= (r1 - xf) * (c1 - xf) / ((xf + 1.0) * (r2 - c1 + xf + 1.0));
        x += 1;
    }
    let mut term = 1.0;
    let mut x = mode;
    while x > lo {
        let xf = x as f64;
        term *= xf * (r2 - c1 + xf) / ((r1 - xf + 1.0) * (c1 - xf + 1.0));
        x -= 1;
        if !add(term) {
            break;
        }
    }
    total *= log_mode.exp();
    total.min(1.0)
}

/// The Pearson chi-square p-value (1 degree of freedom, no continuity correction) of
/// `[[a, b], [c, d]]`; NaN where a margin is 0 (as scipy).
pub fn chi_square(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (a, b, c, d) = (a as f64, b as f64, c as f64, d as f64);
    let n = a + b + c + d;
    let denominator = (a + b) * (c + d) * (a + c) * (b + d);
    if denominator == 0.0 {
        return f64::NAN;
    }
    let statistic = n * (a * d - b * c).powi(2) / denominator;
    erfc((statistic / 2.0).sqrt())
}

/// The complementary error function (W. J. Cody's rational approximations, relative error
/// below 1e-15 over the whole range).
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        return 1.0 - erf_small(x);
    }
    if x < 4.0 {
        const P: [f64; 9] = [
            5.641_884_969_886_701e-1,
            8.883_149_794_388_376,
            6.611_919_063_714_163e1,
            2.986_351_381_974_001e2,
            8.819_522_212_417_69e2,
            1.712_047_612_634_070_7e3,
            2.051_078_377_826_071_6e3,
            1.230_339_354_797_997_2e3,
            2.153_115_354_744_038_3e-8,
        ];
        const Q: [f64; 8] = [
            1.574_492_611_070_983_5e1,
            1.176_939_508_913_125e2,
            5.371_811_018_620_099e2,
            1.621_389_574_566_690_3e3,
            3.290_799_235_733_459_7e3,
            4.362_619_090_143_247e3,
            3.439_367_674_143_721_6e3,
            1.230_339_354_803_749_5e3,
        ];
        let mut num = P[8] * x;
        let mut den = x;
        for i in 0..7 {
            num = (num + P[i]) * x;
            den = (den + Q[i]) * x;
        }
        let r = (num + P[7]) / (den + Q[7]);
        return (-x * x).exp() * r;
    }
    const P: [f64; 6] = [
        3.053_266_349_612_323_4e-1,
        3.603_448_999_498_044_5e-1,
        1.257_817_261_112_292_6e-1,
        1.608_378_514_874_227_5e-2,
        6.587_491_615_298_378e-4,
        1.631_538_713_730_709_6e-2,
    ];
    const Q: [f64; 5] = [
        2.568_520_192_289_822,
        1.872_952_849_923_460_4,
        5.279_051_029_514_284e-1,
        6.051_834_131_244_132e-2,
        2.335_204_976_268_691_8e-3,
    ];
    let z = 1.0 / (x * x);
    let mut num = P[5] * z;
    let mut den = z;
    for i in 0..4 {
        num = (num + P[i]) * z;
        den = (den + Q[i]) * z;
    }
    let r = z * (num + P[4]) / (den + Q[4]);
    let r = (1.0 / std::f64::consts::PI.sqrt() - r) / x;
    (-x * x).exp() * r
}

fn erf_small(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        1.138_641_541_510_501_6e2,
        3.774_852_376_853_020_2e2,
        3.209_377_589_138_469_4e3,
        1.857_777_061_846_031_5e-1,
    ];
    const B: [f64; 4] = [
        2.360_129_095_234_412_2e1,
        2.440_246_379_344_441_7e2,
        1.282_616_526_077_372_3e3,
        2.844_236_833_439_170_6e3,
    ];
    let z = x * x;
    let mut num = A[4] * z;
    let mut den = z;
    for i in 0..3 {
        num = (num + A[i]) * z;
        den = (den + B[i]) * z;
    }
    x * (num + A[3]) / (den + B[3])
}

/// The two-sided p-value of Student's t statistic `t` with `df` degrees of freedom:
/// `I_{df/(df+t^2)}(df/2, 1/2)`, the regularized incomplete beta function.
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if !t.is_finite() || df <= 0.0 {
        return if t.is_infinite() { 0.0 } else { f64::NAN };
    }
    regularized_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, n = 9; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b) (continued fraction, modified Lentz).
pub fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - regularized_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        for numerator in [
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + numerator / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    front * h / a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_t_matches_tables() {
        // scipy.stats.t.sf(|t|, df) * 2.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-10 * b.max(1e-300);
        assert!(close(
            student_t_two_sided(2.0, 10.0),
            0.073_388_034_770_740_7
        ));
        assert!(close(student_t_two_sided(-1.0, 1.0), 0.5));
        assert!(close(
            student_t_two_sided(5.0, 9_996.0),
            5.830_365_811_765_534e-7
        ));
        assert!(close(student_t_two_sided(0.0, 30.0), 1.0));
    }

    #[test]
    fn known_values() {
        // erfc(1) and erfc(0.1), erfc(5) from tables.
        assert!((erfc(1.0) - 0.157_299_207_050_285_13).abs() < 1e-15);
        assert!((erfc(0.1) - 0.887_537_083_981_715_1).abs() < 1e-15);
        assert!((erfc(5.0) / 1.537_459_794_428_034_8e-12 - 1.0).abs() < 1e-12);
        // scipy.stats.fisher_exact([[8, 2], [1, 5]]) = (20.0, 0.034965034965034975)
        assert!((fisher_exact(8, 2, 1, 5) - 0.034_965_034_965_034_975).abs() < 1e-12);
        // Biobank-sized tables (scipy.stats.fisher_exact).
        let rel = |got: f64, want: f64| (got - want).abs() / want;
        assert!(
            rel(
                fisher_exact(1000, 99_000, 1500, 98_500),
                7.050_879_477_978_59e-24
            ) < 1e-8
        );
        assert!(
            rel(
                fisher_exact(3, 40_000, 0, 160_000),
                0.008_000_960_024_143_416
            ) < 1e-8
        );
        assert!(
            rel(
                fisher_exact(20_000, 20_000, 19_800, 20_200),
                0.159_379_498_878_502_45
            ) < 1e-8
        );
        assert_eq!(odds_ratio(8, 2, 1, 5), 20.0);
        // scipy.stats.chi2_contingency([[8, 2], [1, 5]], correction=False) p = 0.0134254...
        assert!((chi_square(8, 2, 1, 5) - 0.013_425_424_881_491_248).abs() < 1e-12);
        assert!(chi_square(0, 0, 3, 4).is_nan());
    }

    #[test]
    fn erfc_matches_python_math_erfc() {
        for (x, want) in [
            (0.7, 0.32219880616258156),
            (2.0, 0.004677734981047265),
            (10.0, 2.088487583762545e-45),
            (-1.0, 1.8427007929497148),
        ] {
            let got = erfc(x);
            assert!(
                (got / want - 1.0).abs() < 1e-13,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }
}
