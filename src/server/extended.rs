//! The extended protocol (JDBC, psycopg, tokio-postgres, asyncpg):
//! datafusion-postgres's handler with every statement under the cancel and
//! timeout guard, `COPY ... TO '<server file>'` refused below admin at
//! Parse, and Execute sending rows as they arrive.
//!
//! pgwire's own Execute collects a portal's rows (up to `max_rows`, all of
//! them when 0) before it sends the first one, so a scan of ten Salesforce
//! pages reached the client only after the last page. [`execute`] feeds
//! each row as its batch arrives and flushes whenever the next row is not
//! ready yet.

use std::fmt::Debug;
use std::ops::DerefMut;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::DfSessionService;
use futures::future::{Either, FutureExt, select};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Portal, PortalExecutionState};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, DEFAULT_NAME, PgWireConnectionState, Type,
    copy,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Execute, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;

use super::cancel::{deadline, guard, scan_options, within};
use super::idle::Registry;
use super::{copy as server_copy, roles};
use crate::config::Role;

type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
type DfParser = <DfSessionService as ExtendedQueryHandler>::QueryParser;

pub struct ExtendedFrontend {
    service: Arc<DfSessionService>,
    parser: Arc<FileCopyGuard>,
    idle: Arc<Registry>,
}

impl ExtendedFrontend {
    pub fn new(service: Arc<DfSessionService>, idle: Arc<Registry>) -> Self {
        let parser = Arc::new(FileCopyGuard(ExtendedQueryHandler::query_parser(
            service.as_ref(),
        )));
        ExtendedFrontend {
            service,
            parser,
            idle,
        }
    }
}

/// datafusion-postgres's parser, refusing `COPY ... TO '<server file>'`
/// below admin as the simple protocol does (the role is the login's, so
/// Parse is as good a place as Execute).
pub struct FileCopyGuard(Arc<DfParser>);

#[async_trait]
impl QueryParser for FileCopyGuard {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if server_copy::copies_to_server_file(sql)
            && let Some(refused) = roles::refuse_below(client, Role::Admin, server_copy::TO_FILE)
        {
            return Err(refused);
        }
        self.0.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        self.0.get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Statement,
        column_format: Option<&pgwire::api::portal::Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.0.get_result_schema(stmt, column_format)
    }
}

#[async_trait]
impl ExtendedQueryHandler for ExtendedFrontend {
    type Statement = Statement;
    type QueryParser = FileCopyGuard;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        execute(self, client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let busy = self.idle.busy(client);
        let deadline = deadline(client);
        let options = scan_options(client);
        let response = options
            .scope(within(
                deadline,
                ExtendedQueryHandler::do_query(self.service.as_ref(), client, portal, max_rows),
            ))
            .await?;
        let mut guarded = guard(client, vec![response], deadline, busy).await;
        Ok(guarded.pop().unwrap_or(Response::EmptyQuery))
    }
}

/// pgwire's Execute (`ExtendedQueryHandler::_on_execute`), except that a
/// query's rows are sent as they arrive instead of collected first.
async fn execute<H, C>(handler: &H, client: &mut C, message: Execute) -> PgWireResult<()>
where
    H: ExtendedQueryHandler,
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = H::Statement>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
        return Err(PgWireError::NotReadyForQuery);
    }
    let mut transaction_status = client.transaction_status();
    client.set_state(PgWireConnectionState::QueryInProgress);
    let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
    let max_rows = message.max_rows as usize;
    let portal = match client.portal_store().get_portal(portal_name) {
        Some(Entry::Value(portal)) => portal,
        Some(Entry::Empty) => {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
            client.set_state(PgWireConnectionState::ReadyForQuery);
            return Ok(());
        }
        None => return Err(PgWireError::PortalNotFound(portal_name.to_owned())),
    };
    let started = !matches!(*portal.state.lock().await, PortalExecutionState::Initial);
    let mut completed = None;
    let rows = if started {
        true
    } else {
        // Raced against the client's cancel request, as pgwire does.
        let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) => Some(handle.start_query().await),
            None => None,
        };
        let query = handler.do_query(client, &portal, max_rows);
        let response = match cancel {
            None => query.await,
            Some(cancel) => match select(query, cancel).await {
                Either::Left((result, _)) => result,
                Either::Right((Ok(()), _)) => Err(PgWireError::QueryCanceled),
                // The query took over the cancel signal (its rows are guarded).
                Either::Right((Err(_), query)) => query.await,
            },
        };
        match response? {
            Response::Query(results) => {
                portal.start(results).await;
                true
            }
            Response::EmptyQuery => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                false
            }
            Response::Execution(tag) => {
                completed = Some(tag);
                false
            }
            Response::TransactionStart(tag) => {
                transaction_status = transaction_status.to_in_transaction_state();
                completed = Some(tag);
                false
            }
            Response::TransactionEnd(tag) => {
                transaction_status = transaction_status.to_idle_state();
                client.portal_store().rm_portal(DEFAULT_NAME);
                completed = Some(tag);
                false
            }
            Response::Error(err) => {
                client
                    .send(PgWireBackendMessage::ErrorResponse((*err).into()))
                    .await?;
                transaction_status = transaction_status.to_error_state();
                false
            }
            Response::CopyIn(result) => {
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                copy::send_copy_in_response(client, result).await?;
                false
            }
            Response::CopyOut(result) => {
                copy::send_copy_out_response(client, result).await?;
                false
            }
            Response::CopyBoth(result) => {
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                copy::send_copy_both_response(client, result).await?;
                false
            }
        }
    };
    if let Some(tag) = completed {
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
    }
    if rows {
        send_rows(client, &portal, max_rows).await?;
    }
    if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(transaction_status);
    }
    Ok(())
}

/// Send up to `max_rows` (0: all) of a started portal's rows, each as soon
/// as it is ready, then PortalSuspended or CommandComplete.
async fn send_rows<C, S>(client: &mut C, portal: &Portal<S>, max_rows: usize) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut state = portal.state.lock().await;
    let response = match state.deref_mut() {
        PortalExecutionState::Initial => return Err(PgWireError::PortalNotStarted),
        PortalExecutionState::Finished => {
            let tag = Tag::new("SELECT").with_rows(0);
            client
                .send(PgWireBackendMessage::CommandComplete(tag.into()))
                .await?;
            return Ok(());
        }
        PortalExecutionState::Suspended(response) => response,
    };
    let command_tag = response.command_tag().to_owned();
    let rows = response.data_rows();
    let mut sent = 0;
    let end = loop {
        if max_rows != 0 && sent >= max_rows {
            break Ok(true);
        }
        // Rows already here go out together; before waiting for the next
        // page, the ones fed so far reach the client.
        let next = match rows.next().now_or_never() {
            Some(next) => next,
            None => {
                client.flush().await?;
                rows.next().await
            }
        };
        match next {
            Some(Ok(row)) => {
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
                sent += 1;
            }
            Some(Err(e)) => break Err(e),
            None => break Ok(false),
        }
    };
    if !matches!(end, Ok(true)) {
        // Dropping the stream (also after an error) stops the scans behind it.
        *state = PortalExecutionState::Finished;
    }
    let message = if end? {
        PgWireBackendMessage::PortalSuspended(PortalSuspended::new())
    } else {
        PgWireBackendMessage::CommandComplete(Tag::new(&command_tag).with_rows(sent).into())
    };
    client.send(message).await?;
    Ok(())
}
