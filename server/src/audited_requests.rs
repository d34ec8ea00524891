//! The way every answer leaves: run on its lane, audited before its first byte leaves, and
//! streamed batch by batch.
//!
//! An answer that ends within one chunk ([`crate::server_state::ServerOptions::chunk_bytes`])
//! is read whole and gets one audit record with its rows, as before. A longer one streams: a
//! record `allowed: streaming` is written before its first batch leaves, and a second record
//! once it ends, `allowed` with every row sent (or `failed: ...`, or `cancelled: ...` with the
//! rows sent so far). The aggregate tier's privacy charges are written before each batch
//! leaves, so no noisy count leaves with its charge unwritten.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use cohortdb_store::audit_log::{AuditEvent, AuditLog};
use futures::StreamExt;
use tonic::metadata::MetadataMap;

use crate::answer_stream::{Answer, BatchStream, Head};
use crate::audit_text::AuditedRequest;
use crate::metrics::Metrics;
use crate::principal::Principal;
use crate::server_error::ServerError;
use crate::server_state::{Lane, RequestScope, ServerState};

impl ServerState {
    /// Runs `work` for an authenticated caller on `lane`, audits it whatever the outcome (the
    /// record holds `message` as [`ServerState::message_scope`] writes it), and returns its
    /// answer, streaming when it is longer than a chunk (see the module's text).
    pub async fn audited<M, F, Fut>(
        self: &Arc<Self>,
        metadata: &MetadataMap,
        method: &str,
        mut message: M,
        lane: Lane,
        work: F,
    ) -> Result<Answer, ServerError>
    where
        M: AuditedRequest,
        F: FnOnce(RequestScope, M) -> Fut,
        Fut: Future<Output = Result<Answer, ServerError>> + Send + 'static,
    {
        let (scope, request) = self.message_scope(metadata, method, &mut message).await?;
        let mut answering = Answering::new(self, scope.principal.clone(), method, request);
        let head = async {
            let answer = match lane {
                Lane::Lookup => work(scope, message).await?,
                Lane::Scan => self.scan_lane().answer(work(scope, message)).await?,
            };
            answer.head(self.options().chunk_bytes).await
        }
        .await;
        let head = match head {
            Ok(head) => head,
            Err(e) => {
                let e = self.worker_lost(e).await;
                answering.end(Err(&e)).await?;
                return Err(e);
            }
        };
        let rows = head.rows();
        let Head {
            schema,
            batches,
            rest,
        } = head;
        let Some(rest) = rest else {
            answering.end(Ok(rows)).await?;
            return Ok(Answer::table(schema, batches));
        };
        answering.start_stream().await?;
        answering.sent(rows);
        let tail = Streaming {
            answering,
            rows,
            rest: rest.batches,
        };
        let tail = futures::stream::unfold(Some(tail), |tail| async move {
            let mut tail = tail?;
            let (item, next) = tail.next().await?;
            Some((item, next.then_some(tail)))
        });
        let head = futures::stream::iter(batches.into_iter().map(Ok));
        Ok(Answer {
            schema,
            batches: head.chain(tail).boxed(),
        })
    }
}

/// A request being answered: what its audit records need, and the record written if it is
/// dropped before it ends (a deadline, a client gone).
pub(crate) struct Answering {
    state: Arc<ServerState>,
    principal: Principal,
    method: String,
    request: String,
    started: Instant,
    pending: AuditOnDrop,
}

impl Answering {
    /// `principal`'s request of `method` (its record's text `request`), from now.
    pub(crate) fn new(
        state: &Arc<ServerState>,
        principal: Principal,
        method: &str,
        request: String,
    ) -> Self {
        let pending = AuditOnDrop {
            audit: state.audit_log().clone(),
            metrics: state.metrics().clone(),
            event: Some(AuditEvent {
                principal: principal.name.clone(),
                project: principal.project.clone(),
                tier: principal.tier.name().to_string(),
                method: method.to_string(),
                request: state.pseudonymized(&request),
                rows: 0,
                decision: "cancelled: deadline exceeded or client gone".into(),
            }),
        };
        Self {
            state: state.clone(),
            principal,
            method: method.to_string(),
            request,
            started: Instant::now(),
            pending,
        }
    }

    /// The caller.
    pub(crate) fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The server's state.
    pub(crate) fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// `rows` have been sent (the count a cancelled record gives).
    pub(crate) fn sent(&mut self, rows: u64) {
        if let Some(event) = &mut self.pending.event {
            event.rows = rows;
        }
    }

    /// The first record of an answer that streams, before its first part leaves.
    pub(crate) async fn start_stream(&mut self) -> Result<(), ServerError> {
        let started = self
            .state
            .audit_stream_start(&self.principal, &self.method, self.request.clone())
            .await;
        if started.is_err() {
            self.pending.event = None;
        }
        started
    }

    /// The request's last record (`outcome`: the rows returned, or the error), its latency
    /// and its log line; the audit trail's own failure, if it has one.
    pub(crate) async fn end(
        &mut self,
        outcome: Result<u64, &ServerError>,
    ) -> Result<(), ServerError> {
        self.pending.event = None;
        let (state, principal, method) = (&self.state, &self.principal, self.method.as_str());
        let audited = state
            .audit(Some(principal), method, self.request.clone(), outcome)
            .await;
        let seconds = self.started.elapsed().as_secs_f64();
        state
            .metrics()
            .latency(method, principal.tier.name(), seconds);
        tracing::info!(
            method,
            principal = principal.name,
            tier = principal.tier.name(),
            ok = outcome.is_ok(),
            duration_us = (seconds * 1e6) as u64,
            "answered"
        );
        audited
    }
}

/// The rest of a streaming answer.
struct Streaming {
    answering: Answering,
    /// Rows sent so far.
    rows: u64,
    rest: BatchStream,
}

impl Streaming {
    /// The next item to send, and whether more may follow; `None` at a clean end.
    async fn next(
        &mut self,
    ) -> Option<(Result<arrow::record_batch::RecordBatch, ServerError>, bool)> {
        let state = self.answering.state().clone();
        let error = match self.rest.next().await {
            Some(Ok(batch)) => match state.flush_charges(self.answering.principal()).await {
                Ok(()) => {
                    self.rows += batch.num_rows() as u64;
                    self.answering.sent(self.rows);
                    return Some((Ok(batch), true));
                }
                Err(e) => e,
            },
            Some(Err(e)) => state.worker_lost(e).await,
            None => {
                return match self.answering.end(Ok(self.rows)).await {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), false)),
                };
            }
        };
        let audited = self.answering.end(Err(&error)).await;
        Some((Err(audited.err().unwrap_or(error)), false))
    }
}

/// Appends its event, from a new task, when dropped armed: the record of a request whose
/// future or answer was dropped part-way; it counts the request as cancelled.
struct AuditOnDrop {
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
    event: Option<AuditEvent>,
}

impl Drop for AuditOnDrop {
    fn drop(&mut self) {
        let Some(event) = self.event.take() else {
            return;
        };
        self.metrics
            .request(&event.method, &event.tier, "cancelled");
        let audit = self.audit.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = audit.append(event).await {
                    tracing::error!("audit record of a cancelled request: {e}");
                }
            });
        }
    }
}
