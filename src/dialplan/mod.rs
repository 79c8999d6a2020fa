//! Dialplans: which agent answers which dialed number. Numbers are normalised by [`crate::phone`].
//!
//! - [`file`]: the TOML dialplan format, parsed with line-precise errors;
//! - [`check`] / [`apply`]: validate a parsed dialplan against the database, or write it (idempotent).
//!
//! Routing itself is [`crate::storage::Store::route_number`]: an exact number wins, then the longest prefix.

pub mod file;

use crate::storage::{Store, StoreError};
pub use file::{Dialplan, DialplanError, Pattern, Route};

/// What `apply` wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// Exact numbers upserted.
    pub numbers: usize,
    /// Prefixes upserted.
    pub prefixes: usize,
}

/// Checks that every agent named in the dialplan exists; returns one error per unknown name.
pub async fn check(store: &dyn Store, plan: &Dialplan) -> Result<Vec<DialplanError>, StoreError> {
    let mut errors = Vec::new();
    for route in &plan.routes {
        if store.find_agent_by_name(&route.agent).await?.is_none() {
            errors.push(DialplanError {
                line: route.agent_line,
                column: route.agent_column,
                message: format!("no agent named `{}` (create it with POST /v1/agents)", route.agent),
            });
        }
    }
    Ok(errors)
}

/// Upserts every route. Call [`check`] first: a route whose agent is missing is skipped.
pub async fn apply(store: &dyn Store, plan: &Dialplan) -> Result<ApplyReport, StoreError> {
    let mut report = ApplyReport::default();
    for route in &plan.routes {
        let Some(agent) = store.find_agent_by_name(&route.agent).await? else { continue };
        match &route.pattern {
            Pattern::Exact(number) => {
                store.put_number(number.as_str(), agent.id).await?;
                report.numbers += 1;
            }
            Pattern::Prefix(prefix) => {
                store.put_prefix(prefix, agent.id).await?;
                report.prefixes += 1;
            }
        }
    }
    Ok(report)
}
