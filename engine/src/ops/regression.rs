//! Per-variant regression of a trait on additive allele dosage with covariates: ordinary least
//! squares (linear) and maximum likelihood by IRLS (logistic), as `plink2 --glm` fits them.
//!
//! The linear fit uses the Frisch-Waugh-Lovell theorem: with `Q` an orthonormal basis of the
//! covariates (intercept included) over the analysed samples, and `y~ = y - Q Q'y`,
//! `beta = g'y~ / (g'g - |Q'g|^2)`. `g` is sparse (carriers only), so a variant costs
//! O(carriers x covariates) and never touches the non-carriers.

use crate::ops::association_stats::student_t_two_sided;

/// Error codes, spelt as plink2's `ERRCODE` column spells them.
pub mod code {
    /// No analysed sample carries the ALT.
    pub const CONST_OMITTED_ALLELE: &str = "CONST_OMITTED_ALLELE";
    /// Every analysed sample has the same dosage.
    pub const CONST_ALLELE: &str = "CONST_ALLELE";
    /// Every ALT copy is in a case, or every one in a control (without the Firth fallback).
    pub const SEPARATION: &str = "SEPARATION";
    /// Newton's method diverged (without the Firth fallback).
    pub const LOGISTIC_CONVERGE_FAIL: &str = "LOGISTIC_CONVERGE_FAIL";
    /// Firth's fit failed.
    pub const FIRTH_CONVERGE_FAIL: &str = "FIRTH_CONVERGE_FAIL";
    /// The iteration limit was reached; the values are the last iterate's.
    pub const UNFINISHED: &str = "UNFINISHED";
    /// The dosage is a linear combination of the covariates.
    pub const VIF_INFINITE: &str = "VIF_INFINITE";
    /// No more samples than parameters.
    pub const SAMPLE_CT_LTE_COVAR_CT: &str = "SAMPLE_CT<=COVAR_CT";
}

/// One variant's fit: samples used, effect, its standard error and two-sided p.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Samples in the fit.
    pub n: usize,
    /// Effect per ALT copy (log odds for logistic).
    pub beta: f64,
    /// Standard error of `beta`.
    pub se: f64,
    /// Two-sided p (t for linear, Wald normal for logistic).
    pub p: f64,
    /// Whether Firth's penalized likelihood gave the fit (logistic only).
    pub firth: bool,
    /// Why there is no fit, or why it is not to be trusted (plink2's `ERRCODE`, see
    /// [`code`]); `None` for a good fit.
    pub error: Option<&'static str>,
}

impl Fit {
    /// No fit of `n` samples, for the reason `error`.
    pub fn failed(n: usize, error: &'static str) -> Self {
        Self {
            n,
            beta: f64::NAN,
            se: f64::NAN,
            p: f64::NAN,
            firth: false,
            error: Some(error),
        }
    }
}

/// Orthonormal columns spanning `columns` (each of length n), by modified Gram-Schmidt;
/// columns that are (nearly) linear combinations of earlier ones are dropped.
pub fn orthonormal_basis(columns: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for column in columns {
        let mut v = column.clone();
        let norm0 = dot(&v, &v).sqrt();
        for q in &basis {
            let r = dot(q, &v);
            v.iter_mut().zip(q).for_each(|(x, qi)| *x -= r * qi);
        }
        let norm = dot(&v, &v).sqrt();
        if norm > 1e-9 * norm0.max(1.0) {
            v.iter_mut().for_each(|x| *x /= norm);
            basis.push(v);
        }
    }
    basis
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A linear model's covariate part over a fixed set of samples, ready for many variants.
pub struct LinearModel {
    basis: Vec<Vec<f64>>,
    residual: Vec<f64>,
    residual_ss: f64,
}

impl LinearModel {
    /// The model of `y` on `covariates` (an intercept is added); all of length n.
    pub fn new(y: &[f64], covariates: &[Vec<f64>]) -> Self {
        let mut columns = vec![vec![1.0; y.len()]];
        columns.extend(covariates.iter().cloned());
        let basis = orthonormal_basis(&columns);
        let mut residual = y.to_vec();
        for q in &basis {
            let r = dot(q, y);
            residual.iter_mut().zip(q).for_each(|(x, qi)| *x -= r * qi);
        }
        let residual_ss = dot(&residual, &residual);
        Self {
            basis,
            residual,
            residual_ss,
        }
    }

    /// The fit for a variant whose non-zero dosages are `carriers` (row, dosage); every other
    /// sample of the model has dosage 0.
    pub fn fit_sparse(&self, carriers: &[(usize, f64)]) -> Fit {
        let n = self.residual.len();
        let k = self.basis.len();
        let mut qg = vec![0.0; k];
        let (mut gg, mut gy) = (0.0, 0.0);
        for &(row, d) in carriers {
            gg += d * d;
            gy += d * self.residual[row];
            for (acc, q) in qg.iter_mut().zip(&self.basis) {
                *acc += d * q[row];
            }
        }
        let sxx = gg - dot(&qg, &qg);
        let df = n as f64 - k as f64 - 1.0;
        if carriers.is_empty() {
            return Fit::failed(n, code::CONST_OMITTED_ALLELE);
        }
        if df < 1.0 {
            return Fit::failed(n, code::SAMPLE_CT_LTE_COVAR_CT);
        }
        if sxx <= 1e-9 * gg.max(1.0) {
            let first = carriers[0].1;
            let constant = carriers.len() == n && carriers.iter().all(|c| c.1 == first);
            return Fit::failed(
                n,
                if constant {
                    code::CONST_ALLELE
                } else {
                    code::VIF_INFINITE
                },
            );
        }
        let beta = gy / sxx;
        let rss = (self.residual_ss - beta * gy).max(0.0);
        let se = (rss / df / sxx).sqrt();
        let t = beta / se;
        Fit {
            n,
            beta,
            se,
            p: student_t_two_sided(t, df),
            firth: false,
            error: None,
        }
    }
}

/// The linear fit of `y` on `dosage` and `covariates` (all of length n), dense.
pub fn linear(y: &[f64], dosage: &[f64], covariates: &[Vec<f64>]) -> Fit {
    let carriers: Vec<(usize, f64)> = dosage
        .iter()
        .enumerate()
        .filter(|(_, d)| **d != 0.0)
        .map(|(i, d)| (i, *d))
        .collect();
    LinearModel::new(y, covariates).fit_sparse(&carriers)
}

/// The Cholesky factor `l` (lower, row-major) of the symmetric positive definite `a`
/// (m x m, row-major); `None` when `a` is singular.
fn cholesky(a: &[f64], m: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; m * m];
    for i in 0..m {
        for j in 0..=i {
            let mut s = a[i * m + j];
            for p in 0..j {
                s -= l[i * m + p] * l[j * m + p];
            }
            if i == j {
                if s <= 1e-12 * a[i * m + i].abs().max(1e-300) {
                    return None;
                }
                l[i * m + i] = s.sqrt();
            } else {
                l[i * m + j] = s / l[j * m + j];
            }
        }
    }
    Some(l)
}

/// `x` with `l l' x = rhs`, `l` from [`cholesky`].
fn cholesky_apply(l: &[f64], rhs: &[f64], m: usize) -> Vec<f64> {
    let mut y = rhs.to_vec();
    for i in 0..m {
        for p in 0..i {
            y[i] -= l[i * m + p] * y[p];
        }
        y[i] /= l[i * m + i];
    }
    for i in (0..m).rev() {
        for p in i + 1..m {
            y[i] -= l[p * m + i] * y[p];
        }
        y[i] /= l[i * m + i];
    }
    y
}

/// Solves the symmetric positive definite system `a x = b` (a is m x m, row-major) by
/// Cholesky; returns x and the diagonal of `a`'s inverse, or `None` when `a` is singular.
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64], m: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let l = cholesky(a, m)?;
    let x = cholesky_apply(&l, b, m);
    let diag = (0..m)
        .map(|i| {
            let mut e = vec![0.0; m];
            e[i] = 1.0;
            cholesky_apply(&l, &e, m)[i]
        })
        .collect();
    Some((x, diag))
}

/// The inverse of the symmetric positive definite `a` (m x m, row-major) by Cholesky, and
/// the logarithm of `a`'s determinant (twice the sum of the log diagonal of its factor);
/// `None` when `a` is singular.
pub(crate) fn symmetric_inverse(a: &[f64], m: usize) -> Option<(Vec<f64>, f64)> {
    let l = cholesky(a, m)?;
    let mut inverse = vec![0.0; m * m];
    for i in 0..m {
        let mut e = vec![0.0; m];
        e[i] = 1.0;
        for (r, v) in cholesky_apply(&l, &e, m).into_iter().enumerate() {
            inverse[r * m + i] = v;
        }
    }
    let log_det = (0..m).map(|i| 2.0 * l[i * m + i].ln()).sum();
    Some((inverse, log_det))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook OLS by the normal equations, independent of the FWL path.
    fn normal_equations(y: &[f64], x: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let m = x.len();
        let n = y.len();
        let mut a = vec![0.0; m * m];
        let mut b = vec![0.0; m];
        for i in 0..m {
            b[i] = dot(&x[i], y);
            for j in 0..m {
                a[i * m + j] = dot(&x[i], &x[j]);
            }
        }
        let (beta, diag) = cholesky_solve(&a, &b, m).unwrap();
        let rss: f64 = (0..n)
            .map(|r| {
                let fit: f64 = (0..m).map(|j| beta[j] * x[j][r]).sum();
                (y[r] - fit).powi(2)
            })
            .sum();
        let sigma2 = rss / (n - m) as f64;
        (beta, diag.iter().map(|d| (d * sigma2).sqrt()).collect())
    }

    #[test]
    fn linear_fit_equals_normal_equations() {
        let n = 200;
        let age: Vec<f64> = (0..n).map(|i| 40.0 + (i * 7 % 30) as f64).collect();
        let g: Vec<f64> = (0..n).map(|i| [0.0, 1.0, 0.0, 2.0, 0.0][i % 5]).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| 0.3 * g[i] + 0.02 * age[i] + ((i * 31 % 17) as f64 - 8.0) / 10.0)
            .collect();
        let fit = linear(&y, &g, std::slice::from_ref(&age));
        let (beta, se) = normal_equations(&y, &[vec![1.0; n], age.clone(), g.clone()]);
        assert!((fit.beta - beta[2]).abs() < 1e-9, "{fit:?} vs {beta:?}");
        assert!((fit.se - se[2]).abs() < 1e-9);
        assert_eq!(fit.n, n);
        assert!(fit.p > 0.0 && fit.p < 1e-3);
    }

    #[test]
    fn logistic_fit_recovers_a_known_effect() {
        // y = 1 for dosage-dependent thirds: log odds rise with dosage.
        let n = 600;
        let g: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from((i / 3) % 10 < 2 + 3 * (i % 3))))
            .collect();
        let carriers: Vec<(usize, f64)> = g
            .iter()
            .enumerate()
            .filter(|(_, d)| **d > 0.0)
            .map(|(i, d)| (i, *d))
            .collect();
        let model = crate::ops::logistic::LogisticModel::new(&y, &[], true);
        let fit = model.fit_sparse(&carriers);
        // Closed form for a saturated 3-level model is not linear; check sign and scale.
        assert!(fit.beta > 0.5 && fit.beta < 2.0, "{fit:?}");
        assert!(fit.p < 1e-6 && !fit.firth && fit.error.is_none());
        let everyone: Vec<(usize, f64)> = (0..n).map(|i| (i, 1.0)).collect();
        assert_eq!(model.fit_sparse(&everyone).error, Some(code::CONST_ALLELE));
    }
}
