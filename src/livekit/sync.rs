//! Reconciles slotline's numbers → agents with LiveKit SIP.
//!
//! slotline keeps one inbound trunk holding every routed number (its allowed addresses and credentials
//! from `livekit.trunk.*`) and dispatch rules on it that give each call its own room
//! (`SIPDispatchRuleIndividual` with `livekit.room_prefix`) and dispatch the worker (`room_config.agents`
//! with `livekit.agent_name`):
//! - `per_number` (default): one rule per number, filtering on the dialed number (`numbers`) and carrying
//!   `{"agent_id": …}` as dispatch metadata; moving a number to another agent changes exactly its rule;
//! - `shared`: one rule for the whole trunk; the worker resolves the agent from the SIP participant's
//!   dialed number (`sip.trunkPhoneNumber`).
//!
//! Objects slotline owns carry `{"managed_by": "slotline", …}` as metadata; nothing else is ever touched.
//! [`plan`] is pure: it compares what LiveKit holds with what slotline wants and lists the changes
//! (deletions first, so a rule that moves between modes never conflicts with its successor); [`apply`]
//! performs them. A sync where nothing changed sends only the two list requests.
//!
//! `CreateSIPDispatchRule` is sent as a Twirp request of our own: `livekit-api` 0.10's helper cannot set
//! the dialed-number filter (`numbers`; its `allowed_numbers` fills the caller filter), and creating the
//! rule without it, even for a moment, would make it catch every number on the trunk.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use livekit_api::access_token::{AccessToken, SIPGrants};
use livekit_api::services::sip::{ListSIPDispatchRuleFilter, ListSIPInboundTrunkFilter};
use livekit_protocol as proto;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{LivekitError, LivekitSettings, OWNER};
use crate::config::LivekitDispatch;
use crate::metrics;
use crate::storage::Store;

/// What slotline wants LiveKit SIP to route: exact E.164 numbers → agents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Number → agent id.
    pub numbers: BTreeMap<String, Uuid>,
}

impl Desired {
    /// The numbers routed in the database.
    pub async fn load(store: &dyn Store) -> Result<Self, LivekitError> {
        let numbers = store.list_numbers(None).await?.into_iter().map(|n| (n.e164, n.agent_id)).collect();
        Ok(Self { numbers })
    }
}

/// The metadata of objects slotline owns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Ownership {
    managed_by: String,
    /// The number a per-number rule routes, `*` for the shared rule; absent on the trunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number: Option<String>,
}

impl Ownership {
    fn json(number: Option<&str>) -> String {
        let owner = Ownership { managed_by: OWNER.into(), number: number.map(str::to_string) };
        serde_json::to_string(&owner).unwrap_or_default()
    }

    fn read(metadata: &str) -> Option<Self> {
        serde_json::from_str::<Self>(metadata).ok().filter(|o| o.managed_by == OWNER)
    }
}

/// The dispatch metadata of a per-number rule (what the worker reads from a job).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DispatchMetadata {
    /// The agent the number routes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

/// One change to LiveKit SIP.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Delete a dispatch rule slotline owns.
    DeleteRule {
        /// The rule's id.
        id: String,
        /// Its name.
        name: String,
    },
    /// Delete an inbound trunk slotline owns.
    DeleteTrunk {
        /// The trunk's id.
        id: String,
        /// Its name.
        name: String,
    },
    /// Create the inbound trunk.
    CreateTrunk(proto::SipInboundTrunkInfo),
    /// Replace the inbound trunk.
    UpdateTrunk(proto::SipInboundTrunkInfo),
    /// Create a dispatch rule (its trunk id is filled in when the trunk is created in the same sync).
    CreateRule(proto::SipDispatchRuleInfo),
    /// Replace a dispatch rule.
    UpdateRule(proto::SipDispatchRuleInfo),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::DeleteRule { id, name } => write!(f, "delete dispatch rule {id} \"{name}\""),
            Change::DeleteTrunk { id, name } => write!(f, "delete inbound trunk {id} \"{name}\""),
            Change::CreateTrunk(t) => write!(f, "create inbound trunk \"{}\" numbers {:?}", t.name, t.numbers),
            Change::UpdateTrunk(t) => {
                write!(f, "update inbound trunk {} \"{}\" numbers {:?}", t.sip_trunk_id, t.name, t.numbers)
            }
            Change::CreateRule(r) => write!(f, "create dispatch rule \"{}\"{}", r.name, describe_rule(r)),
            Change::UpdateRule(r) => {
                write!(f, "update dispatch rule {} \"{}\"{}", r.sip_dispatch_rule_id, r.name, describe_rule(r))
            }
        }
    }
}

fn describe_rule(rule: &proto::SipDispatchRuleInfo) -> String {
    let agents: Vec<&str> = rule
        .room_config
        .iter()
        .flat_map(|c| c.agents.iter())
        .map(|a| if a.metadata.is_empty() { "{}" } else { a.metadata.as_str() })
        .collect();
    format!(" numbers {:?} dispatch {}", rule.numbers, agents.join(", "))
}

/// What LiveKit SIP holds now.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Every inbound trunk.
    pub trunks: Vec<proto::SipInboundTrunkInfo>,
    /// Every dispatch rule.
    pub rules: Vec<proto::SipDispatchRuleInfo>,
}

impl Current {
    /// Reads LiveKit SIP's trunks and rules.
    pub async fn load(settings: &LivekitSettings) -> Result<Self, LivekitError> {
        let sip = settings.sip();
        let trunks = sip.list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All).await?;
        let rules = sip.list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All).await?;
        Ok(Self { trunks, rules })
    }
}

/// Wait after a change before syncing, so a burst of changes makes one sync.
const SYNC_DEBOUNCE: Duration = Duration::from_millis(250);

/// Placeholder trunk id in a plan whose trunk is still to be created.
const NEW_TRUNK: &str = "<new trunk>";

/// The changes that make `current` what `desired` asks for.
pub fn plan(settings: &LivekitSettings, desired: &Desired, current: &Current) -> Vec<Change> {
    let mut changes = Vec::new();
    let owned_trunks: Vec<&proto::SipInboundTrunkInfo> =
        current.trunks.iter().filter(|t| Ownership::read(&t.metadata).is_some()).collect();
    // The trunk slotline keeps: the owned one with the configured name, else the first owned one.
    let kept = owned_trunks.iter().find(|t| t.name == settings.config.trunk.name).or(owned_trunks.first()).copied();
    let keep_trunk = !desired.numbers.is_empty();
    for trunk in &owned_trunks {
        if !keep_trunk || Some(trunk.sip_trunk_id.as_str()) != kept.map(|k| k.sip_trunk_id.as_str()) {
            changes.push(Change::DeleteTrunk { id: trunk.sip_trunk_id.clone(), name: trunk.name.clone() });
        }
    }
    let trunk_id = match (keep_trunk, kept) {
        (false, _) => None,
        (true, Some(kept)) => Some(kept.sip_trunk_id.clone()),
        (true, None) => Some(NEW_TRUNK.to_string()),
    };

    let wanted_rules: BTreeMap<String, proto::SipDispatchRuleInfo> = match &trunk_id {
        Some(trunk_id) => desired_rules(settings, desired, trunk_id),
        None => BTreeMap::new(),
    };
    let mut seen = BTreeMap::new();
    let mut rule_changes = Vec::new();
    for rule in &current.rules {
        let Some(owner) = Ownership::read(&rule.metadata) else { continue };
        let key = owner.number.unwrap_or_default();
        match wanted_rules.get(&key) {
            Some(wanted) if !seen.contains_key(&key) => {
                seen.insert(key, ());
                if !same_rule(rule, wanted) {
                    let mut replacement = wanted.clone();
                    replacement.sip_dispatch_rule_id = rule.sip_dispatch_rule_id.clone();
                    rule_changes.push(Change::UpdateRule(replacement));
                }
            }
            _ => changes.push(Change::DeleteRule { id: rule.sip_dispatch_rule_id.clone(), name: rule.name.clone() }),
        }
    }

    if let Some(trunk_id) = &trunk_id {
        let wanted = desired_trunk(settings, desired);
        match kept.filter(|_| trunk_id != NEW_TRUNK) {
            Some(kept) if same_trunk(kept, &wanted) => {}
            Some(kept) => {
                let mut replacement = wanted;
                replacement.sip_trunk_id = kept.sip_trunk_id.clone();
                changes.push(Change::UpdateTrunk(replacement));
            }
            None => changes.push(Change::CreateTrunk(wanted)),
        }
    }
    changes.extend(rule_changes);
    for (key, wanted) in wanted_rules {
        if !seen.contains_key(&key) {
            changes.push(Change::CreateRule(wanted));
        }
    }
    changes
}

fn desired_trunk(settings: &LivekitSettings, desired: &Desired) -> proto::SipInboundTrunkInfo {
    let trunk = &settings.config.trunk;
    proto::SipInboundTrunkInfo {
        name: trunk.name.clone(),
        metadata: Ownership::json(None),
        numbers: desired.numbers.keys().cloned().collect(),
        allowed_addresses: trunk.allowed_addresses.clone(),
        auth_username: trunk.auth_username.clone().unwrap_or_default(),
        auth_password: trunk.auth_password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default(),
        ..Default::default()
    }
}

fn same_trunk(have: &proto::SipInboundTrunkInfo, want: &proto::SipInboundTrunkInfo) -> bool {
    let mut numbers = have.numbers.clone();
    numbers.sort();
    have.name == want.name
        && numbers == want.numbers
        && have.allowed_addresses == want.allowed_addresses
        && have.auth_username == want.auth_username
        && have.auth_password == want.auth_password
}

fn desired_rules(
    settings: &LivekitSettings,
    desired: &Desired,
    trunk_id: &str,
) -> BTreeMap<String, proto::SipDispatchRuleInfo> {
    let rule = |key: &str, name: String, numbers: Vec<String>, agent_id: Option<Uuid>| {
        let dispatch = serde_json::to_string(&DispatchMetadata { agent_id }).unwrap_or_default();
        proto::SipDispatchRuleInfo {
            name,
            metadata: Ownership::json(Some(key)),
            trunk_ids: vec![trunk_id.to_string()],
            numbers,
            rule: Some(proto::SipDispatchRule {
                rule: Some(proto::sip_dispatch_rule::Rule::DispatchRuleIndividual(proto::SipDispatchRuleIndividual {
                    room_prefix: settings.config.room_prefix.clone(),
                    ..Default::default()
                })),
            }),
            room_config: Some(proto::RoomConfiguration {
                agents: vec![proto::RoomAgentDispatch {
                    agent_name: settings.config.agent_name.clone(),
                    metadata: dispatch,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    };
    match settings.dispatch() {
        LivekitDispatch::PerNumber => desired
            .numbers
            .iter()
            .map(|(number, agent)| {
                (number.clone(), rule(number, format!("slotline {number}"), vec![number.clone()], Some(*agent)))
            })
            .collect(),
        LivekitDispatch::Shared => BTreeMap::from([("*".to_string(), rule("*", "slotline".into(), Vec::new(), None))]),
    }
}

fn same_rule(have: &proto::SipDispatchRuleInfo, want: &proto::SipDispatchRuleInfo) -> bool {
    let agents = |r: &proto::SipDispatchRuleInfo| -> Vec<(String, String)> {
        r.room_config.iter().flat_map(|c| c.agents.iter()).map(|a| (a.agent_name.clone(), a.metadata.clone())).collect()
    };
    have.name == want.name
        && have.trunk_ids == want.trunk_ids
        && have.numbers == want.numbers
        && have.inbound_numbers.is_empty()
        && have.rule == want.rule
        && agents(have) == agents(want)
}

/// What a sync did (or, on a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The changes, in the order they were (or would be) made.
    pub changes: Vec<Change>,
}

/// Reads LiveKit SIP and the database, and makes LiveKit route what the database routes.
pub async fn run(settings: &LivekitSettings, store: &dyn Store, dry_run: bool) -> Result<SyncReport, LivekitError> {
    let desired = Desired::load(store).await?;
    let current = Current::load(settings).await?;
    let changes = plan(settings, &desired, &current);
    if !dry_run {
        if let Err(e) = apply(settings, &changes).await {
            metrics::livekit_sync("error");
            return Err(e);
        }
        metrics::livekit_sync(if changes.is_empty() { "unchanged" } else { "changed" });
    }
    Ok(SyncReport { changes })
}

/// Keeps LiveKit SIP in sync inside `serve`: at start, every `livekit.sync_interval_secs` (when not 0)
/// and soon after `changed` is notified (numbers or agents changed through the API).
pub async fn keep_in_sync(
    settings: Arc<LivekitSettings>,
    store: Arc<dyn Store>,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let interval = settings.config.sync_interval_secs;
    let mut every = tokio::time::interval(Duration::from_secs(if interval == 0 { 365 * 24 * 3600 } else { interval }));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
            _ = changed.notified() => {
                // Changes often come in bursts (a dialplan, a script): one sync for the burst.
                tokio::time::sleep(SYNC_DEBOUNCE).await;
            }
        }
        match run(&settings, store.as_ref(), false).await {
            Ok(report) if report.changes.is_empty() => tracing::debug!("livekit sip is in sync"),
            Ok(report) => tracing::info!(changes = report.changes.len(), "livekit sip synced"),
            Err(e) => tracing::warn!(error = %e, "livekit sync failed; retrying at the next change or interval"),
        }
    }
}

/// Performs `changes` in order.
pub async fn apply(settings: &LivekitSettings, changes: &[Change]) -> Result<(), LivekitError> {
    let sip = settings.sip();
    let mut new_trunk_id = None;
    for change in changes {
        tracing::info!(change = %change, "livekit sync");
        match change {
            Change::DeleteRule { id, .. } => {
                sip.delete_sip_dispatch_rule(id).await?;
            }
            Change::DeleteTrunk { id, .. } => {
                sip.delete_sip_trunk(id).await?;
            }
            Change::CreateTrunk(trunk) => {
                let created = sip
                    .create_sip_inbound_trunk(
                        trunk.name.clone(),
                        trunk.numbers.clone(),
                        livekit_api::services::sip::CreateSIPInboundTrunkOptions {
                            metadata: Some(trunk.metadata.clone()),
                            allowed_addresses: Some(trunk.allowed_addresses.clone()),
                            auth_username: Some(trunk.auth_username.clone()),
                            auth_password: Some(trunk.auth_password.clone()),
                            ..Default::default()
                        },
                    )
                    .await?;
                new_trunk_id = Some(created.sip_trunk_id);
            }
            Change::UpdateTrunk(trunk) => {
                sip.update_sip_inbound_trunk_replace(trunk.sip_trunk_id.clone(), trunk.clone()).await?;
            }
            Change::CreateRule(rule) => {
                let mut rule = rule.clone();
                for id in &mut rule.trunk_ids {
                    if id == NEW_TRUNK {
                        id.clone_from(new_trunk_id.as_ref().ok_or(LivekitError::NotConfigured)?);
                    }
                }
                create_dispatch_rule(settings, rule).await?;
            }
            Change::UpdateRule(rule) => {
                sip.update_sip_dispatch_rule_replace(rule.sip_dispatch_rule_id.clone(), rule.clone()).await?;
            }
        }
    }
    Ok(())
}

/// `CreateSIPDispatchRule` with every field of `rule` (see the module doc).
async fn create_dispatch_rule(
    settings: &LivekitSettings,
    rule: proto::SipDispatchRuleInfo,
) -> Result<(), LivekitError> {
    let token = AccessToken::with_api_key(&settings.api_key, settings.api_secret.expose())
        .with_sip_grants(SIPGrants { admin: true, ..Default::default() })
        .with_ttl(std::time::Duration::from_secs(60))
        .to_jwt()?;
    let request = proto::CreateSipDispatchRuleRequest { dispatch_rule: Some(rule), ..Default::default() };
    let url = format!("{}/twirp/livekit.SIP/CreateSIPDispatchRule", settings.http_url);
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/protobuf")
        .body(request.encode_to_vec())
        .timeout(super::API_TIMEOUT)
        .send()
        .await
        .map_err(|e| LivekitError::Socket(format!("CreateSIPDispatchRule: {e}")))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(LivekitError::Rejected(format!("CreateSIPDispatchRule: {status}: {body}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Secret};

    fn settings(dispatch: LivekitDispatch) -> LivekitSettings {
        let mut config = Config::default().livekit;
        config.url = Some("ws://127.0.0.1:7880".into());
        config.api_key = Some("key".into());
        config.api_secret = Some(Secret::new("secret-secret-secret-secret-secret"));
        config.dispatch = dispatch;
        LivekitSettings::from_config(&config).expect("settings")
    }

    fn desired(pairs: &[(&str, Uuid)]) -> Desired {
        Desired { numbers: pairs.iter().map(|(n, a)| (n.to_string(), *a)).collect() }
    }

    /// What LiveKit would hold after `changes` on an empty server (ids made up).
    fn applied(changes: &[Change]) -> Current {
        let mut current = Current::default();
        for (i, change) in changes.iter().enumerate() {
            match change {
                Change::CreateTrunk(t) => {
                    current.trunks.push(proto::SipInboundTrunkInfo { sip_trunk_id: "ST_1".into(), ..t.clone() })
                }
                Change::CreateRule(r) => current.rules.push(proto::SipDispatchRuleInfo {
                    sip_dispatch_rule_id: format!("SDR_{i}"),
                    trunk_ids: vec!["ST_1".into()],
                    ..r.clone()
                }),
                other => panic!("unexpected {other}"),
            }
        }
        current
    }

    #[test]
    fn a_second_plan_after_the_first_is_empty_and_a_moved_number_changes_one_rule() {
        let settings = settings(LivekitDispatch::PerNumber);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let want = desired(&[("+15550100001", a), ("+15550100002", a)]);
        let first = plan(&settings, &want, &Current::default());
        assert_eq!(first.len(), 3, "{first:?}");
        let current = applied(&first);
        assert!(plan(&settings, &want, &current).is_empty());

        let moved = desired(&[("+15550100001", a), ("+15550100002", b)]);
        let changes = plan(&settings, &moved, &current);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let Change::UpdateRule(rule) = &changes[0] else { panic!("{changes:?}") };
        assert_eq!(rule.numbers, vec!["+15550100002".to_string()]);
        assert!(rule.room_config.as_ref().is_some_and(|c| c.agents[0].metadata.contains(&b.to_string())));
    }

    #[test]
    fn rules_slotline_does_not_own_are_left_alone_and_no_numbers_removes_the_trunk() {
        let settings = settings(LivekitDispatch::PerNumber);
        let want = desired(&[("+15550100001", Uuid::new_v4())]);
        let mut current = applied(&plan(&settings, &want, &Current::default()));
        current.rules.push(proto::SipDispatchRuleInfo {
            sip_dispatch_rule_id: "SDR_hand".into(),
            metadata: "made by hand".into(),
            ..Default::default()
        });
        assert!(plan(&settings, &want, &current).is_empty());
        let changes = plan(&settings, &Desired::default(), &current);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes.iter().all(|c| matches!(c, Change::DeleteRule { id, .. } if id != "SDR_hand")
            || matches!(c, Change::DeleteTrunk { .. })));
    }

    #[test]
    fn the_shared_mode_keeps_one_rule_without_a_number_filter() {
        let settings = settings(LivekitDispatch::Shared);
        let want = desired(&[("+15550100001", Uuid::new_v4()), ("+15550100002", Uuid::new_v4())]);
        let changes = plan(&settings, &want, &Current::default());
        let rules: Vec<_> =
            changes.iter().filter_map(|c| if let Change::CreateRule(r) = c { Some(r) } else { None }).collect();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].numbers.is_empty());
        assert_eq!(rules[0].room_config.as_ref().map(|c| c.agents[0].metadata.as_str()), Some("{}"));
    }
}
