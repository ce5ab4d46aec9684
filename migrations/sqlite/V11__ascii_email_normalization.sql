-- Emails are compared with ASCII letters folded and nothing else (src/domain/email.rs). SQLite's own
-- lower() folds ASCII only, which is that form; the server used to fold Unicode case, which joined
-- different mailboxes (U+212A KELVIN SIGN lower-cases to `k`).
UPDATE users SET email_normalized = lower(email) WHERE email_normalized <> lower(email);
UPDATE invitations SET email_normalized = lower(email) WHERE email_normalized <> lower(email);
