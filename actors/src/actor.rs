//! The organization actor: owns the in-flight session-family operations of one organization.
//!
//! Within one process it serializes the rotations of each family and coalesces identical concurrent
//! ones (N tabs presenting the same refresh token cost one store round trip and all get the same
//! successor), while different families of the same organization proceed concurrently. It must not do
//! anything slow on its own thread: store calls run as spawned futures, and signing and hashing happen
//! in the callers. Correctness across replicas rests on the store's compare-and-set, not on the actor.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use actix::prelude::*;
use time::{Duration, OffsetDateTime};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::family::{Aal, Decision, FamilyRecord, RefreshPointer, RevokeReason, Standing, Subject, decide};
use crate::ports::{
    CLOCK_SKEW_ALLOWANCE, Changed, Denylist, FamilyChange, FamilyStore, Origin, StoreError, mark_changed,
};

/// The stores an actor works through, shared by every actor of the process.
#[derive(Clone)]
pub struct Backend {
    /// Durable family records.
    pub families: Arc<dyn FamilyStore>,
    /// The access-token denylist.
    pub denylist: Arc<dyn Denylist>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// The rules the actors apply, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct ActorSettings {
    /// How long a spent refresh token may be replayed for its successor.
    pub grace: Duration,
    /// Access-token lifetime: a revoked family's tokens stay denylisted this long.
    pub access_ttl: Duration,
    /// An actor with nothing in flight for this long stops; the next request starts a new one.
    pub idle_after: std::time::Duration,
    /// How long a caller waits for its actor before answering `service_unavailable`.
    pub answer_within: std::time::Duration,
}

/// Why a session-family operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FamilyError {
    /// No family with that id (the token named a family the store does not know).
    #[error("no such session family")]
    NotFound,
    /// A spent refresh token came back after the grace window; the family is now revoked.
    #[error("refresh token reused after the grace window")]
    Reused,
    /// The family was ended before.
    #[error("session family revoked")]
    Revoked,
    /// The family outlived its absolute lifetime.
    #[error("session family expired")]
    Expired,
    /// The family's subject may not refresh it: disabled, or the organization's rules.
    #[error("refresh refused: {0:?}")]
    Refused(Standing),
    /// A backing store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor did not answer in time.
    #[error("organization actor did not answer in time")]
    Unavailable,
}

/// Whether a refresh rotated the family or replayed its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationKind {
    /// The presented token was live; it is now spent and `family.current` is its successor.
    Rotated,
    /// The presented token was spent within the grace window; `family.current` is the same successor.
    Replayed,
    /// A second factor raised the family to `aal2`; `family.current` is a new refresh token and the one
    /// it replaced is spent (a replay of it within the grace window gets the new one).
    Elevated,
}

/// The result of presenting a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// What happened.
    pub kind: RotationKind,
    /// The family afterwards: `current` is the refresh token to hand out.
    pub family: FamilyRecord,
    /// The subject's current account state.
    pub subject: Subject,
}

type RotateResult = Result<Rotation, FamilyError>;

/// Start a new family (a sign-in).
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<(), FamilyError>")]
pub struct CreateFamily {
    /// The family's first state.
    pub family: FamilyRecord,
    /// Where the sign-in came from.
    pub origin: Origin,
    /// The request's time.
    pub now: OffsetDateTime,
}

/// Where a switch moves a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// The organization moved into.
    pub to: Uuid,
    /// The family ends no later than this there (its lifetime under that organization's policy).
    pub expires_by: OffsetDateTime,
}

/// Present a refresh token of family `sid`.
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<Rotation, FamilyError>")]
pub struct RotateRefreshToken {
    /// The family.
    pub sid: Uuid,
    /// `jti` of the presented refresh token.
    pub presented: Uuid,
    /// Move the family into another organization with the rotation (the user switched to it); from
    /// then on that organization's actor owns it.
    pub move_to: Option<Move>,
    /// The request's time.
    pub now: OffsetDateTime,
}

/// Raise family `sid` to `aal2` (a second factor was verified in it), rotating its refresh token so
/// the new tokens carry the new level.
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<Rotation, FamilyError>")]
pub struct ElevateFamily {
    /// The family.
    pub sid: Uuid,
    /// The request's time.
    pub now: OffsetDateTime,
}

/// End these families and denylist their access tokens.
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<(), FamilyError>")]
pub struct RevokeFamilies {
    /// The families, all of this organization.
    pub sids: Vec<Uuid>,
    /// Why.
    pub reason: RevokeReason,
    /// The request's time.
    pub now: OffsetDateTime,
}

/// Operations accepted by the actors of this process and not yet answered (what waits in the mailboxes
/// and lanes, and what runs).
const PENDING: &str = "identsphere_actors_pending_operations";

/// What a family's lane does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Present this refresh token, moving the family into an organization if one is given.
    Rotate(Uuid, Option<Move>),
    /// Raise the family to `aal2`.
    Elevate,
}

/// Operations on one family waiting for the same step; they share one outcome.
struct Pending {
    step: Step,
    now: OffsetDateTime,
    waiters: Vec<oneshot::Sender<RotateResult>>,
}

/// One family's operations: the one in flight and those queued behind it.
struct Lane {
    running: Pending,
    queued: VecDeque<Pending>,
}

/// Live actors by organization; shared by the registry and the actors, which remove themselves.
pub(crate) type Directory = Arc<Mutex<HashMap<Uuid, Addr<OrgActor>>>>;

/// The actor of one organization.
pub struct OrgActor {
    org_id: Uuid,
    backend: Backend,
    settings: ActorSettings,
    /// Families with rotations in flight.
    lanes: HashMap<Uuid, Lane>,
    /// Creations and revocations in flight: the actor must not stop under them.
    in_flight: usize,
    /// Idle checks passed in a row with nothing in flight and no message received.
    idle_ticks: u32,
    directory: Weak<Mutex<HashMap<Uuid, Addr<OrgActor>>>>,
}

impl std::fmt::Debug for OrgActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgActor")
            .field("org_id", &self.org_id)
            .field("lanes", &self.lanes.len())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl OrgActor {
    pub(crate) fn new(org_id: Uuid, backend: Backend, settings: ActorSettings, directory: &Directory) -> Self {
        Self {
            org_id,
            backend,
            settings,
            lanes: HashMap::new(),
            in_flight: 0,
            idle_ticks: 0,
            directory: Arc::downgrade(directory),
        }
    }

    /// Runs `work` beside the mailbox and answers through the returned future.
    fn spawn_op<T, F>(&mut self, work: F, ctx: &mut Context<Self>) -> ResponseFuture<Result<T, FamilyError>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, FamilyError>> + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.in_flight += 1;
        metrics::gauge!(PENDING).increment(1.0);
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            act.in_flight -= 1;
            metrics::gauge!(PENDING).decrement(1.0);
            // The caller may have timed out and gone; nothing to tell then.
            let _ = tx.send(result);
        }));
        Box::pin(async move { rx.await.unwrap_or(Err(FamilyError::Unavailable)) })
    }

    fn run_lane(&mut self, sid: Uuid, ctx: &mut Context<Self>) {
        let Some(lane) = self.lanes.get(&sid) else { return };
        let (backend, settings, now) = (self.backend.clone(), self.settings, lane.running.now);
        let work: ResponseFuture<RotateResult> = match lane.running.step {
            Step::Rotate(presented, move_to) => Box::pin(rotate(backend, settings, sid, presented, move_to, now)),
            Step::Elevate => Box::pin(elevate(backend, settings, sid, now)),
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| act.finish_lane(sid, &result, ctx)));
    }

    fn finish_lane(&mut self, sid: Uuid, result: &RotateResult, ctx: &mut Context<Self>) {
        let Entry::Occupied(mut entry) = self.lanes.entry(sid) else { return };
        let lane = entry.get_mut();
        let next = lane.queued.pop_front();
        let done = match next {
            Some(next) => std::mem::replace(&mut lane.running, next),
            None => entry.remove().running,
        };
        let outcome = match result {
            Ok(Rotation { kind: RotationKind::Rotated, .. }) => "rotated",
            Ok(Rotation { kind: RotationKind::Replayed, .. }) => "grace_replay",
            Ok(Rotation { kind: RotationKind::Elevated, .. }) => "elevated",
            Err(FamilyError::Reused) => "reused",
            Err(FamilyError::Revoked) => "revoked",
            Err(FamilyError::Expired) => "expired",
            Err(FamilyError::Refused(Standing::Disabled)) => "disabled",
            Err(FamilyError::Refused(Standing::Aal2Required)) => "aal2_required",
            Err(FamilyError::Refused(Standing::MethodNotAllowed | Standing::Allowed)) => "method_not_allowed",
            Err(FamilyError::NotFound) => "unknown_family",
            Err(FamilyError::Store(_) | FamilyError::Unavailable) => "error",
        };
        // Coalesced waiters of a rotation share its outcome; the first counts as rotated, the rest as
        // the replays they are.
        let waiters = done.waiters.len() as u64;
        metrics::gauge!(PENDING).decrement(waiters as f64);
        match outcome {
            "rotated" => {
                metrics::counter!("identsphere_sessions_refreshes_total", "outcome" => "rotated").increment(1);
                metrics::counter!("identsphere_sessions_refreshes_total", "outcome" => "grace_replay")
                    .increment(waiters - 1);
            }
            other => metrics::counter!("identsphere_sessions_refreshes_total", "outcome" => other).increment(waiters),
        }
        for waiter in done.waiters {
            let _ = waiter.send(result.clone());
        }
        self.run_lane(sid, ctx);
    }

    /// Queues `step` on the family's lane, joining an identical rotation already waiting there.
    fn enqueue(
        &mut self,
        sid: Uuid,
        step: Step,
        now: OffsetDateTime,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<RotateResult> {
        self.idle_ticks = 0;
        metrics::gauge!(PENDING).increment(1.0);
        let (tx, rx) = oneshot::channel();
        match self.lanes.entry(sid) {
            Entry::Vacant(slot) => {
                slot.insert(Lane { running: Pending { step, now, waiters: vec![tx] }, queued: VecDeque::new() });
                self.run_lane(sid, ctx);
            }
            Entry::Occupied(mut slot) => {
                let lane = slot.get_mut();
                // Elevations are not shared: each follows its own second-factor check.
                let same = std::iter::once(&mut lane.running)
                    .chain(lane.queued.iter_mut())
                    .find(|pending| matches!(step, Step::Rotate(..)) && pending.step == step);
                match same {
                    Some(pending) => pending.waiters.push(tx),
                    None => lane.queued.push_back(Pending { step, now, waiters: vec![tx] }),
                }
            }
        }
        Box::pin(async move { rx.await.unwrap_or(Err(FamilyError::Unavailable)) })
    }
}

impl Actor for OrgActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!("identsphere_actors_live").increment(1.0);
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(self.settings.idle_after / 2, |act, ctx| {
            if act.lanes.is_empty() && act.in_flight == 0 {
                act.idle_ticks += 1;
                if act.idle_ticks >= 2 {
                    ctx.stop();
                }
            } else {
                act.idle_ticks = 0;
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!("identsphere_actors_live").decrement(1.0);
        let Some(directory) = self.directory.upgrade() else { return };
        let me = ctx.address();
        if let Ok(mut actors) = directory.lock()
            && actors.get(&self.org_id).is_some_and(|addr| *addr == me)
        {
            actors.remove(&self.org_id);
        }
    }
}

impl Handler<CreateFamily> for OrgActor {
    type Result = ResponseFuture<Result<(), FamilyError>>;

    fn handle(&mut self, msg: CreateFamily, ctx: &mut Self::Context) -> Self::Result {
        self.idle_ticks = 0;
        let families = Arc::clone(&self.backend.families);
        self.spawn_op(async move { Ok(families.insert(&msg.family, &msg.origin, msg.now).await?) }, ctx)
    }
}

impl Handler<RevokeFamilies> for OrgActor {
    type Result = ResponseFuture<Result<(), FamilyError>>;

    fn handle(&mut self, msg: RevokeFamilies, ctx: &mut Self::Context) -> Self::Result {
        self.idle_ticks = 0;
        let backend = self.backend.clone();
        let access_ttl = self.settings.access_ttl;
        self.spawn_op(async move { revoke(&backend, &msg.sids, msg.reason, msg.now, access_ttl).await }, ctx)
    }
}

impl Handler<RotateRefreshToken> for OrgActor {
    type Result = ResponseFuture<RotateResult>;

    fn handle(&mut self, msg: RotateRefreshToken, ctx: &mut Self::Context) -> Self::Result {
        self.enqueue(msg.sid, Step::Rotate(msg.presented, msg.move_to), msg.now, ctx)
    }
}

impl Handler<ElevateFamily> for OrgActor {
    type Result = ResponseFuture<RotateResult>;

    fn handle(&mut self, msg: ElevateFamily, ctx: &mut Self::Context) -> Self::Result {
        self.enqueue(msg.sid, Step::Elevate, msg.now, ctx)
    }
}

/// Denylists the access tokens of `sids` for as long as any of them can live, on any replica's clock, then
/// ends the families durably. In this order a failure of either step leaves the families live for the
/// client's retry to end (ending them first, a failed denylist write left nothing for a retry to find, and
/// their access tokens good until they expired); a denial without the durable end only refuses tokens early.
async fn revoke(
    backend: &Backend,
    sids: &[Uuid],
    reason: RevokeReason,
    now: OffsetDateTime,
    access_ttl: Duration,
) -> Result<(), FamilyError> {
    backend.denylist.deny_families(sids, now + access_ttl + CLOCK_SKEW_ALLOWANCE, now).await?;
    backend.families.revoke(sids, reason, now).await?;
    Ok(())
}

/// Presents `presented` to family `sid`: an optimistic compare-and-set first (the live token is the
/// common case: one round trip), and only when that misses, a read and the state machine's decision.
/// A grace-window replay hands back the successor as it is, moved or not.
async fn rotate(
    backend: Backend,
    settings: ActorSettings,
    sid: Uuid,
    presented: Uuid,
    move_to: Option<Move>,
    now: OffsetDateTime,
) -> RotateResult {
    let next = RefreshPointer { jti: Uuid::new_v4(), issued_at: now };
    let change = FamilyChange { aal: None, org_id: move_to.map(|m| m.to), expires_by: move_to.map(|m| m.expires_by) };
    // Each miss means the row changed under us; a third one means something is badly wrong.
    for _ in 0..3 {
        if let Some((family, subject)) = backend.families.rotate(sid, presented, next, change, now).await? {
            if change != FamilyChange::default() {
                mark_changed(backend.denylist.as_ref(), &[Changed::Family(sid)]).await;
            }
            return Ok(Rotation { kind: RotationKind::Rotated, family, subject });
        }
        let Some((family, subject)) = backend.families.load(sid, change.org_id).await? else {
            return Err(FamilyError::NotFound);
        };
        return match decide(&family, subject.standing(&family), presented, now, settings.grace) {
            Decision::Rotate => continue,
            Decision::Replay => Ok(Rotation { kind: RotationKind::Replayed, family, subject }),
            Decision::Reused => {
                tracing::warn!(%sid, org_id = %family.org_id, "refresh token reused after the grace window; revoking the family");
                revoke(&backend, &[sid], RevokeReason::RefreshTokenReused, now, settings.access_ttl).await?;
                Err(FamilyError::Reused)
            }
            Decision::Revoked => Err(FamilyError::Revoked),
            Decision::Expired => Err(FamilyError::Expired),
            Decision::Refused(standing) => Err(FamilyError::Refused(standing)),
        };
    }
    Err(StoreError::Internal(format!("rotation of family {sid} did not settle")).into())
}

/// Raises family `sid` to `aal2` by rotating its live refresh token with the new level, if the family
/// may still be refreshed at `now`.
async fn elevate(backend: Backend, settings: ActorSettings, sid: Uuid, now: OffsetDateTime) -> RotateResult {
    let next = RefreshPointer { jti: Uuid::new_v4(), issued_at: now };
    // A miss means another replica rotated the family meanwhile: read it again.
    for _ in 0..3 {
        let Some((family, subject)) = backend.families.load(sid, None).await? else {
            return Err(FamilyError::NotFound);
        };
        // With the live token presented, only the family's own state can refuse; its standing is judged
        // at the level it is raised to (an organization requiring `aal2` is what this satisfies).
        let standing = subject.standing(&FamilyRecord { aal: Aal::Aal2, ..family.clone() });
        match decide(&family, standing, family.current.jti, now, settings.grace) {
            Decision::Rotate => {}
            Decision::Expired => return Err(FamilyError::Expired),
            Decision::Refused(standing) => return Err(FamilyError::Refused(standing)),
            Decision::Revoked | Decision::Reused | Decision::Replay => return Err(FamilyError::Revoked),
        }
        let current = family.current.jti;
        let change = FamilyChange { aal: Some(Aal::Aal2), ..FamilyChange::default() };
        if let Some((family, subject)) = backend.families.rotate(sid, current, next, change, now).await? {
            mark_changed(backend.denylist.as_ref(), &[Changed::Family(sid)]).await;
            return Ok(Rotation { kind: RotationKind::Elevated, family, subject });
        }
    }
    Err(StoreError::Internal(format!("elevation of family {sid} did not settle")).into())
}
