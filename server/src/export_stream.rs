//! `Export` answers as they are written: the export runs on the scan lane into a channel two
//! chunks deep ([`cohortdb_engine::export::export_output::ChunkSender`]), so a slow client holds
//! it back and the server keeps a few chunks, not the file.
//!
//! The audit rule is that of every answer ([`crate::audited_requests`]): an export that ends
//! within one chunk is read whole and gets one record with its records; a longer one gets
//! `allowed: streaming` before its first chunk leaves and a second record at its end. The
//! index, built as the records pass, follows the last data chunk.

use std::future::Future;
use std::sync::Arc;

use cohortdb_engine::export::export_output::ChunkSender;
use cohortdb_engine::export::vcf_export::ExportSummary;
use cohortdb_proto::v1 as pb;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::audited_requests::Answering;
use crate::principal::Principal;
use crate::scan_lane::LaneTask;
use crate::server_error::ServerError;
use crate::server_state::ServerState;

/// Export chunks as they are sent.
pub type ExportParts = BoxStream<'static, Result<pb::ExportChunk, ServerError>>;

/// Chunks buffered between the export and the network.
const CHUNKS_AHEAD: usize = 2;

fn data(chunk: Vec<u8>) -> pb::ExportChunk {
    pb::ExportChunk {
        part: Some(pb::export_chunk::Part::Data(chunk)),
    }
}

/// The index parts of a finished export.
fn index_parts(summary: ExportSummary, chunk_bytes: usize) -> Vec<pb::ExportChunk> {
    let index = summary.index.unwrap_or_default();
    index
        .chunks(chunk_bytes.max(1))
        .map(|c| pb::ExportChunk {
            part: Some(pb::export_chunk::Part::Index(c.to_vec())),
        })
        .collect()
}

/// Runs `export` (given the output to write to) for `principal` on the scan lane and streams
/// its parts, audited with `request` as its record's text.
pub async fn audited_export<F, Fut>(
    state: &Arc<ServerState>,
    principal: Principal,
    method: &str,
    request: String,
    export: F,
) -> Result<ExportParts, ServerError>
where
    F: FnOnce(ChunkSender) -> Fut,
    Fut: Future<Output = Result<ExportSummary, ServerError>> + Send + 'static,
{
    let mut answering = Answering::new(state, principal, method, request);
    let chunk_bytes = state.options().chunk_bytes;
    let (sender, mut chunks) = mpsc::channel(CHUNKS_AHEAD);
    let mut task = state
        .scan_lane()
        .spawn(export(ChunkSender::new(chunk_bytes, sender)));
    // Two chunks, or the end: an export of one chunk is whole before anything leaves.
    let mut head = Vec::new();
    while head.len() < 2 {
        match chunks.recv().await {
            Some(chunk) => head.push(chunk),
            None => break,
        }
    }
    if head.len() < 2 {
        let summary = finish(&mut answering, &mut task).await?;
        let parts: Vec<_> = head
            .into_iter()
            .map(data)
            .chain(index_parts(summary, chunk_bytes))
            .collect();
        return Ok(futures::stream::iter(parts.into_iter().map(Ok)).boxed());
    }
    answering.start_stream().await?;
    let tail = Tail {
        answering,
        chunks,
        task,
    };
    let tail = futures::stream::unfold(Some(tail), move |tail| async move {
        let mut tail = tail?;
        match tail.chunks.recv().await {
            Some(chunk) => Some((vec![Ok(data(chunk))], Some(tail))),
            None => {
                let parts = match finish(&mut tail.answering, &mut tail.task).await {
                    Ok(summary) => index_parts(summary, chunk_bytes)
                        .into_iter()
                        .map(Ok)
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                Some((parts, None))
            }
        }
    })
    .flat_map(futures::stream::iter);
    let head = futures::stream::iter(head.into_iter().map(|c| Ok(data(c))));
    Ok(head.chain(tail).boxed())
}

/// The export's outcome once its last chunk is out, written as the request's last record.
async fn finish(
    answering: &mut Answering,
    task: &mut LaneTask<Result<ExportSummary, ServerError>>,
) -> Result<ExportSummary, ServerError> {
    let result = task.join().await.and_then(|r| r);
    answering.end(result.as_ref().map(|s| s.records)).await?;
    result
}

/// The rest of a streaming export.
struct Tail {
    answering: Answering,
    chunks: mpsc::Receiver<Vec<u8>>,
    task: LaneTask<Result<ExportSummary, ServerError>>,
}
