//! Which fragments and row groups may hold rows a filter wants, judged from statistics: the
//! log's (contig, `pos` range, largest `end_pos`) for a fragment, Parquet's (`pos` min and max,
//! `end_pos` max) for a row group. The SQL scan and the row cache prune by this one rule; a
//! region list is the filter [`region_filter`] makes of it.

use datafusion::logical_expr::{BinaryExpr, Expr, Operator, col, lit};
use datafusion::scalar::ScalarValue;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;
use parquet::schema::types::SchemaDescriptor;

use cohortdb_store::log_entry::FileEntry;

use crate::region::Region;

/// What statistics say of some rows: their contig, and the range of their 1-based inclusive
/// positions (`None`: unknown, may be anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span<'a> {
    /// The contig of every row.
    pub contig: Option<&'a str>,
    /// The smallest `pos`.
    pub min_pos: Option<i64>,
    /// The largest `pos`.
    pub max_pos: Option<i64>,
    /// The largest `end_pos`.
    pub max_end: Option<i64>,
}

impl<'a> Span<'a> {
    /// The span of a variant fragment, from the log.
    pub fn of_fragment(file: &'a FileEntry) -> Self {
        Self {
            contig: file.contig.as_deref(),
            min_pos: file.min_pos,
            max_pos: file.max_pos,
            max_end: file.max_end.or(file.max_pos),
        }
    }

    /// The span of one row group of a fragment of `contig`, from its Parquet statistics.
    pub fn of_row_group(
        contig: Option<&'a str>,
        descr: &SchemaDescriptor,
        row_group: &RowGroupMetaData,
    ) -> Self {
        let stat = |name: &str, min: bool| -> Option<i64> {
            let i = (0..descr.num_columns()).find(|&i| descr.column(i).name() == name)?;
            match row_group.column(i).statistics()? {
                Statistics::Int64(s) => if min { s.min_opt() } else { s.max_opt() }.copied(),
                _ => None,
            }
        };
        Self {
            contig,
            min_pos: stat("pos", true),
            max_pos: stat("pos", false),
            max_end: stat("end_pos", false),
        }
    }

    /// Whether rows of this span may satisfy every one of `filters`.
    pub fn may_match_all(&self, filters: &[Expr]) -> bool {
        filters.iter().all(|e| self.may_match(e))
    }

    /// Whether rows of this span may satisfy `expr`; an expression it does not understand may
    /// match.
    pub fn may_match(&self, expr: &Expr) -> bool {
        match expr {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => self.may_match(left) && self.may_match(right),
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => self.may_match(left) || self.may_match(right),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match (
                column_name(left),
                literal(right),
                column_name(right),
                literal(left),
            ) {
                (Some(c), Some(v), _, _) => self.compare(c, *op, v),
                (_, _, Some(c), Some(v)) => op.swap().is_none_or(|op| self.compare(c, op, v)),
                _ => true,
            },
            Expr::Between(b) if !b.negated => {
                match (column_name(&b.expr), literal(&b.low), literal(&b.high)) {
                    (Some(c), Some(lo), Some(hi)) => {
                        self.compare(c, Operator::GtEq, lo) && self.compare(c, Operator::LtEq, hi)
                    }
                    _ => true,
                }
            }
            _ => true,
        }
    }

    fn compare(&self, column: &str, op: Operator, value: &ScalarValue) -> bool {
        match column {
            "contig" => {
                let (Some(contig), Some(v)) = (self.contig, text(value)) else {
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
                let hi = match column {
                    "pos" => self.max_pos,
                    _ => self.max_end,
                };
                let (Some(lo), Some(hi)) = (self.min_pos, hi) else {
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
}

/// The stored bytes of `fragments` at positions up to `pos`, estimated from the log: each
/// fragment's bytes spread evenly over its span of positions. For progress over reads in
/// position order.
pub fn stored_bytes_up_to(fragments: &[&FileEntry], pos: i64) -> f64 {
    fragments
        .iter()
        .map(|f| {
            let (Some(min), Some(max)) = (f.min_pos, f.max_pos) else {
                return 0.0;
            };
            let width = max.saturating_sub(min) as f64 + 1.0;
            let covered = (pos.saturating_sub(min) as f64 + 1.0).clamp(0.0, width);
            f.bytes as f64 * covered / width
        })
        .sum()
}

/// The SQL predicate of `regions` (overlap, as `bcftools view -r`: `pos <= end` and
/// `end_pos >= start`): `None` for no regions.
pub fn region_filter(regions: &[Region]) -> Option<Expr> {
    regions
        .iter()
        .map(|r| {
            let mut e = col("contig").eq(lit(r.contig.clone()));
            if r.end != i64::MAX {
                e = e.and(col("pos").lt_eq(lit(r.end)));
            }
            if r.start > 1 {
                e = e.and(col("end_pos").gt_eq(lit(r.start)));
            }
            e
        })
        .reduce(Expr::or)
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

    fn span(contig: &str, lo: i64, hi: i64) -> Span<'_> {
        Span {
            contig: Some(contig),
            min_pos: Some(lo),
            max_pos: Some(hi),
            max_end: Some(hi + 10),
        }
    }

    #[test]
    fn prunes_by_contig_and_position() {
        let f = span("chr20", 100, 200);
        let region = col("contig")
            .eq(lit("chr20"))
            .and(col("pos").lt_eq(lit(150i64)))
            .and(col("end_pos").gt_eq(lit(120i64)));
        assert!(f.may_match(&region));
        assert!(!f.may_match(&col("contig").eq(lit("chr21"))));
        assert!(!f.may_match(&col("pos").gt(lit(200i64))));
        assert!(
            f.may_match(&col("end_pos").gt(lit(205i64))),
            "end_pos uses max_end"
        );
        let either = col("contig")
            .eq(lit("chr21"))
            .or(col("pos").between(lit(150i64), lit(160i64)));
        assert!(f.may_match(&either));
        assert!(f.may_match(&col("qual").gt(lit(3.0))));
        assert!(
            Span::default().may_match(&region),
            "unknown spans may match"
        );
    }

    #[test]
    fn a_region_list_prunes_as_bcftools_overlap() {
        let regions = Region::parse_list("chr20:150-160,chr21:1-5").unwrap();
        let filter = region_filter(&regions).unwrap();
        assert!(span("chr20", 100, 200).may_match(&filter));
        // A deletion starting before the region and reaching into it overlaps it.
        assert!(span("chr20", 100, 145).may_match(&filter));
        assert!(!span("chr20", 100, 139).may_match(&filter));
        assert!(!span("chr22", 1, 1000).may_match(&filter));
        assert!(region_filter(&[]).is_none());
    }
}
