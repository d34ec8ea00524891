//! What every service shares: the engine, the tokens, the audit trail, and the steps of a
//! request (authenticate, choose the principal's engine, run, audit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use cohortdb_engine::EngineError;
use cohortdb_engine::policy::disclosure_control::DisclosureControl;
use cohortdb_engine::{Access, CohortEngine, Tier};
use cohortdb_store::audit_log::{AuditEvent, AuditLog};
use cohortdb_store::privacy_ledger::PrivacyLedger;
use tonic::metadata::MetadataMap;

use crate::audit_pseudonyms::AuditPseudonyms;
use crate::audit_text::{AuditedRequest, audit_text};
use crate::metrics::{Gauges, Metrics};
use crate::principal::{Principal, TokenRegistry};
use crate::scan_lane::ScanLane;
use crate::server_error::ServerError;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Counts from 1 to `min_count - 1` are suppressed for the aggregate tier.
    pub min_count: u32,
    /// The largest `ArrowChunk` or `ExportChunk`, in bytes.
    pub chunk_bytes: usize,
    /// The largest message the server decodes or encodes, in bytes.
    pub max_message_bytes: usize,
    /// Development only: requests without a token run as this principal.
    pub anonymous: Option<Principal>,
    /// How often the server looks for a newer store version (new data, withdrawals) and
    /// moves to it.
    pub refresh_interval: std::time::Duration,
    /// Threads of the scan lane ([`crate::scan_lane`]); 0 runs scans on the server's own
    /// threads, with no priority between lookups and scans.
    pub scan_threads: usize,
    /// The standard deviation of the noise on the aggregate tier's counts.
    pub noise_sd: f64,
    /// The privacy budget (zCDP rho) of a project whose `[projects.NAME]` sets none.
    pub privacy_budget: f64,
    /// TLS on the port (none: plaintext, for a trusted network or a TLS proxy in front).
    pub tls: Option<crate::transport_security::ServerTls>,
    /// On shutdown, how long health reports NOT_SERVING while requests are still answered
    /// (load balancers stop sending new ones) before the server drains and stops.
    pub drain_grace: std::time::Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            min_count: cohortdb_engine::policy::access_policy::DEFAULT_MIN_COUNT,
            chunk_bytes: crate::arrow_chunks::DEFAULT_CHUNK_BYTES,
            max_message_bytes: 16 << 20,
            anonymous: None,
            refresh_interval: std::time::Duration::from_secs(5),
            scan_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            noise_sd: cohortdb_engine::policy::disclosure_control::DEFAULT_NOISE_SD,
            privacy_budget: cohortdb_engine::policy::disclosure_control::DEFAULT_PRIVACY_BUDGET,
            tls: None,
            drain_grace: std::time::Duration::from_secs(5),
        }
    }
}

/// The state shared by the services.
#[derive(Debug)]
pub struct ServerState {
    /// The engine over the newest snapshot seen (see [`ServerState::refresh`]).
    engine: RwLock<CohortEngine>,
    tokens: TokenRegistry,
    audit: Arc<AuditLog>,
    /// How participant IDs are written to the audit trail.
    pseudonyms: AuditPseudonyms,
    /// Requests and latencies for `/metrics`.
    metrics: Arc<Metrics>,
    options: ServerOptions,
    /// Engines per (project, tier, store version): the record tier's carry the project's
    /// pseudonyms.
    engines: Mutex<HashMap<(String, Tier, u64), CohortEngine>>,
    /// Where scans run (see [`crate::scan_lane`]).
    scan: ScanLane,
    /// The disclosure control of each project that has an aggregate-tier principal.
    controls: tokio::sync::Mutex<HashMap<String, Arc<DisclosureControl>>>,
}

/// Where a request's engine work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// On the server's own threads: point lookups, answered first under load.
    Lookup,
    /// On the lower-priority scan threads: everything that reads regions or runs SQL.
    Scan,
}

/// A request under way: who asked, and the engine that answers them.
#[derive(Debug)]
pub struct RequestScope {
    /// The caller.
    pub principal: Principal,
    /// The caller's engine with a fresh disclosure guard.
    pub engine: CohortEngine,
}

/// The bearer token of a request's metadata.
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl ServerState {
    /// The state over `engine` (opened by the caller at the snapshot to serve).
    pub fn new(
        engine: CohortEngine,
        tokens: TokenRegistry,
        options: ServerOptions,
    ) -> Result<Self, ServerError> {
        let audit = Arc::new(AuditLog::new(engine.store().location().clone()));
        let pseudonyms = match tokens.audit_secret() {
            Some(secret) => AuditPseudonyms::new(secret.as_bytes()),
            None => {
                tracing::warn!(
                    "the tokens file sets no audit_secret: participant IDs in the audit trail \
                     get pseudonyms under a secret of this process only"
                );
                AuditPseudonyms::random()
            }
        };
        Ok(Self {
            engine: RwLock::new(engine),
            tokens,
            audit,
            pseudonyms,
            metrics: Default::default(),
            engines: Mutex::new(HashMap::new()),
            scan: ScanLane::new(options.scan_threads)?,
            controls: Default::default(),
            options,
        })
    }

    /// The server's options.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The scan lane.
    pub(crate) fn scan_lane(&self) -> &ScanLane {
        &self.scan
    }

    /// The store's audit trail.
    pub(crate) fn audit_log(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// The server's counters.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The server's metrics in Prometheus' text format ([`crate::metrics`]).
    pub fn metrics_text(&self) -> String {
        let engine = self.admin_engine();
        let cache = engine.site_cache();
        let (cache_hits, cache_misses) = cache.hits_and_misses();
        self.metrics.render(Gauges {
            store_version: engine.snapshot().version(),
            cache_bytes: cache.bytes() as u64,
            cache_budget_bytes: cache.budget() as u64,
            cache_hits,
            cache_misses,
            audit_queue: self.audit.queued(),
        })
    }

    /// The engine with every right over the newest snapshot seen (store information for
    /// admins).
    pub fn admin_engine(&self) -> CohortEngine {
        // A panic while holding the lock cannot leave a half-written engine: keep using it.
        self.engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Moves to the store's newest version when there is one, so new data and withdrawals
    /// reach every later request; returns the version served. Requests under way finish on
    /// the snapshot they started with. The cache of decoded rows carries over (fragments
    /// are immutable).
    pub async fn refresh(&self) -> Result<u64, ServerError> {
        // Charges other servers of the store wrote since the last look.
        let controls: Vec<_> = self.controls.lock().await.values().cloned().collect();
        for control in controls {
            control.reload().await?;
        }
        let current = self.admin_engine();
        let latest = current.store().snapshot().await?;
        let version = latest.version();
        if version == current.snapshot().version() {
            return Ok(version);
        }
        let engine = CohortEngine::open_at(current.store().clone(), latest)
            .await?
            .with_site_cache(current.site_cache().clone())
            .with_distribution(current.distribution().cloned())
            .with_max_page_size(current.max_page_size());
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
        if let Ok(mut engines) = self.engines.lock() {
            engines.retain(|key, _| key.2 == version);
        }
        tracing::info!(version, "serving a newer store version");
        Ok(version)
    }

    /// The principal of a bearer token.
    pub fn principal_of_token(&self, token: &str) -> Result<Principal, ServerError> {
        self.tokens
            .principal(token)
            .cloned()
            .ok_or_else(|| ServerError::Unauthenticated("unknown bearer token".into()))
    }

    /// The principal of a request's `authorization: Bearer TOKEN` metadata.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, ServerError> {
        match bearer_token(metadata) {
            Some(token) => self.principal_of_token(token),
            None => self.options.anonymous.clone().ok_or_else(|| {
                ServerError::Unauthenticated("no authorization: Bearer token".into())
            }),
        }
    }

    /// The engine that answers `principal`, with a fresh disclosure guard.
    pub async fn engine_for(&self, principal: &Principal) -> Result<CohortEngine, ServerError> {
        let base = self.admin_engine();
        let key = (
            principal.project.clone(),
            principal.tier,
            base.snapshot().version(),
        );
        if let Some(engine) = self.engines.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return Ok(engine.for_request());
        }
        let disclosure = match principal.tier {
            Tier::Aggregate => Some(self.disclosure_control(&principal.project).await?),
            _ => None,
        };
        let access = Access {
            tier: principal.tier,
            min_count: self.options.min_count,
            pseudonym_secret: (principal.tier == Tier::Record)
                .then(|| self.tokens.secret(&principal.project).map(str::to_string))
                .flatten(),
            disclosure,
            phenotypes: self.tokens.phenotypes(&principal.project).cloned(),
        };
        // One HMAC per sample for the record tier: off the async threads.
        let engine = tokio::task::spawn_blocking(move || base.with_access(access))
            .await
            .map_err(|e| ServerError::InvalidArgument(format!("engine setup: {e}")))??;
        if let Ok(mut engines) = self.engines.lock() {
            engines.insert(key, engine.clone());
        }
        Ok(engine.for_request())
    }

    /// The disclosure control of `project`: the store's noise key and the project's ledger,
    /// read once per server; later charges by other servers are read on every refresh.
    pub async fn disclosure_control(
        &self,
        project: &str,
    ) -> Result<Arc<DisclosureControl>, ServerError> {
        let mut controls = self.controls.lock().await;
        if let Some(control) = controls.get(project) {
            return Ok(control.clone());
        }
        let ledger = PrivacyLedger::new(self.admin_engine().store().location().clone());
        let budget = self
            .tokens
            .privacy_budget(project)
            .unwrap_or(self.options.privacy_budget);
        let control = Arc::new(
            DisclosureControl::open(ledger, project, budget, self.options.noise_sd).await?,
        );
        controls.insert(project.to_string(), control.clone());
        Ok(control)
    }

    /// Writes the privacy charges of `principal`'s project made so far (aggregate tier).
    pub(crate) async fn flush_charges(&self, principal: &Principal) -> Result<(), ServerError> {
        if principal.tier != Tier::Aggregate {
            return Ok(());
        }
        let control = self.controls.lock().await.get(&principal.project).cloned();
        if let Some(control) = control {
            control.flush().await?;
        }
        Ok(())
    }

    /// Authenticates a request and prepares its engine.
    pub async fn scope(&self, metadata: &MetadataMap) -> Result<RequestScope, ServerError> {
        let principal = self.authenticate(metadata)?;
        let engine = self.engine_for(&principal).await?;
        Ok(RequestScope { principal, engine })
    }

    /// [`ServerState::scope`], with a refusal written to the audit trail.
    pub async fn audited_scope(
        &self,
        metadata: &MetadataMap,
        method: &str,
        request: &str,
    ) -> Result<RequestScope, ServerError> {
        match self.scope(metadata).await {
            Ok(scope) => Ok(scope),
            Err(e) => {
                self.audit(None, method, request.to_string(), Err(&e))
                    .await?;
                Err(e)
            }
        }
    }

    /// [`ServerState::audited_scope`] for a request message, and the text its record holds
    /// ([`crate::audit_text`]): its long sample lists are kept by the audit trail only once the
    /// caller is authenticated.
    pub async fn message_scope<M: AuditedRequest>(
        &self,
        metadata: &MetadataMap,
        method: &str,
        message: &mut M,
    ) -> Result<(RequestScope, String), ServerError> {
        match self.scope(metadata).await {
            Ok(scope) => Ok((
                scope,
                audit_text(message, &self.pseudonyms, Some(&self.audit)).await?,
            )),
            Err(e) => {
                let text = audit_text(message, &self.pseudonyms, None).await?;
                self.audit(None, method, text, Err(&e)).await?;
                Err(e)
            }
        }
    }

    /// `text` with every word that is a registered sample ID written as its audit pseudonym
    /// ([`crate::audit_pseudonyms`]); pseudonyms are not IDs, so a second pass changes nothing.
    pub(crate) fn pseudonymized(&self, text: &str) -> String {
        let engine = self.admin_engine();
        self.pseudonyms
            .rewrite(text, |word: &str| engine.is_sample_id(word))
    }

    /// Writes the audit record of a request: `outcome` is the rows returned or the error.
    /// A request whose record cannot be written fails, so nothing leaves unaudited.
    pub async fn audit(
        &self,
        principal: Option<&Principal>,
        method: &str,
        request: String,
        outcome: Result<u64, &ServerError>,
    ) -> Result<(), ServerError> {
        self.record(principal, method, request, outcome, false)
            .await
    }

    /// The first record of an answer that streams (see `audited_requests`): `allowed:
    /// streaming`, written before its first batch leaves; not counted in the metrics (its end
    /// record is).
    pub(crate) async fn audit_stream_start(
        &self,
        principal: &Principal,
        method: &str,
        request: String,
    ) -> Result<(), ServerError> {
        self.record(Some(principal), method, request, Ok(0), true)
            .await
    }

    async fn record(
        &self,
        principal: Option<&Principal>,
        method: &str,
        request: String,
        outcome: Result<u64, &ServerError>,
        streaming: bool,
    ) -> Result<(), ServerError> {
        // The privacy ledger first: no answer leaves with its charge unwritten.
        let flushed = match principal {
            Some(p) => self.flush_charges(p).await,
            None => Ok(()),
        };
        let (principal, project, tier) = match principal {
            Some(p) => (p.name.clone(), p.project.clone(), p.tier.name().to_string()),
            None => Default::default(),
        };
        let flush_error = flushed.err();
        let outcome = match (&flush_error, outcome) {
            (Some(e), _) => Err(e),
            (None, outcome) => outcome,
        };
        let (rows, decision) = match outcome {
            Ok(rows) if streaming => (rows, "allowed: streaming".into()),
            Ok(rows) => (rows, "allowed".to_string()),
            Err(e) => (0, e.decision()),
        };
        let outcome = decision.split(':').next().unwrap_or_default();
        let counted_tier = if tier.is_empty() {
            "none"
        } else {
            tier.as_str()
        };
        if !streaming || flush_error.is_some() {
            self.metrics.request(method, counted_tier, outcome);
        }
        // Participant IDs the caller typed, or an error repeats, as pseudonyms.
        let (request, decision) = (self.pseudonymized(&request), self.pseudonymized(&decision));
        let event = AuditEvent {
            principal,
            project,
            tier,
            method: method.to_string(),
            request,
            rows,
            decision,
        };
        self.audit.append(event).await?;
        match flush_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl ServerState {
    /// `e`, as [`EngineError::WorkerLost`] (UNAVAILABLE) when a worker the query ran on was
    /// lost.
    pub(crate) async fn worker_lost(&self, e: ServerError) -> ServerError {
        let ServerError::Engine(EngineError::DataFusion(d)) = &e else {
            return e;
        };
        match self.admin_engine().lost_node(d).await {
            Some(lost) => ServerError::Engine(lost),
            None => e,
        }
    }
}
