-- Why a session family ended, beyond logout and reuse: a password reset or change, or the end of the
-- membership in its organization (removed, or left). One session ended from the session list is a logout.
ALTER TABLE session_families DROP CONSTRAINT session_families_revoked_reason_check;
ALTER TABLE session_families ADD CONSTRAINT session_families_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_others', 'logout_global', 'refresh_token_reused',
    'password_reset', 'password_changed', 'membership_ended'));
-- Session lists read a user's families, newest first.
CREATE INDEX session_families_by_user ON session_families (user_id, created_at DESC);
