//! `af --groups FILE`: allele frequencies per group of samples in one step, as
//! `bcftools +fill-tags -- -S FILE` computes them, one row per site and group.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use cohortdb_engine::{CohortEngine, CohortSpec, EngineError, Region};

/// Groups as `+fill-tags -S` reads them: `SAMPLE<TAB>GROUP[,GROUP...]` per line; groups in
/// the order they first appear, each with its samples in file order.
pub(crate) fn read_groups(path: &str) -> Result<Vec<(String, Vec<String>)>, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
        path: path.to_string(),
        source,
    })?;
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [first, ..] if first.starts_with('#') => {}
            [sample, names] => {
                for name in names.split(',').filter(|n| !n.is_empty()) {
                    match groups.iter_mut().find(|(g, _)| g == name) {
                        Some((_, members)) => members.push(sample.to_string()),
                        None => groups.push((name.to_string(), vec![sample.to_string()])),
                    }
                }
            }
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "{path} line {}: expected SAMPLE<TAB>GROUP[,GROUP...], found {line:?}",
                    i + 1
                )));
            }
        }
    }
    if groups.is_empty() {
        return Err(EngineError::InvalidArgument(format!("{path}: no groups")));
    }
    Ok(groups)
}

/// `af`'s columns with `group` after `alt`, one row per site and group (sites in `af`'s
/// order, groups in the file's).
pub(crate) async fn group_frequencies(
    engine: &CohortEngine,
    regions: &[Region],
    groups: &[(String, Vec<String>)],
) -> Result<RecordBatch, Box<dyn std::error::Error>> {
    let mut per_group = Vec::with_capacity(groups.len());
    for (_, members) in groups {
        let cohort = engine.cohort(CohortSpec::Include(members.clone())).await?;
        crate::shared_args::warn_withdrawn(engine, &cohort);
        per_group.push(engine.allele_frequencies(regions, &cohort).await?);
    }
    let rows = per_group.first().map_or(0, RecordBatch::num_rows);
    // Row r of group g goes to r * groups + g.
    let order: Vec<(usize, usize)> = (0..rows)
        .flat_map(|r| (0..groups.len()).map(move |g| (g, r)))
        .collect();
    let first = &per_group[0];
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, field) in first.schema().fields().iter().enumerate() {
        let arrays: Vec<&dyn arrow::array::Array> =
            per_group.iter().map(|b| b.column(i).as_ref()).collect();
        columns.push(arrow::compute::interleave(&arrays, &order)?);
        fields.push(field.as_ref().clone());
        if field.name() == "alt" {
            fields.push(Field::new("group", DataType::Utf8, false));
            columns.push(Arc::new(StringArray::from_iter_values(
                order.iter().map(|(g, _)| groups[*g].0.as_str()),
            )));
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
