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
        let principal = scope.principal.clone();
        // Written if the request is dropped before it completes (deadline, client gone).
        let mut pending = self.audit_on_drop(&principal, method, &request);
        let started = Instant::now();
        let head = async {
            let answer = match lane {
                Lane::Lookup => work(scope, message).await?,
                Lane::Scan => self.scan_lane().answer(work(scope, message)).await?,
            };
            answer.head(self.options().chunk_bytes).await
        }
        .await;
        let head = match head {
            Err(e) => Err(self.worker_lost(e).await),
            ok => ok,
        };
        let head = match head {
            Ok(head) => head,
            Err(e) => {
                pending.disarm();
                self.audit(Some(&principal), method, request, Err(&e))
                    .await?;
                self.answered(method, &principal, started, false);
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
            pending.disarm();
            self.audit(Some(&principal), method, request, Ok(rows))
                .await?;
            self.answered(method, &principal, started, true);
            return Ok(Answer::table(schema, batches));
        };
        if let Err(e) = self
            .audit_stream_start(&principal, method, request.clone())
            .await
        {
            pending.disarm();
            return Err(e);
        }
        pending.rows(rows);
        let tail = Streaming {
            state: self.clone(),
            principal,
            method: method.to_string(),
            request,
            rows,
            started,
            rest: rest.batches,
            pending,
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

    /// The record a request gets when it is dropped before it is answered.
    pub(crate) fn audit_on_drop(
        &self,
        principal: &Principal,
        method: &str,
        request: &str,
    ) -> AuditOnDrop {
        AuditOnDrop {
            audit: self.audit_log().clone(),
            metrics: self.metrics().clone(),
            event: Some(AuditEvent {
                principal: principal.name.clone(),
                project: principal.project.clone(),
                tier: principal.tier.name().to_string(),
                method: method.to_string(),
                request: self.pseudonymized(request),
                rows: 0,
                decision: "cancelled: deadline exceeded or client gone".into(),
            }),
        }
    }

    /// The latency of an answered request, and its log line.
    pub(crate) fn answered(&self, method: &str, principal: &Principal, started: Instant, ok: bool) {
        let seconds = started.elapsed().as_secs_f64();
        self.metrics()
            .latency(method, principal.tier.name(), seconds);
        tracing::info!(
            method,
            principal = principal.name,
            tier = principal.tier.name(),
            ok,
            duration_us = (seconds * 1e6) as u64,
            "answered"
        );
    }
}

/// The rest of a streaming answer, and what its end record needs.
struct Streaming {
    state: Arc<ServerState>,
    principal: Principal,
    method: String,
    request: String,
    /// Rows sent so far.
    rows: u64,
    started: Instant,
    rest: BatchStream,
    pending: AuditOnDrop,
}

impl Streaming {
    /// The next item to send, and whether more may follow; `None` at a clean end.
    async fn next(
        &mut self,
    ) -> Option<(Result<arrow::record_batch::RecordBatch, ServerError>, bool)> {
        let error = match self.rest.next().await {
            Some(Ok(batch)) => match self.state.flush_charges(&self.principal).await {
                Ok(()) => {
                    self.rows += batch.num_rows() as u64;
                    self.pending.rows(self.rows);
                    return Some((Ok(batch), true));
                }
                Err(e) => e,
            },
            Some(Err(e)) => self.state.worker_lost(e).await,
            None => {
                return match self.end(Ok(())).await {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), false)),
                };
            }
        };
        let e = self.end(Err(error)).await.err()?;
        Some((Err(e), false))
    }

    /// Writes the end record: `outcome`, or the audit trail's own failure.
    async fn end(&mut self, outcome: Result<(), ServerError>) -> Result<(), ServerError> {
        self.pending.disarm();
        let rows = outcome.as_ref().map(|()| self.rows);
        let (state, principal, method) = (&self.state, &self.principal, &self.method);
        let audited = state
            .audit(Some(principal), method, self.request.clone(), rows)
            .await;
        state.answered(method, principal, self.started, outcome.is_ok());
        outcome.and(audited)
    }
}

/// Appends its event, from a new task, when dropped armed: the record of a request whose
/// future or answer was dropped part-way; it counts the request as cancelled.
pub(crate) struct AuditOnDrop {
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
    event: Option<AuditEvent>,
}

impl AuditOnDrop {
    /// The request ended and is audited elsewhere.
    pub(crate) fn disarm(&mut self) {
        self.event = None;
    }

    /// `rows` have been sent.
    fn rows(&mut self, rows: u64) {
        if let Some(event) = &mut self.event {
            event.rows = rows;
        }
    }
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
