//! Record batches as the `ArrowChunk` messages of `cohortdb.v1`: one Arrow IPC stream split
//! into chunks of whole IPC messages, each at most a given size.

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{EncodedData, IpcWriteOptions, write_message};
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use cohortdb_proto::v1::ArrowChunk;
use futures::TryStreamExt;

use crate::server_error::ServerError;

/// The default largest chunk: 4 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Room left in a chunk for a message's header and padding.
const HEADER_ROOM: usize = 64 << 10;

/// `batches` (of `schema`) as IPC stream bytes cut into chunks of at most `chunk_bytes`
/// (batches are split by rows to fit; a single row larger than a chunk gets its own chunk).
pub async fn arrow_chunks(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    chunk_bytes: usize,
) -> Result<Vec<ArrowChunk>, ServerError> {
    let chunk_bytes = chunk_bytes.max(2 * HEADER_ROOM);
    let messages: Vec<_> = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(chunk_bytes - HEADER_ROOM)
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .try_collect()
        .await
        .map_err(|e| ServerError::InvalidArgument(format!("encoding results: {e}")))?;
    let options = IpcWriteOptions::default();
    let mut chunks = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for message in messages {
        let mut framed =
            Vec::with_capacity(message.data_header.len() + message.data_body.len() + 16);
        let encoded = EncodedData {
            ipc_message: message.data_header.to_vec(),
            arrow_data: message.data_body.to_vec(),
        };
        write_message(&mut framed, encoded, &options)?;
        if !current.is_empty() && current.len() + framed.len() > chunk_bytes {
            chunks.push(ArrowChunk {
                ipc: std::mem::take(&mut current),
            });
        }
        current.extend_from_slice(&framed);
    }
    // The end-of-stream marker.
    current.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    chunks.push(ArrowChunk { ipc: current });
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::reader::StreamReader;

    #[tokio::test]
    async fn chunks_concatenate_to_one_stream_and_respect_the_limit() {
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
        let chunks = arrow_chunks(schema, vec![batch.clone()], limit)
            .await
            .unwrap();
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

    #[tokio::test]
    async fn an_empty_result_is_a_schema_and_an_end() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let chunks = arrow_chunks(schema.clone(), vec![], DEFAULT_CHUNK_BYTES)
            .await
            .unwrap();
        let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.ipc).collect();
        let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        assert_eq!(reader.schema(), schema);
        assert_eq!(reader.count(), 0);
    }
}
