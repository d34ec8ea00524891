//! Record batches as the `ArrowChunk` messages of `cohortdb.v1`: one Arrow IPC stream split
//! into chunks of whole IPC messages, each at most a given size, cut as the batches arrive.

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{
    DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
    write_message,
};
use arrow::record_batch::RecordBatch;
use cohortdb_proto::v1::ArrowChunk;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::answer_stream::Answer;
use crate::server_error::ServerError;

/// The default largest chunk: 4 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Room left in a chunk for a message's header, its framing and padding.
const HEADER_ROOM: usize = 64 << 10;

/// Writes IPC messages straight into chunks, starting a new chunk when the next message would
/// not fit.
struct ChunkWriter {
    limit: usize,
    options: IpcWriteOptions,
    chunks: Vec<ArrowChunk>,
    current: Vec<u8>,
}

impl ChunkWriter {
    fn push(&mut self, message: EncodedData) -> Result<(), ServerError> {
        let size = message.ipc_message.len() + message.arrow_data.len() + 16;
        if !self.current.is_empty() && self.current.len() + size > self.limit {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(self.limit));
            self.chunks.push(ArrowChunk { ipc: full });
        }
        write_message(&mut self.current, message, &self.options)?;
        Ok(())
    }
}

/// One Arrow IPC stream cut into chunks of at most a given size as its batches arrive
/// (batches are split by rows to fit; a single row larger than a chunk gets its own chunk).
/// Each batch is encoded once, into the chunk it lands in.
pub struct ArrowChunker {
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    context: IpcWriteContext,
    writer: ChunkWriter,
}

impl ArrowChunker {
    /// A stream of `schema` in chunks of at most `chunk_bytes`.
    pub fn new(schema: &SchemaRef, chunk_bytes: usize) -> Result<Self, ServerError> {
        let mut chunker = Self {
            generator: IpcDataGenerator::default(),
            tracker: DictionaryTracker::new(false),
            context: IpcWriteContext::default(),
            writer: ChunkWriter {
                limit: chunk_bytes.max(2 * HEADER_ROOM),
                options: IpcWriteOptions::default(),
                chunks: Vec::new(),
                current: Vec::new(),
            },
        };
        let message = chunker.generator.schema_to_bytes_with_dictionary_tracker(
            schema,
            &mut chunker.tracker,
            &chunker.writer.options,
        );
        chunker.writer.push(message)?;
        Ok(chunker)
    }

    /// Adds `batch`; returns the chunks it filled.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<Vec<ArrowChunk>, ServerError> {
        let options = self.writer.options.clone();
        let body_limit = self.writer.limit - HEADER_ROOM;
        let rows = batch.num_rows();
        let bytes = batch.get_array_memory_size().max(1);
        let step = (rows * body_limit / bytes).clamp(1, rows.max(1));
        // Row ranges still to encode, smallest first; a range too big for a chunk is halved.
        let mut pending: Vec<(usize, usize)> = (0..rows)
            .step_by(step)
            .map(|start| (start, step.min(rows - start)))
            .rev()
            .collect();
        while let Some((offset, length)) = pending.pop() {
            let slice = batch.slice(offset, length);
            let (dictionaries, encoded) =
                self.generator
                    .encode(&slice, &mut self.tracker, &options, &mut self.context)?;
            if encoded.arrow_data.len() > body_limit && length > 1 {
                let half = length / 2;
                pending.push((offset + half, length - half));
                pending.push((offset, half));
                continue;
            }
            for message in dictionaries {
                self.writer.push(message)?;
            }
            self.writer.push(encoded)?;
        }
        Ok(std::mem::take(&mut self.writer.chunks))
    }

    /// Ends the stream: the chunks not yet returned, the last with the end-of-stream marker.
    pub fn finish(mut self) -> Vec<ArrowChunk> {
        self.writer
            .current
            .extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let last = std::mem::take(&mut self.writer.current);
        self.writer.chunks.push(ArrowChunk { ipc: last });
        self.writer.chunks
    }
}

/// An answer's batches as chunks of at most `chunk_bytes`, each sent as soon as it is full
/// (or the answer ends).
pub fn chunk_stream(
    answer: Answer,
    chunk_bytes: usize,
) -> Result<BoxStream<'static, Result<ArrowChunk, ServerError>>, ServerError> {
    let chunker = ArrowChunker::new(&answer.schema, chunk_bytes)?;
    let chunks = futures::stream::unfold(
        (Some(chunker), answer.batches),
        |(chunker, mut batches)| async move {
            let mut chunker = chunker?;
            let chunks = match batches.next().await {
                Some(Ok(batch)) => match chunker.push(&batch) {
                    Ok(chunks) => Ok(chunks),
                    Err(e) => return Some((Err(e), (None, batches))),
                },
                Some(Err(e)) => return Some((Err(e), (None, batches))),
                None => return Some((Ok(chunker.finish()), (None, batches))),
            };
            Some((chunks, (Some(chunker), batches)))
        },
    );
    Ok(chunks
        .map_ok(|chunks| futures::stream::iter(chunks.into_iter().map(Ok)))
        .try_flatten()
        .boxed())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::reader::StreamReader;

    /// `batches` (of `schema`) as IPC stream bytes cut into chunks of at most `chunk_bytes`
    /// ([`ArrowChunker`]).
    fn arrow_chunks(
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        chunk_bytes: usize,
    ) -> Result<Vec<ArrowChunk>, ServerError> {
        let mut chunker = ArrowChunker::new(&schema, chunk_bytes)?;
        let mut chunks = Vec::new();
        for batch in &batches {
            chunks.extend(chunker.push(batch)?);
        }
        chunks.extend(chunker.finish());
        Ok(chunks)
    }

    #[test]
    fn chunks_concatenate_to_one_stream_and_respect_the_limit() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let rows = 200_000;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("value {i}")),
                )),
            ],
        )
        .unwrap();
        let limit = 256 << 10;
        let chunks = arrow_chunks(schema, vec![batch.clone()], limit).unwrap();
        assert!(chunks.len() > 5);
        assert!(chunks.iter().all(|c| c.ipc.len() <= limit));
        let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.ipc).collect();
        let read: Vec<RecordBatch> = StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let read = arrow::compute::concat_batches(&batch.schema(), &read).unwrap();
        assert_eq!(read, batch);
    }

    #[test]
    fn an_empty_result_is_a_schema_and_an_end() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let chunks = arrow_chunks(schema.clone(), vec![], DEFAULT_CHUNK_BYTES).unwrap();
        let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.ipc).collect();
        let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        assert_eq!(reader.schema(), schema);
        assert_eq!(reader.count(), 0);
    }
}
