//! Outgoing mail: the account-lifecycle messages, rendered from their templates and delivered over SMTP
//! (`lettre`) or, with no SMTP server configured, written to a file outbox in the data directory.
//!
//! It owns the wording and the links; it must not decide who gets mail (the service does) and never
//! logs a link, which is a credential.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use uuid::Uuid;

use crate::config::EmailConfig;

/// The directory of the file outbox, under the data directory.
const OUTBOX_DIR: &str = "outbox";

/// A message the lifecycle sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    /// "Confirm your email address", with a verification link.
    VerifyEmail,
    /// "Reset your password", with a reset link.
    ResetPassword,
    /// "You are invited to join an organization", with an invitation link.
    Invitation,
}

impl MailKind {
    /// The stable name, for metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::Invitation => "invitation",
        }
    }

    /// The page of the application the link opens (it posts the token back to IdentSphere).
    const fn page(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify-email",
            Self::ResetPassword => "reset-password",
            Self::Invitation => "accept-invitation",
        }
    }
}

#[derive(Clone, Debug)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Renders and delivers the lifecycle mail. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    product: String,
    link_base: String,
}

impl Mailer {
    /// SMTP when `config` names a server, else the outbox under `data_dir` (created now, owner-only).
    ///
    /// # Errors
    /// When the SMTP URL or the `From` address cannot be parsed, or the outbox cannot be created.
    pub fn new(config: &EmailConfig, data_dir: &Path) -> anyhow::Result<Self> {
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("IDENTSPHERE_SMTP_URL: not an smtp:// or smtps:// URL")?
                    .build(),
            ),
            None => {
                use std::os::unix::fs::DirBuilderExt as _;
                let outbox = data_dir.join(OUTBOX_DIR);
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&outbox)
                    .with_context(|| format!("creating the mail outbox {}", outbox.display()))?;
                tracing::info!(outbox = %outbox.display(), "IDENTSPHERE_SMTP_URL is not set: mail is written to the outbox");
                Transport::Outbox(outbox)
            }
        };
        let from = config.from.parse().context("IDENTSPHERE_EMAIL_FROM: not a mailbox like `Name <a@b.c>`")?;
        Ok(Self { transport, from, product: config.product_name.clone(), link_base: config.link_base.clone() })
    }

    /// Sends `kind` with the link carrying `token` to `to`; an invitation names its `organization`.
    ///
    /// # Errors
    /// When the message cannot be built or delivered.
    pub async fn send(&self, kind: MailKind, to: &str, token: &str, organization: Option<&str>) -> anyhow::Result<()> {
        let link = format!("{}/{}?token={token}", self.link_base, kind.page());
        let (subject, text, html) = render(kind, &self.product, &link, organization.unwrap_or("an organization"));
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("recipient address")?)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).context("SMTP delivery"),
            Transport::Outbox(dir) => write_outbox(dir, &message.formatted()).await,
        }
    }
}

/// Writes one `.eml` file, owner-only, into the outbox made at start-up (never again: a directory removed
/// under a running server stays removed).
async fn write_outbox(dir: &Path, message: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = dir.to_owned();
    let message = message.to_vec();
    tokio::task::spawn_blocking(move || {
        let name = format!("{}.eml", Uuid::new_v4());
        let mut file = std::fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(dir.join(name))?;
        std::io::Write::write_all(&mut file, &message)
    })
    .await?
    .context("writing to the outbox")
}

/// Subject, plain text and HTML of a message.
fn render(kind: MailKind, product: &str, link: &str, organization: &str) -> (String, String, String) {
    let (subject, lead, action, note) = match kind {
        MailKind::VerifyEmail => (
            format!("Confirm your email address for {product}"),
            format!("Please confirm that this is your email address for your {product} account."),
            "Confirm email address",
            "The link works once and expires in 24 hours. If you did not create an account, ignore this message.",
        ),
        MailKind::ResetPassword => (
            format!("Reset your {product} password"),
            format!("Someone asked to reset the password of your {product} account."),
            "Choose a new password",
            "The link works once and expires in 1 hour; using it signs you out everywhere. A new password \
             removes no second factor: if your account has one, signing in still asks for it. If you did not \
             ask for it, ignore this message: your password stays as it is.",
        ),
        MailKind::Invitation => (
            format!("You are invited to join {organization} on {product}"),
            format!("You have been invited to join {organization} on {product}."),
            "Accept the invitation",
            "The invitation is for this email address only, works once and expires in 7 days. If you do not \
             know the organization, ignore this message.",
        ),
    };
    let text = format!("{lead}\n\n{action}: {link}\n\n{note}\n");
    let html = format!(
        "<!doctype html><html><body><p>{}</p><p><a href=\"{}\">{}</a></p><p>{}</p></body></html>",
        escape(&lead),
        escape(link),
        escape(action),
        escape(note)
    );
    (subject, text, html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_the_link_and_html_is_escaped() {
        let (subject, text, html) =
            render(MailKind::ResetPassword, "Acme <Corp>", "https://a.example/x?token=abc", "-");
        assert_eq!(subject, "Reset your Acme <Corp> password");
        assert!(text.contains("https://a.example/x?token=abc"), "{text}");
        assert!(html.contains("href=\"https://a.example/x?token=abc\""), "{html}");
        assert!(html.contains("Acme &lt;Corp&gt;") && !html.contains("<Corp>"), "{html}");
        // A reset is no way around a second factor, and the mail says so.
        assert!(text.contains("removes no second factor"), "{text}");
    }
}
