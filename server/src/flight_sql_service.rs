//! Arrow Flight SQL over the caller's engine: statement queries, prepared statements with bound
//! parameters (stateless: the handle carries the SQL and the parameters), GetSqlInfo,
//! GetCatalogs, GetDbSchemas, GetTables, GetTableTypes, and a handshake that turns
//! `Basic base64(name:token)` into the bearer token.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use cohortdb_engine::CohortEngine;
use cohortdb_proto::v1::PreparedStatementHandle;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::scalar::ScalarValue;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::answer_stream::Answer;
use crate::audit_text::SqlText;
use crate::principal::Principal;
use crate::server_error::ServerError;
use crate::server_state::{Lane, ServerState};

type DoGetStream = <FlightSqlServiceImpl as FlightService>::DoGetStream;

/// The Flight SQL service over shared server state.
#[derive(Clone)]
pub struct FlightSqlServiceImpl {
    state: Arc<ServerState>,
    sql_info: Arc<SqlInfoData>,
}

fn sql_info() -> Result<SqlInfoData, ServerError> {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "cohortdb");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    Ok(builder.build()?)
}

fn handle_of(bytes: &[u8]) -> Result<PreparedStatementHandle, ServerError> {
    PreparedStatementHandle::decode(bytes)
        .map_err(|e| ServerError::InvalidArgument(format!("unreadable statement handle: {e}")))
}

fn statement_handle(query: &str) -> Vec<u8> {
    PreparedStatementHandle {
        query: query.to_string(),
        parameters: Vec::new(),
    }
    .encode_to_vec()
}

/// The positional parameter values of a handle (an IPC stream of one row).
fn parameter_values(handle: &PreparedStatementHandle) -> Result<Vec<ScalarValue>, ServerError> {
    if handle.parameters.is_empty() {
        return Ok(Vec::new());
    }
    let reader = StreamReader::try_new(std::io::Cursor::new(&handle.parameters), None)?;
    let mut values = Vec::new();
    for batch in reader {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        for column in batch.columns() {
            values.push(ScalarValue::try_from_array(column, 0)?);
        }
        break;
    }
    Ok(values)
}

/// The query of a handle, planned with its parameters bound when it has any.
async fn planned(
    engine: &CohortEngine,
    handle: &PreparedStatementHandle,
) -> Result<DataFrame, ServerError> {
    let frame = engine.sql(&handle.query).await?;
    let values = parameter_values(handle)?;
    Ok(if values.is_empty() {
        frame
    } else {
        frame.with_param_values(values)?
    })
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, ServerError> {
    let options = arrow::ipc::writer::IpcWriteOptions::default();
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &options).try_into()?;
    Ok(bytes)
}

fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, ServerError> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor))
}

fn batch_stream(schema: Arc<Schema>, batches: Vec<RecordBatch>) -> DoGetStream {
    answer_stream(Answer::table(schema, batches))
}

/// An answer as Flight data, encoded as its batches arrive.
fn answer_stream(answer: Answer) -> DoGetStream {
    let batches = answer
        .batches
        .map_err(|e| FlightError::from(Status::from(e)));
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(answer.schema)
            .build(batches)
            .map_err(Status::from),
    )
}

impl std::fmt::Debug for FlightSqlServiceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlServiceImpl")
            .finish_non_exhaustive()
    }
}

impl FlightSqlServiceImpl {
    /// The service over `state`.
    pub fn new(state: Arc<ServerState>) -> Result<Self, ServerError> {
        Ok(Self {
            state,
            sql_info: Arc::new(sql_info()?),
        })
    }

    /// Plans a statement for its schema (nothing runs yet); a refusal is audited.
    async fn describe(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        method: &str,
        handle: &PreparedStatementHandle,
    ) -> Result<Schema, ServerError> {
        let scope = self
            .state
            .audited_scope(metadata, method, &handle.query)
            .await?;
        match planned(&scope.engine, handle).await {
            Ok(frame) => Ok(frame.schema().as_arrow().clone()),
            Err(e) => {
                let principal = Some(&scope.principal);
                self.state
                    .audit(principal, method, handle.query.clone(), Err(&e))
                    .await?;
                Err(e)
            }
        }
    }

    /// Runs a statement, audited, and streams its batches.
    async fn execute(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        method: &str,
        handle: PreparedStatementHandle,
    ) -> Result<Response<DoGetStream>, Status> {
        let text = SqlText(handle.query.clone());
        let answer = self
            .state
            .audited(metadata, method, text, Lane::Scan, |scope, _| async move {
                Answer::of_frame(planned(&scope.engine, &handle).await?).await
            })
            .await?;
        Ok(Response::new(answer_stream(answer)))
    }

    /// The FlightInfo of a metadata command for an authenticated caller: one endpoint whose
    /// ticket is the command.
    fn command_info(
        &self,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: Vec<u8>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.state
            .authenticate(request.metadata())
            .map_err(status)?;
        let info = flight_info(schema, command, request.into_inner()).map_err(status)?;
        Ok(Response::new(info))
    }

    /// The caller's SQL session, for the catalog listings; a refusal is audited.
    async fn catalog_session(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        method: &str,
    ) -> Result<(Principal, SessionContext), ServerError> {
        let scope = self.state.audited_scope(metadata, method, "").await?;
        let ctx = scope.engine.sql_session()?;
        Ok((scope.principal, ctx))
    }

    /// Audits a listing and streams it.
    async fn listing(
        &self,
        principal: &Principal,
        method: &str,
        batch: RecordBatch,
    ) -> Result<Response<DoGetStream>, Status> {
        let rows = batch.num_rows() as u64;
        self.state
            .audit(Some(principal), method, String::new(), Ok(rows))
            .await?;
        Ok(Response::new(batch_stream(batch.schema(), vec![batch])))
    }
}

fn status(e: ServerError) -> Status {
    e.into()
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlServiceImpl {
    type FlightService = FlightSqlServiceImpl;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let token = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                // The password is the token; the name is informational.
                decoded
                    .split_once(':')
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_default()
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                rest.trim().to_string()
            }
            _ => String::new(),
        };
        let method = "arrow.flight.protocol.FlightService/Handshake";
        let principal = match self.state.principal_of_token(&token) {
            Ok(p) => p,
            Err(e) => {
                self.state
                    .audit(None, method, String::new(), Err(&e))
                    .await?;
                return Err(e.into());
            }
        };
        self.state
            .audit(Some(&principal), method, String::new(), Ok(0))
            .await?;
        let bearer = format!("Bearer {token}");
        let value = MetadataValue::try_from(bearer.as_str())
            .map_err(|_| Status::invalid_argument("the token is not a valid header value"))?;
        let output = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(output));
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let handle = handle_of(&statement_handle(&query.query)).map_err(status)?;
        let method = "arrow.flight.protocol.sql.CommandStatementQuery";
        let schema = self.describe(request.metadata(), method, &handle).await?;
        let ticket = TicketStatementQuery {
            statement_handle: handle.encode_to_vec().into(),
        };
        let info = flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        );
        Ok(Response::new(info.map_err(status)?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let handle = handle_of(&ticket.statement_handle).map_err(status)?;
        let method = "arrow.flight.protocol.sql.TicketStatementQuery";
        self.execute(request.metadata(), method, handle).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let handle = handle_of(&statement_handle(&query.query)).map_err(status)?;
        let method = "arrow.flight.protocol.sql.ActionCreatePreparedStatementRequest";
        let scope = self
            .state
            .audited_scope(request.metadata(), method, &handle.query)
            .await
            .map_err(status)?;
        let described = async {
            let frame = scope.engine.sql(&handle.query).await?;
            let types = frame.logical_plan().get_parameter_types()?;
            let mut ids: Vec<(usize, String, Option<DataType>)> = types
                .into_iter()
                .map(|(id, t)| {
                    (
                        id.trim_start_matches('$').parse().unwrap_or(usize::MAX),
                        id,
                        t,
                    )
                })
                .collect();
            ids.sort();
            let parameters = Schema::new(
                ids.into_iter()
                    .map(|(_, id, t)| Field::new(id, t.unwrap_or(DataType::Utf8), true))
                    .collect::<Vec<_>>(),
            );
            Ok::<_, ServerError>((frame.schema().as_arrow().clone(), parameters))
        };
        let (dataset, parameters) = match described.await {
            Ok(d) => d,
            Err(e) => {
                self.state
                    .audit(
                        Some(&scope.principal),
                        method,
                        handle.query.clone(),
                        Err(&e),
                    )
                    .await?;
                return Err(e.into());
            }
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.encode_to_vec().into(),
            dataset_schema: schema_bytes(&dataset).map_err(status)?,
            parameter_schema: schema_bytes(&parameters).map_err(status)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.state
            .authenticate(request.metadata())
            .map_err(status)?;
        let mut handle = handle_of(&query.prepared_statement_handle).map_err(status)?;
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                request
                    .into_inner()
                    .map_err(arrow_flight::error::FlightError::from),
            )
            .try_collect()
            .await?;
        let mut parameters = Vec::new();
        if let Some(first) = batches.first() {
            let mut writer = StreamWriter::try_new(&mut parameters, first.schema_ref())
                .map_err(|e| status(e.into()))?;
            writer.write(first).map_err(|e| status(e.into()))?;
            writer.finish().map_err(|e| status(e.into()))?;
        }
        handle.parameters = parameters;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode_to_vec().into()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let handle = handle_of(&query.prepared_statement_handle).map_err(status)?;
        let method = "arrow.flight.protocol.sql.CommandPreparedStatementQuery";
        let schema = self.describe(request.metadata(), method, &handle).await?;
        let info = flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        );
        Ok(Response::new(info.map_err(status)?))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let handle = handle_of(&query.prepared_statement_handle).map_err(status)?;
        let method = "arrow.flight.protocol.sql.CommandPreparedStatementQuery";
        self.execute(request.metadata(), method, handle).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        // Stateless handles: nothing to release.
        Ok(())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        self.command_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.state
            .authenticate(request.metadata())
            .map_err(status)?;
        let builder = query.into_builder(&self.sql_info);
        let schema = builder.schema();
        Ok(Response::new(batch_stream(schema, vec![builder.build()?])))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let method = "arrow.flight.protocol.sql.CommandGetCatalogs";
        let (principal, ctx) = self
            .catalog_session(request.metadata(), method)
            .await
            .map_err(status)?;
        let mut builder = query.into_builder();
        for catalog in ctx.catalog_names() {
            builder.append(catalog);
        }
        self.listing(&principal, method, builder.build()?).await
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let method = "arrow.flight.protocol.sql.CommandGetDbSchemas";
        let (principal, ctx) = self
            .catalog_session(request.metadata(), method)
            .await
            .map_err(status)?;
        let mut builder = query.into_builder();
        for catalog in ctx.catalog_names() {
            if let Some(provider) = ctx.catalog(&catalog) {
                for schema in provider.schema_names() {
                    builder.append(&catalog, schema);
                }
            }
        }
        self.listing(&principal, method, builder.build()?).await
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let method = "arrow.flight.protocol.sql.CommandGetTables";
        let (principal, ctx) = self
            .catalog_session(request.metadata(), method)
            .await
            .map_err(status)?;
        let mut builder = query.into_builder();
        for catalog in ctx.catalog_names() {
            let Some(catalog_provider) = ctx.catalog(&catalog) else {
                continue;
            };
            for schema_name in catalog_provider.schema_names() {
                let Some(schema) = catalog_provider.schema(&schema_name) else {
                    continue;
                };
                let mut names = schema.table_names();
                names.sort();
                for name in names {
                    let Ok(Some(table)) = schema.table(&name).await else {
                        continue;
                    };
                    let kind = match table.table_type() {
                        datafusion::datasource::TableType::View => "VIEW",
                        _ => "TABLE",
                    };
                    builder
                        .append(&catalog, &schema_name, &name, kind, table.schema().as_ref())
                        .map_err(|e| status(e.into()))?;
                }
            }
        }
        self.listing(&principal, method, builder.build()?).await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = table_types_batch().map_err(status)?.schema();
        self.command_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.state
            .authenticate(request.metadata())
            .map_err(status)?;
        let batch = table_types_batch().map_err(status)?;
        Ok(Response::new(batch_stream(batch.schema(), vec![batch])))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

use arrow_flight::Action;

/// The table types cohortdb has.
fn table_types_batch() -> Result<RecordBatch, ServerError> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "table_type",
        DataType::Utf8,
        false,
    )]));
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(arrow::array::StringArray::from(vec![
            "TABLE", "VIEW",
        ]))],
    )?)
}
