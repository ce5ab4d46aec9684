//! The registry of organization actors and the handle callers use to reach one.
//!
//! Actors start lazily on first use, are spread over a few arbiters (threads with their own event loop)
//! by organization id, and stop themselves when idle. Callers see only `OrgHandle`'s async methods:
//! mailboxes, timeouts and restarting an actor that just stopped stay in here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::actor::{
    ActorSettings, Backend, CreateFamily, Directory, ElevateFamily, FamilyError, Move, OrgActor, RevokeFamilies,
    RotateRefreshToken, Rotation,
};
use crate::family::{FamilyRecord, RevokeReason};
use crate::ports::Origin;

/// Starts, finds and spreads the organization actors of this process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    arbiters: Vec<Arbiter>,
    backend: Backend,
    settings: ActorSettings,
    actors: Directory,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

impl Registry {
    /// A registry whose actors run on `arbiters` threads (at least one).
    ///
    /// Must be called inside a running actix system.
    #[must_use]
    pub fn new(backend: Backend, settings: ActorSettings, arbiters: usize) -> Self {
        let arbiters = (0..arbiters.max(1)).map(|_| Arbiter::new()).collect();
        Self { inner: Arc::new(Inner { arbiters, backend, settings, actors: Arc::new(Mutex::new(HashMap::new())) }) }
    }

    /// The handle of organization `org_id`'s actor (started when first asked).
    #[must_use]
    pub fn org(&self, org_id: Uuid) -> OrgHandle {
        OrgHandle { registry: self.clone(), org_id }
    }

    /// Stops every actor (their arbiters) at shutdown; later requests fail as unavailable.
    pub fn stop(&self) {
        for arbiter in &self.inner.arbiters {
            arbiter.stop();
        }
    }

    fn addr(&self, org_id: Uuid) -> Result<Addr<OrgActor>, FamilyError> {
        let inner = &self.inner;
        let mut actors = inner.actors.lock().map_err(|_| FamilyError::Unavailable)?;
        if let Some(addr) = actors.get(&org_id).filter(|addr| addr.connected()) {
            return Ok(addr.clone());
        }
        let index = usize::try_from(org_id.as_u128() % inner.arbiters.len() as u128).unwrap_or(0);
        let arbiter = inner.arbiters.get(index).ok_or(FamilyError::Unavailable)?.handle();
        let (backend, settings, directory) = (inner.backend.clone(), inner.settings, Arc::clone(&inner.actors));
        let addr = OrgActor::start_in_arbiter(&arbiter, move |_| OrgActor::new(org_id, backend, settings, &directory));
        actors.insert(org_id, addr.clone());
        Ok(addr)
    }
}

/// The way to one organization's actor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OrgHandle {
    registry: Registry,
    org_id: Uuid,
}

impl OrgHandle {
    /// Records a new family (a sign-in).
    ///
    /// # Errors
    /// `FamilyError::Store` when the store fails, `Unavailable` when the actor does not answer in time.
    pub async fn create(&self, family: FamilyRecord, origin: Origin, now: OffsetDateTime) -> Result<(), FamilyError> {
        self.ask(CreateFamily { family, origin, now }).await?
    }

    /// Presents the refresh token `presented` of family `sid`: rotates, replays the successor within the
    /// grace window, or detects reuse and revokes the family.
    ///
    /// # Errors
    /// The `FamilyError` naming why the token is refused, or the store or actor failure.
    pub async fn rotate(&self, sid: Uuid, presented: Uuid, now: OffsetDateTime) -> Result<Rotation, FamilyError> {
        self.ask(RotateRefreshToken { sid, presented, move_to: None, now }).await?
    }

    /// Rotates like [`OrgHandle::rotate`] and moves the family into organization `to.to`, whose actor owns
    /// it from then on (the user switched organizations).
    ///
    /// # Errors
    /// As [`OrgHandle::rotate`].
    pub async fn switch(
        &self,
        sid: Uuid,
        presented: Uuid,
        to: Move,
        now: OffsetDateTime,
    ) -> Result<Rotation, FamilyError> {
        self.ask(RotateRefreshToken { sid, presented, move_to: Some(to), now }).await?
    }

    /// Raises family `sid` to `aal2` after a second factor was verified in it: a new refresh token,
    /// serialized with the family's refreshes.
    ///
    /// # Errors
    /// `Revoked`, `Expired`, `Refused` or `NotFound` when the family cannot be refreshed any more; the
    /// store or actor failure.
    pub async fn elevate(&self, sid: Uuid, now: OffsetDateTime) -> Result<Rotation, FamilyError> {
        self.ask(ElevateFamily { sid, now }).await?
    }

    /// Ends these families of this organization and denylists their access tokens.
    ///
    /// # Errors
    /// `FamilyError::Store` when a store fails, `Unavailable` when the actor does not answer in time.
    pub async fn revoke(&self, sids: Vec<Uuid>, reason: RevokeReason, now: OffsetDateTime) -> Result<(), FamilyError> {
        self.ask(RevokeFamilies { sids, reason, now }).await?
    }

    /// Sends `msg`, restarting the actor once if it stopped (idle) between lookup and send.
    async fn ask<M>(&self, msg: M) -> Result<M::Result, FamilyError>
    where
        M: Message + Clone + Send + 'static,
        M::Result: Send,
        OrgActor: Handler<M>,
    {
        let timeout = self.registry.inner.settings.answer_within;
        let mut retried = false;
        loop {
            let addr = self.registry.addr(self.org_id)?;
            match addr.send(msg.clone()).timeout(timeout).await {
                Ok(answer) => return Ok(answer),
                Err(MailboxError::Closed) if !retried => retried = true,
                Err(_) => return Err(FamilyError::Unavailable),
            }
        }
    }
}
