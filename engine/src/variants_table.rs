//! The `variants` table: the snapshot's variant fragments, pruned by contig and position.
//!
//! `scan` only plans: it chooses the fragments whose log statistics (contig, position range)
//! can satisfy the filters, then hands those files to DataFusion's Parquet scan, which prunes
//! row groups by their statistics and applies the filters. Filters are reported `Inexact`.

use std::sync::Arc;

use async_trait::async_trait;
use cohortdb_store::log_entry::FileEntry;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::scalar::ScalarValue;

/// URL under which a session registers the store's object store.
pub const STORE_URL: &str = "cohortdb://store/";

/// The `variants` table over one snapshot.
#[derive(Debug)]
pub struct VariantsTable {
    schema: SchemaRef,
    fragments: Vec<FileEntry>,
    root: String,
    /// Set: rows of several batches are merged into cohort rows ([`crate::batch_merge`]),
    /// with the gVCF reference blocks these files hold.
    merge: Option<BlockSource>,
}

/// Where a merging scan reads reference blocks from.
#[derive(Debug, Clone)]
pub struct BlockSource {
    /// The store.
    pub store: cohortdb_store::Store,
    /// The snapshot's reference-block files.
    pub files: Vec<FileEntry>,
}

impl VariantsTable {
    /// A table over `fragments` (paths relative to `root` in the store) with `schema`.
    pub fn new(schema: SchemaRef, fragments: Vec<FileEntry>, root: String) -> Self {
        Self {
            schema,
            fragments,
            root,
            merge: None,
        }
    }

    /// This table with rows merged across batches (the cohort's view of the store).
    pub fn merging(mut self, blocks: BlockSource) -> Self {
        self.merge = Some(blocks);
        self
    }

    /// A scan of `files` with every column.
    async fn scan_files(
        &self,
        state: &dyn Session,
        files: &[&FileEntry],
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let urls = files
            .iter()
            .map(|f| self.url(f))
            .collect::<Result<Vec<_>>>()?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(self.schema.clone());
        ListingTable::try_new(config)?
            .scan(state, projection, filters, limit)
            .await
    }

    /// The rows of `chosen` merged across their batches, projected.
    async fn merged_scan(
        &self,
        state: &dyn Session,
        chosen: &[&FileEntry],
        blocks: &BlockSource,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut groups: Vec<([u32; 2], bool, Vec<&FileEntry>)> = Vec::new();
        for file in chosen {
            let range = file.sample_range.unwrap_or_default();
            match groups
                .iter_mut()
                .find(|(r, m, _)| *r == range && *m == file.missing_as_ref)
            {
                Some(group) => group.2.push(file),
                None => groups.push((range, file.missing_as_ref, vec![file])),
            }
        }
        groups.sort_by_key(|(range, ..)| *range);
        // Only filters on the position may prune a batch's rows before the merge: any other
        // (on `alt`, `ac`, ...) could drop one batch's part of a site and change the merged row.
        let position_only: Vec<Expr> = filters
            .iter()
            .filter(|e| {
                e.column_refs()
                    .iter()
                    .all(|c| c.name == "contig" || c.name == "pos")
            })
            .cloned()
            .collect();
        let mut batches = Vec::with_capacity(groups.len());
        for ([start, end], missing_as_ref, files) in groups {
            let plan = self
                .scan_files(state, &files, None, &position_only, None)
                .await?;
            let rows = datafusion::physical_plan::collect(plan, state.task_ctx()).await?;
            let rows = datafusion::arrow::compute::concat_batches(&self.schema, &rows)?;
            let mut samples = roaring::RoaringBitmap::new();
            samples.insert_range(start..end);
            batches.push(crate::batch_merge::BatchRows {
                rows,
                samples,
                missing_as_ref,
            });
        }
        let mut contigs: Vec<String> = chosen.iter().filter_map(|f| f.contig.clone()).collect();
        contigs.sort();
        contigs.dedup();
        let regions: Vec<crate::region::Region> = contigs
            .into_iter()
            .map(|contig| crate::region::Region {
                contig,
                start: 1,
                end: i64::MAX,
            })
            .collect();
        let blocks = crate::reference_blocks::load(&blocks.store, &blocks.files, &regions)
            .await
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let merged = crate::batch_merge::merge_batches(&self.schema, &batches, &blocks)?;
        Ok(
            datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
                &[vec![merged]],
                self.schema.clone(),
                projection.cloned(),
            )?,
        )
    }

    fn url(&self, file: &FileEntry) -> Result<ListingTableUrl> {
        let path = if self.root.is_empty() {
            file.path.clone()
        } else {
            format!("{}/{}", self.root, file.path)
        };
        // ListingTableUrl percent-decodes its path once; escaping `%` makes it decode back to
        // the stored name (`contig=1%3A1`), not to the contig name itself.
        ListingTableUrl::parse(format!("{STORE_URL}{}", path.replace('%', "%25")))
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
        let chosen: Vec<&FileEntry> = self
            .fragments
            .iter()
            .filter(|f| filters.iter().all(|e| may_match(e, f)))
            .collect();
        if chosen.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        // Several batches (all with a recorded sample range): merged rows.
        if let Some(blocks) = &self.merge
            && chosen.iter().all(|f| f.sample_range.is_some())
            && chosen.iter().any(|f| {
                (f.sample_range, f.missing_as_ref)
                    != (chosen[0].sample_range, chosen[0].missing_as_ref)
            })
        {
            return self
                .merged_scan(state, &chosen, blocks, projection, filters)
                .await;
        }
        self.scan_files(state, &chosen, projection, filters, limit)
            .await
    }
}

/// Whether a fragment may hold rows satisfying `expr`, judged from its log statistics; any
/// expression it does not understand may match.
fn may_match(expr: &Expr, file: &FileEntry) -> bool {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => may_match(left, file) && may_match(right, file),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => may_match(left, file) || may_match(right, file),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match (
            column_name(left),
            literal(right),
            column_name(right),
            literal(left),
        ) {
            (Some(c), Some(v), _, _) => compare(c, *op, v, file),
            (_, _, Some(c), Some(v)) => op.swap().is_none_or(|op| compare(c, op, v, file)),
            _ => true,
        },
        Expr::Between(b) if !b.negated => {
            match (column_name(&b.expr), literal(&b.low), literal(&b.high)) {
                (Some(c), Some(lo), Some(hi)) => {
                    compare(c, Operator::GtEq, lo, file) && compare(c, Operator::LtEq, hi, file)
                }
                _ => true,
            }
        }
        _ => true,
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_name(&c.expr),
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(c) => literal(&c.expr),
        _ => None,
    }
}

fn compare(column: &str, op: Operator, value: &ScalarValue, file: &FileEntry) -> bool {
    match column {
        "contig" => {
            let (Some(contig), Some(v)) = (file.contig.as_deref(), text(value)) else {
                return true;
            };
            match op {
                Operator::Eq => contig == v,
                Operator::NotEq => contig != v,
                _ => true,
            }
        }
        "pos" | "end_pos" => {
            let Some(v) = integer(value) else { return true };
            let (lo, hi) = match column {
                "pos" => (file.min_pos, file.max_pos),
                _ => (file.min_pos, file.max_end),
            };
            let (Some(lo), Some(hi)) = (lo, hi) else {
                return true;
            };
            match op {
                Operator::Eq => lo <= v && v <= hi,
                Operator::Lt => lo < v,
                Operator::LtEq => lo <= v,
                Operator::Gt => hi > v,
                Operator::GtEq => hi >= v,
                _ => true,
            }
        }
        _ => true,
    }
}

fn text(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s),
        _ => None,
    }
}

fn integer(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohortdb_store::log_entry::FileKind;
    use datafusion::prelude::{col, lit};

    fn fragment(contig: &str, lo: i64, hi: i64) -> FileEntry {
        FileEntry {
            contig: Some(contig.into()),
            min_pos: Some(lo),
            max_pos: Some(hi),
            max_end: Some(hi + 10),
            ..FileEntry::new("f", FileKind::Variants, 1, 1)
        }
    }

    #[test]
    fn prunes_by_contig_and_position() {
        let f = fragment("chr20", 100, 200);
        let region = col("contig")
            .eq(lit("chr20"))
            .and(col("pos").lt_eq(lit(150i64)))
            .and(col("end_pos").gt_eq(lit(120i64)));
        assert!(may_match(&region, &f));
        assert!(!may_match(&col("contig").eq(lit("chr21")), &f));
        assert!(!may_match(&col("pos").gt(lit(200i64)), &f));
        assert!(
            may_match(&col("end_pos").gt(lit(205i64)), &f),
            "end_pos uses max_end"
        );
        let either = col("contig")
            .eq(lit("chr21"))
            .or(col("pos").between(lit(150i64), lit(160i64)));
        assert!(may_match(&either, &f));
        assert!(may_match(&col("qual").gt(lit(3.0)), &f));
    }
}
