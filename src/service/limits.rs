//! The abuse limits the flows apply: server-wide per address, account and token, and an organization's
//! own on top.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{Email, Organization, Rate};

use super::core::*;

/// The abuse limits the flows apply.
#[derive(Clone, Copy, Debug)]
pub(super) enum Limit {
    SigninIp,
    SigninAccountFailures,
    RegisterIp,
    RefreshIp,
    MfaTokenFailures,
    MfaUserFailures,
    EmailIp,
    EmailAccount,
    LinkIp,
    InviteOrg,
    InviteRecipient,
}

impl Limit {
    const fn name(self) -> &'static str {
        match self {
            Self::SigninIp => "signin_ip",
            Self::SigninAccountFailures => "signin_account_failures",
            Self::RegisterIp => "register_ip",
            Self::RefreshIp => "refresh_ip",
            Self::MfaTokenFailures => "mfa_token_failures",
            Self::MfaUserFailures => "mfa_user_failures",
            Self::EmailIp => "email_ip",
            Self::EmailAccount => "email_account",
            Self::LinkIp => "link_ip",
            Self::InviteOrg => "invite_org",
            Self::InviteRecipient => "invite_recipient",
        }
    }

    /// Whether its subject is a client address (grouped by `address_subject`) rather than an account or token.
    const fn per_address(self) -> bool {
        matches!(self, Self::SigninIp | Self::RegisterIp | Self::RefreshIp | Self::EmailIp | Self::LinkIp)
    }
}

/// What a per-address limit counts for the client address `ip`. An IPv6 client is usually given a whole
/// /64 and can rotate through it at will, so an IPv6 address counts as its /64; an IPv4-mapped one
/// (`::ffff:a.b.c.d`) as the IPv4 address it maps. IPv4 addresses count alone.
pub(super) fn address_subject(ip: &str) -> Cow<'_, str> {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => Cow::Owned(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("{}/64", Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        }),
        Ok(IpAddr::V4(_)) | Err(_) => Cow::Borrowed(ip),
    }
}

impl Service {
    /// Applies `limit` to `subject` (an IP or a normalized email): `RateLimited` when over it. With
    /// `consume`, an allowed event is counted. Counters are keyed by a hash, never by the value itself.
    pub(super) async fn limit(&self, limit: Limit, subject: Option<&str>, consume: bool) -> Result<(), ApiError> {
        let rate = match limit {
            Limit::SigninIp => self.limits.signin_ip,
            Limit::SigninAccountFailures => self.limits.signin_account_failures,
            Limit::RegisterIp => self.limits.register_ip,
            Limit::RefreshIp => self.limits.refresh_ip,
            Limit::MfaTokenFailures | Limit::MfaUserFailures => self.limits.mfa_failures,
            Limit::EmailIp => self.limits.email_ip,
            Limit::EmailAccount => self.limits.email_account,
            Limit::LinkIp => self.limits.link_ip,
            Limit::InviteOrg => self.limits.invite_org,
            Limit::InviteRecipient => self.limits.invite_recipient,
        };
        let (Some(rate), Some(subject)) = (rate, subject) else { return Ok(()) };
        let subject = if limit.per_address() { address_subject(subject) } else { Cow::Borrowed(subject) };
        self.check_rate(limit.name(), &subject, rate, consume).await
    }

    /// Checks (and with `consume` counts) one event of `subject` under the limit `name`.
    async fn check_rate(&self, name: &'static str, subject: &str, rate: Rate, consume: bool) -> Result<(), ApiError> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subject.as_bytes());
        let hash: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("{name}:{hash}");
        let checked = self.stores.limiter.check(&key, rate, consume, self.clock.now()).await;
        match checked {
            // Fail open: a limiter outage must not lock every user out. Argon2 still bounds sign-ins to
            // what the hashing permits allow; the outage shows in the log and the store-error metric.
            Err(err) => {
                tracing::warn!(limit = name, error = %err, "rate limiter unavailable; allowing");
                Ok(())
            }
            Ok(None) => Ok(()),
            Ok(Some(wait)) => {
                metrics::counter!("identsphere_auth_rate_limited_total", "limit" => name).increment(1);
                let retry_after = u64::try_from(wait.whole_seconds()).unwrap_or(0) + 1;
                Err(ApiError::RateLimited { retry_after })
            }
        }
    }
}

impl Service {
    /// Counts a mail an organization sends to `recipient` on its members' or keys' word: per
    /// organization and per recipient, so nobody mails an address from our domain without end.
    pub(super) async fn limit_org_mail(&self, org_id: Uuid, recipient: &Email) -> Result<(), ApiError> {
        self.limit(Limit::InviteRecipient, Some(recipient.normalized()), false).await?;
        self.limit(Limit::InviteOrg, Some(&org_id.to_string()), true).await?;
        self.limit(Limit::InviteRecipient, Some(recipient.normalized()), true).await
    }
}

/// The limits an organization may add (`OrgRateLimits`).
#[derive(Clone, Copy, Debug)]
pub(super) enum OrgLimit {
    SigninIp,
    RegisterIp,
}

impl Service {
    /// Applies the organization's own limit, if it sets one, to the client address: counted per
    /// organization, on top of the server-wide limit of the same name.
    pub(super) async fn org_limit(
        &self,
        org: &Organization,
        limit: OrgLimit,
        ip: Option<&str>,
    ) -> Result<(), ApiError> {
        let (rate, name) = match limit {
            OrgLimit::SigninIp => (org.policy.rate_limits.signin_ip, "org_signin_ip"),
            OrgLimit::RegisterIp => (org.policy.rate_limits.register_ip, "org_register_ip"),
        };
        let (Some(rate), Some(ip)) = (rate, ip) else { return Ok(()) };
        self.check_rate(name, &format!("{}:{}", org.id, address_subject(ip)), rate, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_count_alone_for_ipv4_and_by_their_64_for_ipv6() {
        assert_eq!(address_subject("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_subject("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_subject("2001:db8:7:1:abcd::1"), "2001:db8:7:1::/64");
        assert_eq!(address_subject("2001:db8:7:1:ffff:ffff:ffff:ffff"), "2001:db8:7:1::/64");
        assert_ne!(address_subject("2001:db8:7:2::1"), address_subject("2001:db8:7:1::1"));
    }
}
