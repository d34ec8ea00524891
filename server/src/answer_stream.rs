//! An answer as it leaves the server: its schema, then its batches as the plan computes them,
//! so no request holds a whole large answer in memory.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::prelude::DataFrame;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::server_error::ServerError;

/// Batches as they are computed.
pub type BatchStream = BoxStream<'static, Result<RecordBatch, ServerError>>;

/// An answer: its schema and its batches.
pub struct Answer {
    /// The schema of every batch (and, for carriers, the next page's token in its metadata).
    pub schema: SchemaRef,
    /// The batches, computed as they are read.
    pub batches: BatchStream,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// The start of an answer read by [`Answer::head`].
#[derive(Debug)]
pub struct Head {
    /// The answer's schema.
    pub schema: SchemaRef,
    /// Its first batches.
    pub batches: Vec<RecordBatch>,
    /// The rest, when the answer did not end within the bytes read.
    pub rest: Option<Answer>,
}

impl Head {
    /// The rows of the batches read.
    pub fn rows(&self) -> u64 {
        self.batches.iter().map(|b| b.num_rows() as u64).sum()
    }
}

impl Answer {
    /// An answer already computed.
    pub fn table(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            schema,
            batches: futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
        }
    }

    /// One batch, with its own schema.
    pub fn one_batch(batch: RecordBatch) -> Self {
        Self::table(batch.schema(), vec![batch])
    }

    /// `batches` under the schema of the first (`schema` when there is none).
    pub fn of_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let schema = batches.first().map_or(schema, |b| b.schema());
        Self::table(schema, batches)
    }

    /// The answer of a query: its physical plan runs as the batches are read (on the runtime
    /// that reads them, which for scans is the scan lane).
    pub async fn of_frame(frame: DataFrame) -> Result<Self, ServerError> {
        let context = Arc::new(frame.task_ctx());
        let plan = frame.create_physical_plan().await?;
        let schema = plan.schema();
        let stream = datafusion::physical_plan::execute_stream(plan, context)?;
        Ok(Self {
            schema,
            batches: stream.map_err(ServerError::from).boxed(),
        })
    }

    /// Reads batches until the answer ends or more than `bytes` are read: an answer that ends
    /// there is whole in [`Head::batches`] and `rest` is `None`.
    pub async fn head(mut self, bytes: usize) -> Result<Head, ServerError> {
        let mut batches = Vec::new();
        let mut read = 0;
        while read <= bytes {
            match self.batches.next().await {
                Some(batch) => {
                    let batch = batch?;
                    read += batch.get_array_memory_size();
                    batches.push(batch);
                }
                None => {
                    return Ok(Head {
                        schema: self.schema,
                        batches,
                        rest: None,
                    });
                }
            }
        }
        Ok(Head {
            schema: self.schema.clone(),
            batches,
            rest: Some(self),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))]).unwrap()
    }

    #[tokio::test]
    async fn a_head_is_whole_when_the_answer_ends_within_it() {
        let batches = vec![batch(0..10), batch(10..20)];
        let head = Answer::of_batches(batches[0].schema(), batches.clone())
            .head(1 << 20)
            .await
            .unwrap();
        assert!(head.rest.is_none());
        assert_eq!(head.batches, batches);
        assert_eq!(head.rows(), 20);
    }

    #[tokio::test]
    async fn a_long_answer_keeps_its_rest_unread() {
        let batches: Vec<_> = (0..100).map(|i| batch(i * 1000..(i + 1) * 1000)).collect();
        let one = batches[0].get_array_memory_size();
        let head = Answer::of_batches(batches[0].schema(), batches.clone())
            .head(3 * one)
            .await
            .unwrap();
        assert_eq!(head.batches.len(), 4);
        let rest: Vec<_> = head.rest.unwrap().batches.try_collect().await.unwrap();
        assert_eq!(rest, batches[4..]);
    }
}
