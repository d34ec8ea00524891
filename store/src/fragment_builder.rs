//! Builds one variant fragment (one ingest batch x one contig) from parsed rows; the
//! [`crate::fragment_writer`] encodes it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float32Builder, Int32Builder, Int64Builder,
    ListBuilder, RecordBatch, StringBuilder,
};
use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};

use crate::error::{Result, StoreError};
use crate::fragment_schema::fragment_schema;
use crate::fragment_writer::{EncodedFragment, encode_fragment};
use crate::log_entry::{ExtraColumn, ValueKind};

/// A typed INFO value of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtraValue {
    /// Missing.
    Null,
    /// Integer scalar.
    Int(i32),
    /// Float scalar.
    Float(f32),
    /// Flag present.
    Flag,
    /// Text scalar.
    Text(String),
    /// Integer list (`None` = missing element).
    IntList(Vec<Option<i32>>),
    /// Float list.
    FloatList(Vec<Option<f32>>),
    /// Text list.
    TextList(Vec<Option<String>>),
}

/// Precomputed counts of one row over the fragment's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// Alternate allele count.
    pub ac: i64,
    /// Called alleles at the site.
    pub an: i64,
    /// Heterozygous carriers of this ALT.
    pub n_het: i64,
    /// Homozygous carriers of this ALT.
    pub n_hom_alt: i64,
    /// Hemizygous (haploid or half-missing) carriers of this ALT.
    pub n_hemi: i64,
    /// Samples without a called allele.
    pub n_no_call: i64,
}

/// One row (one ALT allele of a site), borrowing its data.
#[derive(Debug, Clone)]
pub struct VariantRow<'a> {
    /// 1-based position.
    pub pos: i64,
    /// 1-based inclusive end.
    pub end_pos: i64,
    /// VCF ID, `None` for `.`.
    pub id: Option<&'a str>,
    /// Reference allele.
    pub ref_allele: &'a str,
    /// This alternate allele (`.` for a site without ALT).
    pub alt: &'a str,
    /// QUAL.
    pub qual: Option<f32>,
    /// FILTER text, `None` for `.`.
    pub filters: Option<&'a str>,
    /// 1-based index of this ALT in the site (0 for a site without ALT).
    pub allele_index: i32,
    /// Number of alleles at the site, REF included.
    pub n_alleles: i32,
    /// Counts over the fragment's samples.
    pub counts: RowCounts,
    /// Serialised bitmaps in [`BITMAP_COLUMNS`](crate::genotype_bitmaps::BITMAP_COLUMNS) order.
    pub bitmaps: [&'a [u8]; 9],
    /// Serialised exceptions, if any.
    pub gt_exceptions: Option<&'a [u8]>,
    /// Values of the fragment's extra columns, in order.
    pub extras: &'a [ExtraValue],
}

enum ExtraBuilder {
    Int(Int32Builder),
    Float(Float32Builder),
    Flag(BooleanBuilder),
    Text(StringBuilder),
    IntList(ListBuilder<Int32Builder>),
    FloatList(ListBuilder<Float32Builder>),
    TextList(ListBuilder<StringBuilder>),
}

impl ExtraBuilder {
    fn new(column: &ExtraColumn) -> Self {
        match (column.kind, column.list) {
            (ValueKind::Integer, false) => Self::Int(Int32Builder::new()),
            (ValueKind::Float, false) => Self::Float(Float32Builder::new()),
            (ValueKind::Flag, _) => Self::Flag(BooleanBuilder::new()),
            (ValueKind::String, false) => Self::Text(StringBuilder::new()),
            (ValueKind::Integer, true) => Self::IntList(ListBuilder::new(Int32Builder::new())),
            (ValueKind::Float, true) => Self::FloatList(ListBuilder::new(Float32Builder::new())),
            (ValueKind::String, true) => Self::TextList(ListBuilder::new(StringBuilder::new())),
        }
    }

    /// Appends `value`; a value of the wrong shape is stored as null.
    fn append(&mut self, value: &ExtraValue) {
        match (self, value) {
            (Self::Int(b), ExtraValue::Int(v)) => b.append_value(*v),
            (Self::Float(b), ExtraValue::Float(v)) => b.append_value(*v),
            (Self::Flag(b), ExtraValue::Flag) => b.append_value(true),
            (Self::Flag(b), _) => b.append_value(false),
            (Self::Text(b), ExtraValue::Text(v)) => b.append_value(v),
            (Self::IntList(b), ExtraValue::IntList(v)) => b.append_value(v.iter().copied()),
            (Self::FloatList(b), ExtraValue::FloatList(v)) => b.append_value(v.iter().copied()),
            (Self::TextList(b), ExtraValue::TextList(v)) => b.append_value(v.iter().cloned()),
            (Self::Int(b), _) => b.append_null(),
            (Self::Float(b), _) => b.append_null(),
            (Self::Text(b), _) => b.append_null(),
            (Self::IntList(b), _) => b.append_null(),
            (Self::FloatList(b), _) => b.append_null(),
            (Self::TextList(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int(b) => Arc::new(b.finish()),
            Self::Float(b) => Arc::new(b.finish()),
            Self::Flag(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::IntList(b) => Arc::new(b.finish()),
            Self::FloatList(b) => Arc::new(b.finish()),
            Self::TextList(b) => Arc::new(b.finish()),
        }
    }
}

/// Accumulates the rows of one fragment.
pub struct FragmentBuilder {
    contig: String,
    extras: Vec<ExtraColumn>,
    pos: Int64Builder,
    end_pos: Int64Builder,
    id: StringBuilder,
    ref_allele: StringBuilder,
    alt: StringBuilder,
    qual: Float32Builder,
    filters: StringBuilder,
    allele_index: Int32Builder,
    n_alleles: Int32Builder,
    record_ordinal: Int32Builder,
    /// Position and ordinal of the last input record started.
    last_record: (i64, i32),
    counts: [Int64Builder; 6],
    bitmaps: [BinaryBuilder; 9],
    gt_exceptions: BinaryBuilder,
    extra_builders: Vec<ExtraBuilder>,
    rows: usize,
    bytes: usize,
    sorted: bool,
    last_pos: i64,
}

impl FragmentBuilder {
    /// A builder for `contig` whose rows carry `extras`.
    pub fn new(contig: &str, extras: Vec<ExtraColumn>) -> Self {
        let extra_builders = extras.iter().map(ExtraBuilder::new).collect();
        Self {
            contig: contig.to_string(),
            extras,
            pos: Int64Builder::new(),
            end_pos: Int64Builder::new(),
            id: StringBuilder::new(),
            ref_allele: StringBuilder::new(),
            alt: StringBuilder::new(),
            qual: Float32Builder::new(),
            filters: StringBuilder::new(),
            allele_index: Int32Builder::new(),
            n_alleles: Int32Builder::new(),
            record_ordinal: Int32Builder::new(),
            last_record: (i64::MIN, -1),
            counts: std::array::from_fn(|_| Int64Builder::new()),
            bitmaps: std::array::from_fn(|_| BinaryBuilder::new()),
            gt_exceptions: BinaryBuilder::new(),
            extra_builders,
            rows: 0,
            bytes: 0,
            sorted: true,
            last_pos: i64::MIN,
        }
    }

    /// Rows appended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate bytes buffered (bitmaps and text), for memory bounds.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one row.
    pub fn append(&mut self, row: &VariantRow<'_>) {
        if row.pos < self.last_pos {
            self.sorted = false;
        }
        self.last_pos = row.pos;
        self.pos.append_value(row.pos);
        self.end_pos.append_value(row.end_pos);
        self.id.append_option(row.id);
        self.ref_allele.append_value(row.ref_allele);
        self.alt.append_value(row.alt);
        self.qual.append_option(row.qual);
        self.filters.append_option(row.filters);
        self.allele_index.append_value(row.allele_index);
        self.n_alleles.append_value(row.n_alleles);
        // Allele index 0 (no ALT) or 1 starts an input record.
        if row.allele_index <= 1 {
            self.last_record = match self.last_record {
                (pos, n) if pos == row.pos => (pos, n + 1),
                _ => (row.pos, 0),
            };
        }
        self.record_ordinal.append_value(self.last_record.1.max(0));
        let c = row.counts;
        for (builder, value) in
            self.counts
                .iter_mut()
                .zip([c.ac, c.an, c.n_het, c.n_hom_alt, c.n_hemi, c.n_no_call])
        {
            builder.append_value(value);
        }
        for (builder, bytes) in self.bitmaps.iter_mut().zip(row.bitmaps) {
            builder.append_value(bytes);
            self.bytes += bytes.len();
        }
        self.gt_exceptions.append_option(row.gt_exceptions);
        for (builder, value) in self.extra_builders.iter_mut().zip(row.extras) {
            builder.append(value);
        }
        for builder in self.extra_builders.iter_mut().skip(row.extras.len()) {
            builder.append(&ExtraValue::Null);
        }
        self.bytes += 64 + row.ref_allele.len() + row.alt.len();
        self.rows += 1;
    }

    /// Sorts the rows by (pos, ref, alt) and encodes them as a Parquet file.
    pub fn finish(mut self) -> Result<EncodedFragment> {
        let rows = self.rows;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(arrow::array::StringArray::from(vec![
                self.contig.as_str();
                rows
            ])),
            Arc::new(self.pos.finish()),
            Arc::new(self.end_pos.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.ref_allele.finish()),
            Arc::new(self.alt.finish()),
            Arc::new(self.qual.finish()),
            Arc::new(self.filters.finish()),
            Arc::new(self.allele_index.finish()),
            Arc::new(self.n_alleles.finish()),
            Arc::new(self.record_ordinal.finish()),
        ];
        columns.extend(
            self.counts
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.extend(
            self.bitmaps
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(Arc::new(self.gt_exceptions.finish()));
        columns.extend(self.extra_builders.iter_mut().map(ExtraBuilder::finish));
        let schema = fragment_schema(&self.extras);
        let arrow_err = |context: &str, source| StoreError::Arrow {
            context: format!("{context} a fragment of {}", self.contig),
            source,
        };
        let mut batch =
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| arrow_err("building", e))?;
        if !self.sorted || has_unordered_ties(&batch) {
            let keys: Vec<SortColumn> = [1usize, 4, 5]
                .iter()
                .map(|&i| SortColumn {
                    values: batch.column(i).clone(),
                    options: None,
                })
                .collect();
            let order = lexsort_to_indices(&keys, None).map_err(|e| arrow_err("sorting", e))?;
            batch = take_record_batch(&batch, &order).map_err(|e| arrow_err("sorting", e))?;
        }
        encode_fragment(&self.contig, batch, self.extras)
    }
}

/// True when rows at one position are not ordered by (ref, alt).
fn has_unordered_ties(batch: &RecordBatch) -> bool {
    let (Some(pos), Some(r), Some(a)) = (
        batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>(),
        batch
            .column(4)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>(),
        batch
            .column(5)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>(),
    ) else {
        return true;
    };
    (1..batch.num_rows()).any(|i| {
        pos.value(i) == pos.value(i - 1)
            && (r.value(i), a.value(i)) < (r.value(i - 1), a.value(i - 1))
    })
}
