//! The `variants` table over one snapshot's fragments.
//!
//! `scan` only plans: it chooses the fragments whose log statistics and the row groups whose
//! Parquet statistics may satisfy the filters ([`crate::rows::span_pruning`]), groups them by
//! batch and splits the key space into partitions ([`ScanPlan`]); [`VariantsExec`] reads them.
//! Filters are `Inexact`: DataFusion applies them again to the rows.

use std::sync::Arc;

use async_trait::async_trait;
use cohortdb_store::StoreLocation;
use cohortdb_store::fragment_schema::fragment_schema;
use cohortdb_store::log_entry::{ExtraColumn, FileEntry};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::rows::fragment_reader::FooterCache;
use crate::rows::scan_plan::{BatchRead, FragmentRead, RowGroupSpan, ScanPlan};
use crate::rows::span_pruning::Span;
use crate::rows::variants_exec::VariantsExec;

/// The `variants` table over one snapshot.
#[derive(Debug)]
pub struct VariantsTable {
    location: StoreLocation,
    footers: Arc<FooterCache>,
    extra_columns: Vec<ExtraColumn>,
    schema: SchemaRef,
    fragments: Vec<FileEntry>,
    /// Rows of several batches are merged into cohort rows, with the gVCF reference blocks
    /// of these files; `None`: rows as stored.
    merge: Option<Vec<FileEntry>>,
}

impl VariantsTable {
    /// A table over `fragments` of the store at `location`, rows as stored.
    pub fn new(
        location: StoreLocation,
        footers: Arc<FooterCache>,
        extra_columns: Vec<ExtraColumn>,
        fragments: Vec<FileEntry>,
    ) -> Self {
        Self {
            location,
            footers,
            schema: fragment_schema(&extra_columns),
            extra_columns,
            fragments,
            merge: None,
        }
    }

    /// This table with rows merged across batches (the cohort's view of the store) and the
    /// reference blocks of `block_files`.
    pub fn merging(mut self, block_files: Vec<FileEntry>) -> Self {
        self.merge = Some(block_files);
        self
    }

    /// The batches of the table, each with its chosen fragments and row groups.
    async fn plan_batches(&self, filters: &[Expr]) -> Result<Vec<BatchRead>> {
        let mut batches: Vec<BatchRead> = Vec::new();
        for file in &self.fragments {
            let batch = match batches
                .iter_mut()
                .find(|b| (b.samples, b.missing_as_ref) == (file.sample_range, file.missing_as_ref))
            {
                Some(batch) => batch,
                None => {
                    batches.push(BatchRead {
                        samples: file.sample_range,
                        missing_as_ref: file.missing_as_ref,
                        fragments: Vec::new(),
                    });
                    batches.last_mut().ok_or_else(|| {
                        DataFusionError::Internal("no batch after pushing one".into())
                    })?
                }
            };
            if !Span::of_fragment(file).may_match_all(filters) {
                continue;
            }
            let footer = self
                .footers
                .footer(&self.location, file)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let descr = footer.metadata().file_metadata().schema_descr();
            let row_groups: Vec<RowGroupSpan> = footer
                .metadata()
                .row_groups()
                .iter()
                .enumerate()
                .filter_map(|(index, group)| {
                    let span = Span::of_row_group(file.contig.as_deref(), descr, group);
                    span.may_match_all(filters).then_some(RowGroupSpan {
                        index,
                        min_pos: span.min_pos,
                        max_pos: span.max_pos,
                    })
                })
                .collect();
            if !row_groups.is_empty() {
                batch.fragments.push(FragmentRead {
                    file: file.clone(),
                    row_groups,
                });
            }
        }
        batches.sort_by_key(|b| b.samples);
        Ok(batches)
    }
}

#[async_trait]
impl TableProvider for VariantsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut batches = self.plan_batches(filters).await?;
        // Several batches, each with a recorded sample range: their rows merge.
        let merge = self.merge.is_some()
            && batches.len() > 1
            && batches.iter().all(|b| b.samples.is_some());
        if !merge {
            // Rows as stored: one batch of every chosen fragment.
            let fragments = batches.drain(..).flat_map(|b| b.fragments).collect();
            batches.push(BatchRead {
                samples: None,
                missing_as_ref: false,
                fragments,
            });
        }
        let mut plan = ScanPlan {
            root: self.location.root.to_string(),
            extra_columns: self.extra_columns.clone(),
            batches,
            merge,
            block_files: match (merge, &self.merge) {
                (true, Some(files)) => files.clone(),
                _ => Vec::new(),
            },
            projection: projection.cloned(),
            limit,
            partitions: Vec::new(),
        };
        plan.split(state.config().target_partitions());
        Ok(Arc::new(VariantsExec::new(plan, self.footers.clone())?))
    }
}
