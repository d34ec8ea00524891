//! The workers a coordinator plans onto. A pool is made from the URLs the operator gives; each
//! worker must answer and run this very build ([`BUILD`]), or the pool is refused with a
//! message naming it. While the pool lives, a background task asks every worker for its build
//! once a second: a lost worker leaves the list the planner sees (a query it was running fails
//! with [`crate::EngineError::WorkerLost`]), a worker that comes back (the same build) rejoins it.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion_distributed::grpc::{DefaultChannelResolver, create_worker_client};
use datafusion_distributed::{GetWorkerInfoRequest, WorkerResolver};
use url::Url;

use crate::cluster::cluster_secret::ClusterSecret;
use crate::error::{EngineError, Result};

/// The build a worker must share with its coordinator: the crate version and the commit it was
/// built from (a plan's encoding, functions and policy are those of one build).
pub const BUILD: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("COHORTDB_BUILD_COMMIT")
);

/// How long a worker has to answer a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the workers are probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Workers of one cluster, and the secret plans are sent with.
pub struct WorkerPool {
    workers: Vec<Url>,
    secret: ClusterSecret,
    /// The workers that answered the last probe, in the order given.
    live: RwLock<Vec<Url>>,
    channels: DefaultChannelResolver,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.workers)
            .field("live", &self.live())
            .finish_non_exhaustive()
    }
}

/// A worker's URL from what an operator writes: `host:port` or `http://host:port`.
pub fn worker_url(text: &str) -> Result<Url> {
    let text = text.trim();
    let full = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&full)
        .map_err(|e| EngineError::InvalidArgument(format!("worker {text:?}: {e}")))?;
    let port = match text.contains("://") {
        true => url.port_or_known_default(),
        false => url.port(),
    };
    if url.scheme() != "http" || url.host().is_none() || port.is_none() {
        return Err(EngineError::InvalidArgument(format!(
            "worker {text:?}: expected host:port or http://host:port"
        )));
    }
    Ok(url)
}

impl WorkerPool {
    /// The pool of `workers` (see [`worker_url`]), after checking that each answers and runs
    /// [`BUILD`]; probed in the background from then on.
    pub async fn connect(workers: &[String], secret: ClusterSecret) -> Result<Arc<Self>> {
        if workers.is_empty() {
            return Err(EngineError::InvalidArgument(
                "no worker given (--workers host:port,...)".into(),
            ));
        }
        let workers = workers
            .iter()
            .map(|w| worker_url(w))
            .collect::<Result<Vec<_>>>()?;
        let pool = Arc::new(Self {
            live: RwLock::new(Vec::new()),
            workers,
            secret,
            channels: DefaultChannelResolver::default(),
        });
        let probes = pool.probe_all().await;
        for (url, probe) in pool.workers.iter().zip(&probes) {
            if let Err(reason) = probe {
                return Err(EngineError::InvalidArgument(format!(
                    "worker {url}: {reason}"
                )));
            }
        }
        pool.set_live(&probes);
        tokio::spawn(follow(Arc::downgrade(&pool)));
        Ok(pool)
    }

    /// The workers that answered the last probe.
    pub fn live(&self) -> Vec<Url> {
        self.live.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// Probes every worker now and updates [`WorkerPool::live`] (a caller that saw a worker
    /// fail calls it, so the next query plans without waiting for the background probe).
    pub async fn refresh(&self) {
        let probes = self.probe_all().await;
        self.set_live(&probes);
    }

    /// The workers that did not answer the last probe.
    pub fn down(&self) -> Vec<Url> {
        let live = self.live();
        self.workers
            .iter()
            .filter(|u| !live.contains(u))
            .cloned()
            .collect()
    }

    /// The error of a query when no worker answers.
    pub(crate) fn none_answers(&self) -> EngineError {
        let workers: Vec<&str> = self.workers.iter().map(Url::as_str).collect();
        EngineError::WorkerLost(format!(
            "no worker of the cluster answers ({})",
            workers.join(", ")
        ))
    }

    /// The number of workers given.
    pub fn size(&self) -> usize {
        self.workers.len()
    }

    /// The secret sent with plans.
    pub fn secret(&self) -> &ClusterSecret {
        &self.secret
    }

    /// The channels to the workers, shared by every session of the pool.
    pub(crate) fn channels(&self) -> DefaultChannelResolver {
        self.channels.clone()
    }

    /// The resolver a distributed session asks for workers.
    pub(crate) fn resolver(self: &Arc<Self>) -> WorkerResolution {
        WorkerResolution(self.clone())
    }

    /// Keeps the workers that answered, and those too busy to answer in time that were live
    /// (a worker's threads may all be running a query: slow is not lost).
    fn set_live(&self, probes: &[Probe]) {
        let before = self.live();
        let live = self
            .workers
            .iter()
            .zip(probes)
            .filter(|(u, p)| match p {
                Ok(()) => true,
                Err(Unanswered::Late(_)) => before.contains(u),
                Err(Unanswered::Lost(_)) => false,
            })
            .map(|(u, _)| u.clone())
            .collect();
        if let Ok(mut l) = self.live.write() {
            *l = live;
        }
    }

    async fn probe_all(&self) -> Vec<Probe> {
        futures::future::join_all(self.workers.iter().map(|u| self.probe(u))).await
    }

    /// Whether the worker at `url` answers, running this build.
    async fn probe(&self, url: &Url) -> Probe {
        let ask = async {
            let channel = self.channels.get_channel(url).await?;
            create_worker_client(channel)
                .get_worker_info(GetWorkerInfoRequest {})
                .await
        };
        let info = match tokio::time::timeout(PROBE_TIMEOUT, ask).await {
            Err(_) => return Err(Unanswered::Late(format!("no answer in {PROBE_TIMEOUT:?}"))),
            Ok(Err(e)) => {
                let reason = e.find_root().to_string();
                return Err(Unanswered::Lost(format!("unreachable: {reason}")));
            }
            Ok(Ok(info)) => info,
        };
        if info.version != BUILD {
            return Err(Unanswered::Lost(format!(
                "runs cohortdb build {:?}, this coordinator build {BUILD:?}: \
                 coordinator and workers must run the same build",
                info.version
            )));
        }
        Ok(())
    }
}

/// Why a worker did not pass a probe.
#[derive(Debug)]
enum Unanswered {
    /// It did not answer in time.
    Late(String),
    /// It cannot be reached, or runs another build.
    Lost(String),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Late(reason) | Self::Lost(reason) => f.write_str(reason),
        }
    }
}

/// What a probe of one worker found.
type Probe = std::result::Result<(), Unanswered>;

/// Probes the pool's workers until the pool is dropped.
async fn follow(pool: Weak<WorkerPool>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(pool) = pool.upgrade() else { return };
        pool.refresh().await;
    }
}

/// [`WorkerResolver`] of a pool: its live workers.
pub(crate) struct WorkerResolution(Arc<WorkerPool>);

impl WorkerResolver for WorkerResolution {
    fn get_urls(&self) -> std::result::Result<Vec<Url>, DataFusionError> {
        let live = self.0.live();
        if live.is_empty() {
            return Err(DataFusionError::External(Box::new(self.0.none_answers())));
        }
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_urls_take_host_and_port() {
        assert_eq!(
            worker_url("127.0.0.1:7001").unwrap().as_str(),
            "http://127.0.0.1:7001/"
        );
        assert!(worker_url("http://w1:80").is_ok());
        for bad in ["w1", "https://w1:443", "ftp://w1:21", ":7001"] {
            assert!(worker_url(bad).is_err(), "{bad}");
        }
    }
}
