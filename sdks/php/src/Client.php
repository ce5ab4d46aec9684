<?php

declare(strict_types=1);

namespace IdentSphere;

use IdentSphere\Http\Response;
use IdentSphere\Http\Transport;
use IdentSphere\Model\MfaRequired;
use IdentSphere\Model\SessionInfo;
use IdentSphere\Model\TokenResponse;

/**
 * IdentSphere's REST API for a backend that signs users in on their behalf: sign-up, sign-in, refresh and
 * organization switching, logout, the session, the second factor and the account calls.
 *
 * Every refusal throws an IdentSphereException with the catalog's `errorCode`. No call is retried, and
 * nothing is logged. Passwords, codes and tokens are `#[\SensitiveParameter]`: stack traces omit them.
 */
final class Client
{
    private readonly Connection $connection;

    /** @param ?Transport $transport default: a CurlTransport (5 s to connect, 10 s in all) */
    public function __construct(string $baseUrl, ?Transport $transport = null)
    {
        $this->connection = new Connection($baseUrl, $transport);
    }

    /**
     * Creates an account and signs it in: TokenResponse, or MfaRequired (with `enrollmentRequired`) into an
     * organization that requires a second factor. Without `$organization` (id or slug) or `$invitation` (a
     * link's token) the user gets a personal organization of their own.
     *
     * Refusals: invalid_request, invalid_email, weak_password, email_taken, organization_not_found,
     * signup_not_allowed, invitation_invalid, invitation_email_mismatch, rate_limited.
     *
     * @throws IdentSphereException
     */
    public function register(
        string $email,
        #[\SensitiveParameter] string $password,
        ?string $displayName = null,
        ?string $organization = null,
        #[\SensitiveParameter] ?string $invitation = null,
    ): TokenResponse|MfaRequired {
        return $this->signIn('/v1/auth/register', 201, [
            'email' => $email, 'password' => $password, 'display_name' => $displayName,
            'organization' => $organization, 'invitation' => $invitation,
        ]);
    }

    /**
     * Signs a user in with email and password: TokenResponse, or MfaRequired when a second factor is due (a
     * normal outcome, not an error: `$result->mfaRequired()`). `$organization` (id or slug): where to sign
     * in; default the user's most recently used.
     *
     * Refusals: invalid_credentials (wrong password or unknown email, indistinguishably), invalid_email,
     * not_a_member, organization_not_found, account_disabled, auth_method_not_allowed, rate_limited.
     *
     * @throws IdentSphereException
     */
    public function login(string $email, #[\SensitiveParameter] string $password, ?string $organization = null): TokenResponse|MfaRequired
    {
        return $this->signIn('/v1/auth/login', 200, ['email' => $email, 'password' => $password, 'organization' => $organization]);
    }

    /**
     * Exchanges the refresh token for a new pair (the one sent is spent). With `$organization` (id or slug)
     * it switches the session into that organization: `org` changes; `sid`, `aal` and `auth_time` stay.
     *
     * Refusals: token_missing, token_invalid, token_expired, token_revoked, refresh_token_reused (the whole
     * session is revoked), not_a_member, organization_not_found, account_disabled, insufficient_aal,
     * auth_method_not_allowed, rate_limited.
     *
     * @throws IdentSphereException
     */
    public function refresh(#[\SensitiveParameter] ?string $refreshToken, ?string $organization = null): TokenResponse
    {
        return TokenResponse::fromJson($this->call('POST', '/v1/auth/refresh', 200, body: [
            'refresh_token' => $refreshToken, 'organization' => $organization,
        ]));
    }

    /**
     * Ends sessions (this one, the user's others, or all), authenticated by the access token, or by the
     * refresh token when the access token has expired. Their access tokens are refused by IdentSphere at
     * once, and by verifiers that follow the revocation feed.
     *
     * Refusals: token_missing, token_invalid, token_expired, token_revoked.
     *
     * @throws IdentSphereException
     */
    public function logout(
        #[\SensitiveParameter] ?string $accessToken = null,
        #[\SensitiveParameter] ?string $refreshToken = null,
        LogoutScope $scope = LogoutScope::Local,
    ): void {
        $this->call('POST', '/v1/auth/logout', 204, $accessToken, ['refresh_token' => $refreshToken, 'scope' => $scope->value]);
    }

    /**
     * What IdentSphere says of the session of `$accessToken` now. Unlike Verifier::verify() it sees a
     * logout at once (one round trip).
     *
     * Refusals: token_missing, token_invalid, token_expired, token_revoked, account_disabled, not_a_member.
     *
     * @throws IdentSphereException
     */
    public function session(#[\SensitiveParameter] string $accessToken): SessionInfo
    {
        return SessionInfo::fromJson($this->call('GET', '/v1/auth/session', 200, $accessToken));
    }

    /**
     * Checks a second factor (`$code`: a 6-digit TOTP code or a recovery code) and answers with tokens at
     * `aal2`, for one of two purposes:
     * - completing a sign-in: `$mfaToken` (from MfaRequired);
     * - stepping a signed-in session up: `$accessToken` and that session's `$refreshToken`.
     *
     * Refusals: mfa_invalid_code (wrong or already used), token_missing, token_invalid (an mfa token that is
     * not ours or was used), token_expired, rate_limited (too many wrong codes).
     *
     * @throws IdentSphereException
     */
    public function verifyMfa(
        #[\SensitiveParameter] string $code,
        #[\SensitiveParameter] ?string $mfaToken = null,
        #[\SensitiveParameter] ?string $accessToken = null,
        #[\SensitiveParameter] ?string $refreshToken = null,
    ): TokenResponse {
        return TokenResponse::fromJson($this->call('POST', '/v1/auth/mfa/verify', 200, $accessToken, [
            'code' => $code, 'mfa_token' => $mfaToken, 'refresh_token' => $refreshToken,
        ]));
    }

    /**
     * Asks for a reset link to be mailed. The answer is the same whether or not the email has an account.
     *
     * Refusals: invalid_email, rate_limited.
     *
     * @throws IdentSphereException
     */
    public function forgotPassword(string $email): void
    {
        $this->call('POST', '/v1/auth/password/forgot', 202, body: ['email' => $email]);
    }

    /**
     * Sets a new password with the token of a reset link; every session of the user ends.
     *
     * Refusals: link_invalid (unknown, expired or used), weak_password, rate_limited.
     *
     * @throws IdentSphereException
     */
    public function resetPassword(#[\SensitiveParameter] string $token, #[\SensitiveParameter] string $password): void
    {
        $this->call('POST', '/v1/auth/password/reset', 204, body: ['token' => $token, 'password' => $password]);
    }

    /**
     * Sets a new password for the user of `$accessToken`; the user's other sessions end.
     *
     * Refusals: invalid_credentials (wrong current password), weak_password, insufficient_aal (the user has a
     * second factor and the session is aal1), token_* codes, rate_limited.
     *
     * @throws IdentSphereException
     */
    public function changePassword(
        #[\SensitiveParameter] string $accessToken,
        #[\SensitiveParameter] string $currentPassword,
        #[\SensitiveParameter] string $newPassword,
    ): void {
        $this->call('POST', '/v1/auth/password', 204, $accessToken, [
            'current_password' => $currentPassword, 'new_password' => $newPassword,
        ]);
    }

    /**
     * Marks the address verified with the token of a verification link.
     *
     * Refusals: link_invalid, rate_limited.
     *
     * @throws IdentSphereException
     */
    public function verifyEmail(#[\SensitiveParameter] string $token): void
    {
        $this->call('POST', '/v1/auth/email/verify', 204, body: ['token' => $token]);
    }

    /**
     * Either answer of a sign-in: the tokens, or the second-factor step.
     *
     * @param array<string, ?string> $body
     */
    private function signIn(string $path, int $status, array $body): TokenResponse|MfaRequired
    {
        $answer = $this->call('POST', $path, $status, body: $body);
        return ($answer['mfa_required'] ?? false) === true ? MfaRequired::fromJson($answer) : TokenResponse::fromJson($answer);
    }

    /**
     * Sends a request (null fields of `$body` left out, so a request says only what the caller set) and
     * returns the decoded answer of status `$expected`; any other status throws.
     *
     * @param ?array<string, ?string> $body
     * @return array<string, mixed>
     */
    private function call(string $method, string $path, int $expected, ?string $bearer = null, ?array $body = null): array
    {
        $body = $body === null ? null : array_filter($body, fn (?string $value) => $value !== null);
        $response = $this->connection->request($method, $path, $bearer, $body);
        if ($response->status !== $expected) {
            throw IdentSphereException::fromResponse($response);
        }
        return $response->body === '' ? [] : self::decode($response);
    }

    /** @return array<string, mixed> */
    private static function decode(Response $response): array
    {
        $decoded = json_decode($response->body, true);
        if (!is_array($decoded)) {
            throw IdentSphereException::unexpected($response, "HTTP {$response->status} with a body that is not a JSON object");
        }
        return $decoded;
    }
}
