//! The scan lane: a runtime of its own for the engine work of requests that scan (regions,
//! SQL, exports, tests), on threads the OS runs at a lower priority than the server's.
//!
//! Point lookups (the carriers of one variant) and all network I/O stay on the server's
//! runtime, so under load a lookup never waits behind a scan for a CPU: scans take what the
//! lookups leave (the kernel still gives a niced thread about a tenth of a busy CPU, so scans
//! are slowed, never starved). Running CPU-bound DataFusion work off the runtime that serves
//! the network is also what DataFusion recommends (its `thread_pools` example).

use std::future::Future;

use futures::StreamExt;

use crate::answer_stream::Answer;
use crate::server_error::ServerError;

/// Batches computed ahead of the reader: the bound on what a slow client holds in memory.
const BATCHES_AHEAD: usize = 2;

/// Niceness of the scan threads, in `thread-priority`'s cross-platform scale (0..=99, 50 the
/// default): below the default is a positive nice value (a lower priority).
const SCAN_PRIORITY: u8 = 25;

/// The scan lane's runtime (none: work runs where it is called); shut down in the background
/// when dropped (a runtime cannot be dropped from async code).
#[derive(Debug)]
pub struct ScanLane {
    runtime: Option<tokio::runtime::Runtime>,
}

impl ScanLane {
    /// A lane of `threads` worker threads; with 0, no lane: work runs on the caller's runtime.
    pub fn new(threads: usize) -> Result<Self, ServerError> {
        if threads == 0 {
            return Ok(Self { runtime: None });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("cohortdb-scan")
            .enable_all()
            .on_thread_start(|| {
                // Without the right to lower a priority the lane just runs at the default one.
                if let Ok(priority) = SCAN_PRIORITY.try_into() {
                    let _ = thread_priority::set_current_thread_priority(
                        thread_priority::ThreadPriority::Crossplatform(priority),
                    );
                }
            })
            .build()
            .map_err(|e| ServerError::InvalidArgument(format!("scan threads: {e}")))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `work` on the lane and waits for it; dropping the returned future (a deadline, a
    /// client gone) stops the work too.
    pub async fn run<F>(&self, work: F) -> Result<F::Output, ServerError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.runtime {
            None => Ok(work.await),
            Some(_) => self.spawn(work).join().await,
        }
    }

    /// Starts `work` on the lane (on the caller's runtime without one); dropping the returned
    /// task stops it.
    pub fn spawn<F>(&self, work: F) -> LaneTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = match &self.runtime {
            Some(runtime) => runtime.spawn(work),
            None => tokio::spawn(work),
        };
        LaneTask { handle }
    }

    /// Runs `work` on the lane, and then the plan of the answer it returns, whose batches
    /// reach the caller through a channel of [`BATCHES_AHEAD`] batches: a slow reader holds the
    /// plan back, so memory stays bounded. Dropping the answer (a deadline, a client gone)
    /// stops the work; an answer whose work died part-way ends with an error, never early.
    pub async fn answer<F>(&self, work: F) -> Result<Answer, ServerError>
    where
        F: Future<Output = Result<Answer, ServerError>> + Send + 'static,
    {
        if self.runtime.is_none() {
            return work.await;
        }
        let (schema_sender, schema) = tokio::sync::oneshot::channel();
        let (sender, receiver) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
        let mut task = self.spawn(async move {
            let mut answer = match work.await {
                Ok(answer) => answer,
                Err(e) => {
                    let _ = schema_sender.send(Err(e));
                    return;
                }
            };
            if schema_sender.send(Ok(answer.schema.clone())).is_err() {
                return;
            }
            while let Some(batch) = answer.batches.next().await {
                if sender.send(batch).await.is_err() {
                    return;
                }
            }
        });
        let schema = match schema.await {
            Ok(schema) => schema?,
            // The work ended without sending anything: it died.
            Err(_) => return Err(task.join().await.err().unwrap_or_else(lost_before_answer)),
        };
        // The task travels with the batches: dropping them aborts it.
        let batches =
            futures::stream::unfold((receiver, Some(task)), |(mut receiver, task)| async move {
                if let Some(batch) = receiver.recv().await {
                    return Some((batch, (receiver, task)));
                }
                // The channel closed: the work ended, or died.
                match task?.join().await {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), (receiver, None))),
                }
            });
        Ok(Answer {
            schema,
            batches: batches.boxed(),
        })
    }
}

/// A task on the lane, aborted when dropped.
#[derive(Debug)]
pub struct LaneTask<T> {
    handle: tokio::task::JoinHandle<T>,
}

impl<T> LaneTask<T> {
    /// Waits for the task's outcome.
    pub async fn join(&mut self) -> Result<T, ServerError> {
        (&mut self.handle)
            .await
            .map_err(|e| ServerError::InvalidArgument(format!("scan task: {e}")))
    }
}

impl<T> Drop for LaneTask<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn lost_before_answer() -> ServerError {
    ServerError::InvalidArgument("scan task: ended without an answer".into())
}

impl Drop for ScanLane {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_stops_it_when_dropped() {
        let lane = ScanLane::new(1).unwrap();
        assert_eq!(lane.run(async { 6 * 7 }).await.unwrap(), 42);
        assert_eq!(ScanLane::new(0).unwrap().run(async { 7 }).await.unwrap(), 7);
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let waiting = lane.run(async move {
            let _ = started.send(());
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let _ = done.send(());
        });
        // Drop the caller's future once the work runs: the work is aborted, so `done` is
        // dropped unsent.
        tokio::select! {
            _ = waiting => unreachable!("the work sleeps for a minute"),
            _ = running => {}
        }
        assert!(finished.await.is_err());
    }
}
