//! `cohortdb.v1.QueryService`: the cohort operations and SQL, each audited and answered under
//! the caller's access tier.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use cohortdb_engine::export::vcf_export::ExportFormat;
use cohortdb_engine::ops::association::Model;
use cohortdb_engine::ops::carriers::VariantSpec;
use cohortdb_engine::{Cohort, CohortEngine, CohortSpec, Region};
use cohortdb_proto::v1 as pb;
use cohortdb_proto::v1::query_service_server::QueryService;
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::{Request, Response, Status};

use crate::answer_stream::Answer;
use crate::arrow_chunks::chunk_stream;
use crate::audit_text::{AuditedRequest, SqlText};
use crate::export_stream::audited_export;
use crate::server_error::ServerError;
use crate::server_state::{Lane, ServerState};

/// A stream of response messages.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The query service over shared server state.
#[derive(Debug, Clone)]
pub struct QueryServiceImpl {
    state: Arc<ServerState>,
}

impl QueryServiceImpl {
    /// The service over `state`.
    pub fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }

    /// Runs an operation that yields a table on the scan lane, audits it and streams it as
    /// Arrow chunks.
    async fn table<T, F, Fut>(
        &self,
        request: Request<T>,
        method: &str,
        work: F,
    ) -> Result<Response<ResponseStream<pb::ArrowChunk>>, Status>
    where
        T: AuditedRequest,
        F: FnOnce(CohortEngine, T) -> Fut,
        Fut: std::future::Future<Output = Result<Answer, ServerError>> + Send + 'static,
    {
        self.table_on(Lane::Scan, request, method, work).await
    }

    /// [`QueryServiceImpl::table`] on `lane`.
    async fn table_on<T, F, Fut>(
        &self,
        lane: Lane,
        request: Request<T>,
        method: &str,
        work: F,
    ) -> Result<Response<ResponseStream<pb::ArrowChunk>>, Status>
    where
        T: AuditedRequest,
        F: FnOnce(CohortEngine, T) -> Fut,
        Fut: std::future::Future<Output = Result<Answer, ServerError>> + Send + 'static,
    {
        let (metadata, _, message) = request.into_parts();
        let answer = self
            .state
            .audited(&metadata, method, message, lane, |scope, message| {
                work(scope.engine, message)
            })
            .await?;
        let chunks = chunk_stream(answer, self.state.options().chunk_bytes)?;
        Ok(Response::new(chunks.map_err(Status::from).boxed()))
    }
}

fn regions(list: &[String]) -> Result<Vec<Region>, ServerError> {
    let mut out = Vec::new();
    for text in list {
        out.extend(Region::parse_list(text)?);
    }
    Ok(out)
}

/// The cohort a `Cohort` message names; everyone when absent.
pub fn cohort_spec(cohort: Option<&pb::Cohort>) -> CohortSpec {
    use pb::cohort::Selection;
    match cohort.and_then(|c| c.selection.as_ref()) {
        None => CohortSpec::All,
        Some(Selection::Predicate(p)) => CohortSpec::parse(p),
        Some(Selection::Named(name)) => CohortSpec::Named(name.clone()),
        Some(Selection::Samples(ids)) => CohortSpec::Include(ids.ids.clone()),
    }
}

/// The participants of a `Cohort` message; everyone when absent.
pub async fn cohort(
    engine: &CohortEngine,
    cohort: Option<&pb::Cohort>,
) -> Result<Cohort, ServerError> {
    Ok(engine.cohort(&cohort_spec(cohort)).await?)
}

#[tonic::async_trait]
impl QueryService for QueryServiceImpl {
    type AlleleFrequenciesStream = ResponseStream<pb::ArrowChunk>;
    type CarriersStream = ResponseStream<pb::ArrowChunk>;
    type CoverageStream = ResponseStream<pb::ArrowChunk>;
    type CaseControlStream = ResponseStream<pb::ArrowChunk>;
    type AssociationStream = ResponseStream<pb::ArrowChunk>;
    type SampleGenotypesStream = ResponseStream<pb::ArrowChunk>;
    type ExportStream = ResponseStream<pb::ExportChunk>;
    type SqlStream = ResponseStream<pb::ArrowChunk>;

    async fn allele_frequencies(
        &self,
        request: Request<pb::AlleleFrequenciesRequest>,
    ) -> Result<Response<Self::AlleleFrequenciesStream>, Status> {
        self.table(
            request,
            "cohortdb.v1.QueryService/AlleleFrequencies",
            |e, m| async move {
                let set = cohort(&e, m.cohort.as_ref()).await?;
                Ok(Answer::one_batch(
                    e.allele_frequencies(&regions(&m.regions)?, &set).await?,
                ))
            },
        )
        .await
    }

    async fn coverage(
        &self,
        request: Request<pb::CoverageRequest>,
    ) -> Result<Response<Self::CoverageStream>, Status> {
        self.table(
            request,
            "cohortdb.v1.QueryService/Coverage",
            |e, m| async move {
                let set = cohort(&e, m.cohort.as_ref()).await?;
                Ok(Answer::one_batch(
                    e.coverage(&regions(&m.regions)?, &set).await?,
                ))
            },
        )
        .await
    }

    async fn carriers(
        &self,
        request: Request<pb::CarriersRequest>,
    ) -> Result<Response<Self::CarriersStream>, Status> {
        // The carriers of one variant: a point lookup, answered ahead of scans.
        self.table_on(
            Lane::Lookup,
            request,
            "cohortdb.v1.QueryService/Carriers",
            |e, m| async move {
                let variant =
                    VariantSpec::parse(&m.variant).map_err(ServerError::InvalidArgument)?;
                let set = cohort(&e, m.cohort.as_ref()).await?;
                let size = usize::try_from(m.page_size).unwrap_or(usize::MAX);
                let token = Some(m.page_token.as_str());
                let page = e
                    .carriers_page(&variant, &set, &m.columns, size, token)
                    .await?;
                // The next page's token travels in the schema's metadata.
                let metadata = HashMap::from([
                    (
                        "next_page_token".to_string(),
                        page.next_page_token.unwrap_or_default(),
                    ),
                    ("total_rows".to_string(), page.total_rows.to_string()),
                ]);
                let schema = Arc::new(page.rows.schema().as_ref().clone().with_metadata(metadata));
                let rows = page.rows.with_schema(schema.clone())?;
                Ok(Answer::table(schema, vec![rows]))
            },
        )
        .await
    }

    async fn case_control(
        &self,
        request: Request<pb::CaseControlRequest>,
    ) -> Result<Response<Self::CaseControlStream>, Status> {
        self.table(
            request,
            "cohortdb.v1.QueryService/CaseControl",
            |e, m| async move {
                let cases = cohort(&e, m.cases.as_ref()).await?;
                let controls = cohort(&e, m.controls.as_ref()).await?;
                let batches = e
                    .case_control(&regions(&m.regions)?, &cases, &controls)
                    .await?;
                let schema = cohortdb_engine::ops::case_control::case_control_schema();
                Ok(Answer::of_batches(schema, batches))
            },
        )
        .await
    }

    async fn association(
        &self,
        request: Request<pb::AssociationRequest>,
    ) -> Result<Response<Self::AssociationStream>, Status> {
        self.table(
            request,
            "cohortdb.v1.QueryService/Association",
            |e, m| async move {
                let model = match pb::Model::try_from(m.model) {
                    Ok(pb::Model::Linear) => Some(Model::Linear),
                    Ok(pb::Model::Logistic) => Some(Model::Logistic),
                    Ok(pb::Model::LogisticNoFirth) => Some(Model::LogisticNoFirth),
                    Ok(pb::Model::Unspecified) => None,
                    Err(_) => {
                        return Err(ServerError::InvalidArgument(format!(
                            "unknown model {}",
                            m.model
                        )));
                    }
                };
                let set = cohort(&e, m.cohort.as_ref()).await?;
                let batches = e
                    .association(
                        &regions(&m.regions)?,
                        &set,
                        "phenotypes",
                        &m.r#trait,
                        &m.covariates,
                        model,
                        None,
                    )
                    .await?;
                let schema = cohortdb_engine::ops::association::association_schema();
                Ok(Answer::of_batches(schema, batches))
            },
        )
        .await
    }

    async fn sample_genotypes(
        &self,
        request: Request<pb::SampleGenotypesRequest>,
    ) -> Result<Response<Self::SampleGenotypesStream>, Status> {
        self.table(
            request,
            "cohortdb.v1.QueryService/SampleGenotypes",
            |e, m| async move {
                Answer::of_frame(e.sample_genotypes(&regions(&m.regions)?, &m.sample).await?).await
            },
        )
        .await
    }

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let method = "cohortdb.v1.QueryService/Export";
        let (metadata, _, mut m) = request.into_parts();
        let (scope, text) = self.state.message_scope(&metadata, method, &mut m).await?;
        let e = scope.engine;
        let parts = audited_export(
            &self.state,
            scope.principal,
            method,
            text,
            |out| async move {
                let format = match pb::ExportFormat::try_from(m.format) {
                    Ok(pb::ExportFormat::Vcf) => ExportFormat::Vcf,
                    Ok(pb::ExportFormat::VcfGz) => ExportFormat::VcfGz,
                    Ok(pb::ExportFormat::Bcf | pb::ExportFormat::Unspecified) => ExportFormat::Bcf,
                    Err(_) => {
                        return Err(ServerError::InvalidArgument(format!(
                            "unknown export format {}",
                            m.format
                        )));
                    }
                };
                let index = match m.index {
                    true => Some(format.index(None)?),
                    false => None,
                };
                let selection = cohort_spec(m.cohort.as_ref());
                let set = e.cohort(&selection).await?;
                let order = e.export_order(&selection, &set);
                let regions = regions(&m.regions)?;
                Ok(e.export(&regions, &order, format, index, None, out).await?)
            },
        )
        .await?;
        Ok(Response::new(parts.map_err(Status::from).boxed()))
    }

    async fn sql(
        &self,
        request: Request<pb::SqlRequest>,
    ) -> Result<Response<Self::SqlStream>, Status> {
        let (metadata, extensions, m) = request.into_parts();
        // The audit record holds the SQL text itself.
        let request = Request::from_parts(metadata, extensions, SqlText(m.query));
        self.table(request, "cohortdb.v1.QueryService/Sql", |e, q| async move {
            Answer::of_frame(e.sql(&q.0).await?).await
        })
        .await
    }
}
