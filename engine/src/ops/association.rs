//! Per-variant association of a phenotype column with additive ALT dosage, with covariates
//! (`cohortdb assoc`): linear for a quantitative trait, logistic for a binary one.
//!
//! - Samples: the cohort's samples whose trait and covariates are all non-null.
//! - Dosage: copies of the row's ALT (het 1, hom-alt 2, haploid ALT 1). Each ALT row is its own
//!   model (as after `bcftools norm -m-`). Samples with no call at the site, or a partly
//!   missing call (`./1`), leave that variant's fit (plink2's per-variant `OBS_CT`).
//! - Covariates: numeric columns as they are, booleans as 0/1, strings as indicator columns
//!   for every level but the first in sorted order; collinear columns are dropped.
//! - Output: `chrom pos ref alt n beta se p or firth errcode`; beta per ALT copy (log odds
//!   for logistic, with the odds ratio `or`), p two-sided (Student's t for linear, Wald normal
//!   for logistic). Where the plain logistic fit cannot exist (separation) or does not
//!   converge, Firth's fit is reported (`firth` true), as plink2's default `firth-fallback`
//!   does; `logistic-no-firth` reports NULLs there instead. `errcode` says why a row has no
//!   fit, in plink2's words ([`crate::ops::regression::code`]).

use std::sync::Arc;

use cohortdb_store::progress::Unit;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, UInt32Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::{Expr, col, ident};
use roaring::RoaringBitmap;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::ops::logistic::LogisticModel;
use crate::ops::regression::{Fit, LinearModel, linear};
use crate::ops::site_qc::SitePass;
use crate::region::Region;
use crate::rows::span_pruning::region_filter;
use crate::rows::stored_bitmaps::{cast_column, stored_bitmap};

/// The regression model of `assoc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Ordinary least squares.
    Linear,
    /// Logistic regression of a 0/1 or boolean trait, falling back to Firth's where the plain
    /// fit cannot exist or does not converge (plink2's default).
    Logistic,
    /// Logistic regression without the Firth fallback (plink2's `no-firth`).
    LogisticNoFirth,
}

impl Model {
    /// `linear` or `logistic`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Logistic => "logistic",
            Self::LogisticNoFirth => "logistic-no-firth",
        }
    }

    /// `linear` or `logistic`; blank for none (the trait chooses).
    pub fn parse(text: &str) -> Result<Option<Self>> {
        match text.trim() {
            "" => Ok(None),
            "linear" => Ok(Some(Self::Linear)),
            "logistic" => Ok(Some(Self::Logistic)),
            "logistic-no-firth" => Ok(Some(Self::LogisticNoFirth)),
            other => Err(crate::error::EngineError::InvalidArgument(format!(
                "association: model {other:?} is not linear, logistic or logistic-no-firth"
            ))),
        }
    }
}

/// The columns of [`CohortEngine::association`].
pub fn association_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("chrom", DataType::Utf8, false),
        Field::new("pos", DataType::Int64, false),
        Field::new("id", DataType::Utf8, true),
        Field::new("ref", DataType::Utf8, false),
        Field::new("alt", DataType::Utf8, false),
        Field::new("n", DataType::Int64, false),
        Field::new("beta", DataType::Float64, true),
        Field::new("se", DataType::Float64, true),
        Field::new("p", DataType::Float64, true),
        Field::new("or", DataType::Float64, true),
        Field::new("firth", DataType::Boolean, false),
        Field::new("errcode", DataType::Utf8, true),
    ]))
}

/// The analysed samples with their trait and covariate values.
struct Design {
    /// Sample indices, ascending.
    samples: Vec<u32>,
    /// Row of each sample index (u32::MAX when not analysed).
    row_of: Vec<u32>,
    y: Vec<f64>,
    covariates: Vec<Vec<f64>>,
    /// Every analysed trait value is 0 or 1.
    zero_one: bool,
    /// The trait column is boolean or integer (not float).
    discrete: bool,
}

fn invalid(text: String) -> EngineError {
    EngineError::InvalidArgument(text)
}

/// A phenotype column as numbers (one column) or string-level indicators (several).
fn numeric_columns(name: &str, array: &ArrayRef) -> Result<Vec<Vec<Option<f64>>>> {
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = datafusion::arrow::compute::cast(array, &DataType::Utf8)
                .map_err(DataFusionError::from)?;
            let text = text.as_string::<i32>();
            let mut levels: Vec<&str> = text.iter().flatten().collect();
            levels.sort_unstable();
            levels.dedup();
            Ok(levels
                .iter()
                .skip(1)
                .map(|level| {
                    text.iter()
                        .map(|v| v.map(|v| f64::from(u8::from(v == *level))))
                        .collect()
                })
                .collect())
        }
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => Err(invalid(format!(
            "column {name:?} is a date; regress on a number derived from it instead"
        ))),
        _ => {
            let numbers = datafusion::arrow::compute::cast(array, &DataType::Float64)
                .map_err(|e| invalid(format!("column {name:?} is not numeric: {e}")))?;
            Ok(vec![numbers.as_primitive::<Float64Type>().iter().collect()])
        }
    }
}

impl CohortEngine {
    async fn design(
        &self,
        table: &str,
        trait_column: &str,
        covariates: &[String],
        cohort: &RoaringBitmap,
    ) -> Result<Design> {
        let ctx = self.full_session()?;
        let mut select: Vec<Expr> = vec![col("sample_idx"), ident(trait_column)];
        select.extend(covariates.iter().map(ident));
        let frame = ctx.table(table).await?.select(select)?;
        let schema = frame.schema().inner().clone();
        // One batch, so that string levels are numbered over the whole table.
        let batch = datafusion::arrow::compute::concat_batches(&schema, &frame.collect().await?)
            .map_err(DataFusionError::from)?;
        let mut samples = Vec::new();
        let mut y = Vec::new();
        let idx = datafusion::arrow::compute::cast(batch.column(0), &DataType::UInt32)
            .map_err(DataFusionError::from)?;
        let idx_all: Vec<Option<u32>> = idx.as_primitive::<UInt32Type>().iter().collect();
        let t = batch.column(1);
        let discrete = !matches!(t.data_type(), DataType::Float32 | DataType::Float64);
        let mut zero_one = true;
        let [trait_all] = <[Vec<Option<f64>>; 1]>::try_from(numeric_columns(trait_column, t)?)
            .map_err(|_| invalid(format!("trait {trait_column:?} must be numeric or boolean")))?;
        let mut flat: Vec<Vec<Option<f64>>> = Vec::new();
        for (i, name) in covariates.iter().enumerate() {
            flat.extend(numeric_columns(name, batch.column(i + 2))?);
        }
        let mut rows: Vec<usize> = (0..idx_all.len())
            .filter(|&r| {
                idx_all[r].is_some_and(|i| cohort.contains(i))
                    && trait_all[r].is_some()
                    && flat.iter().all(|c| c[r].is_some())
            })
            .collect();
        rows.sort_by_key(|&r| idx_all[r]);
        let mut covariate_values = vec![Vec::with_capacity(rows.len()); flat.len()];
        for &r in &rows {
            samples.push(idx_all[r].unwrap_or_default());
            let v = trait_all[r].unwrap_or_default();
            zero_one &= v == 0.0 || v == 1.0;
            y.push(v);
            for (out, c) in covariate_values.iter_mut().zip(&flat) {
                out.push(c[r].unwrap_or_default());
            }
        }
        let size = samples.last().map_or(0, |m| *m as usize + 1);
        let mut row_of = vec![u32::MAX; size];
        for (row, idx) in samples.iter().enumerate() {
            row_of[*idx as usize] = row as u32;
        }
        Ok(Design {
            samples,
            row_of,
            y,
            covariates: covariate_values,
            zero_one,
            discrete,
        })
    }

    /// Regresses `trait_column` of phenotype `table` on the dosage of every ALT in `regions`
    /// with `covariates`, over the `cohort` samples that have every value; `model` defaults to
    /// logistic for a boolean trait or an integer one of 0 and 1, and linear otherwise. Rows as
    /// [`association_schema`], ordered by contig, position and allele index; with `sites`,
    /// only the ALT rows it passes are fitted (plink2 filters before `--glm`). Progress is
    /// reported in variants fitted.
    #[allow(clippy::too_many_arguments)]
    pub async fn association(
        &self,
        regions: &[Region],
        cohort: &Cohort,
        table: &str,
        trait_column: &str,
        covariates: &[String],
        model: Option<Model>,
        sites: Option<&SitePass>,
    ) -> Result<Vec<RecordBatch>> {
        // Coefficients are exact functions of every analysed genotype: two regressions over
        // cohorts that differ by one participant differ by that participant's contribution,
        // which no count floor or noise on counts hides. Until they are released under the
        // disclosure control, the aggregate tier does not get them.
        self.require_record_level("association (exact coefficients)")?;
        self.check_regions(regions)?;
        let split = crate::region_tasks::SplitOperation::Association {
            table: table.to_string(),
            trait_column: trait_column.to_string(),
            covariates: covariates.to_vec(),
            model: model.map(Model::name).unwrap_or_default().to_string(),
        };
        if let Some(batches) = self.on_workers(split, regions, &[cohort.set()]).await? {
            return match sites {
                Some(pass) => batches.iter().map(|b| pass.filter(b)).collect(),
                None => Ok(batches),
            };
        }
        let design = self.design(table, trait_column, covariates, cohort).await?;
        // Logistic by default for a boolean trait, or an integer one holding only 0 and 1.
        let model = model.unwrap_or(if design.zero_one && design.discrete {
            Model::Logistic
        } else {
            Model::Linear
        });
        if model != Model::Linear && !design.zero_one {
            return Err(invalid(format!(
                "logistic regression needs a boolean or 0/1 trait; {trait_column:?} has other values"
            )));
        }
        if design.samples.is_empty() {
            return Err(invalid(format!(
                "no sample of the cohort has {trait_column:?} and every covariate"
            )));
        }
        self.progress
            .start(None, Unit::Items("variants"), "reading genotypes");
        let mut df = self.full_session()?.table("variants").await?;
        if let Some(filter) = region_filter(regions) {
            df = df.filter(filter)?;
        }
        let batches = df
            .select_columns(&[
                "contig",
                "pos",
                "id",
                "ref",
                "alt",
                "allele_index",
                "het",
                "hom_alt",
                "hemi",
                "called_diploid",
                "called_haploid",
                "haploid",
            ])?
            .sort(vec![
                col("contig").sort(true, false),
                col("pos").sort(true, false),
                col("allele_index").sort(true, false),
            ])?
            .collect()
            .await?;
        let batches = match sites {
            Some(pass) => batches
                .iter()
                .map(|b| pass.filter(b))
                .collect::<Result<_>>()?,
            None => batches,
        };
        let fitter = Fitter::new(&design, model);
        let mut out = Vec::with_capacity(batches.len());
        let variants = batches.iter().map(|b| b.num_rows() as u64).sum();
        self.progress
            .start(Some(variants), Unit::Items("variants"), "fitting");
        for batch in &batches {
            let rows = batch.num_rows();
            let bitmaps: Vec<ArrayRef> = (6..12)
                .map(|i| cast_column(batch.column(i), &DataType::Binary))
                .collect::<Result<_>>()?;
            let read = |c: usize, r: usize| stored_bitmap(bitmaps[c].as_binary::<i32>(), r);
            let mut inputs = Vec::with_capacity(rows);
            for r in 0..rows {
                inputs.push(VariantCalls {
                    het: read(0, r)?,
                    hom_alt: read(1, r)?,
                    hemi: read(2, r)?,
                    observed: read(3, r)? | (read(4, r)? & read(5, r)?),
                });
            }
            let fits = fitter.fit_all(&inputs);
            let text = |i: usize| -> Result<ArrayRef> {
                Ok(
                    datafusion::arrow::compute::cast(batch.column(i), &DataType::Utf8)
                        .map_err(DataFusionError::from)?,
                )
            };
            let pos = datafusion::arrow::compute::cast(batch.column(1), &DataType::Int64)
                .map_err(DataFusionError::from)?;
            let float = |f: fn(&Fit) -> f64| -> ArrayRef {
                Arc::new(Float64Array::from_iter(
                    fits.iter()
                        .map(|fit| Some(f(fit)).filter(|v| v.is_finite())),
                ))
            };
            out.push(
                RecordBatch::try_new(
                    association_schema(),
                    vec![
                        text(0)?,
                        pos,
                        text(2)?,
                        text(3)?,
                        text(4)?,
                        Arc::new(Int64Array::from_iter_values(
                            fits.iter().map(|f| f.n as i64),
                        )),
                        float(|f| f.beta),
                        float(|f| f.se),
                        float(|f| f.p),
                        Arc::new(Float64Array::from_iter(fits.iter().map(|fit| {
                            (model != Model::Linear && fit.beta.is_finite()).then(|| fit.beta.exp())
                        }))),
                        Arc::new(BooleanArray::from_iter(
                            fits.iter().map(|fit| Some(fit.firth)),
                        )),
                        Arc::new(StringArray::from_iter(fits.iter().map(|fit| fit.error))),
                    ],
                )
                .map_err(DataFusionError::from)?,
            );
            self.progress.advance(rows as u64);
        }
        self.progress.finish();
        Ok(out)
    }
}

/// One ALT row's calls.
struct VariantCalls {
    het: RoaringBitmap,
    hom_alt: RoaringBitmap,
    hemi: RoaringBitmap,
    /// Samples with a fully called genotype at the site.
    observed: RoaringBitmap,
}

/// Fits variants against one design.
struct Fitter<'a> {
    design: &'a Design,
    model: Model,
    analysed: RoaringBitmap,
    linear: Option<LinearModel>,
    logistic: Option<LogisticModel>,
}

impl<'a> Fitter<'a> {
    fn new(design: &'a Design, model: Model) -> Self {
        let analysed: RoaringBitmap = design.samples.iter().copied().collect();
        let (linear, logistic) = match model {
            Model::Linear => (Some(LinearModel::new(&design.y, &design.covariates)), None),
            _ => (
                None,
                Some(Self::logistic(model, &design.y, &design.covariates)),
            ),
        };
        Self {
            design,
            model,
            analysed,
            linear,
            logistic,
        }
    }

    fn logistic(model: Model, y: &[f64], covariates: &[Vec<f64>]) -> LogisticModel {
        LogisticModel::new(y, covariates, model == Model::Logistic)
    }

    fn fit_all(&self, variants: &[VariantCalls]) -> Vec<Fit> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = variants.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = variants
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|v| self.fit(v)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }

    fn fit(&self, v: &VariantCalls) -> Fit {
        let d = self.design;
        let mut carriers: Vec<(usize, f64)> = Vec::new();
        for (bitmap, dose) in [(&v.het, 1.0), (&v.hom_alt, 2.0), (&v.hemi, 1.0)] {
            for idx in &(bitmap & &self.analysed) {
                carriers.push((d.row_of[idx as usize] as usize, dose));
            }
        }
        carriers.sort_unstable_by_key(|c| c.0);
        let missing = &self.analysed - &v.observed;
        if missing.is_empty() {
            return match (&self.linear, &self.logistic) {
                (Some(linear), _) => linear.fit_sparse(&carriers),
                (None, Some(logistic)) => logistic.fit_sparse(&carriers),
                (None, None) => Fit::failed(d.y.len(), "INVALID_RESULT"),
            };
        }
        // Samples without a call leave this variant's fit: a model over the others.
        let keep: Vec<usize> = (0..d.y.len())
            .filter(|&r| !missing.contains(d.samples[r]))
            .collect();
        let mut new_row = vec![usize::MAX; d.y.len()];
        for (i, &r) in keep.iter().enumerate() {
            new_row[r] = i;
        }
        let kept_carriers: Vec<(usize, f64)> = carriers
            .iter()
            .filter(|c| new_row[c.0] != usize::MAX)
            .map(|&(r, dose)| (new_row[r], dose))
            .collect();
        let pick = |values: &[f64]| keep.iter().map(|&r| values[r]).collect::<Vec<f64>>();
        let y = pick(&d.y);
        let covariates: Vec<Vec<f64>> = d.covariates.iter().map(|c| pick(c)).collect();
        match self.model {
            Model::Linear => {
                let mut dosage = vec![0.0; keep.len()];
                for &(r, dose) in &kept_carriers {
                    dosage[r] += dose;
                }
                linear(&y, &dosage, &covariates)
            }
            _ => Self::logistic(self.model, &y, &covariates).fit_sparse(&kept_carriers),
        }
    }
}
