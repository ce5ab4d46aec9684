-- Emails are compared with ASCII letters folded and nothing else (src/domain/email.rs): Unicode case
-- mapping joined different mailboxes (U+212A KELVIN SIGN lower-cases to `k`). Folding less can only split
-- what was joined, never join two rows, so the unique constraint holds. translate() folds ASCII only.
UPDATE users
   SET email_normalized = translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
 WHERE email_normalized <> translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
UPDATE invitations
   SET email_normalized = translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
 WHERE email_normalized <> translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
