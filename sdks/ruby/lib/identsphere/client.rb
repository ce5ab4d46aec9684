# frozen_string_literal: true

require "json"

module IdentSphere
  # IdentSphere's REST API for a backend that signs users in on their behalf: sign-up, sign-in, refresh
  # and organization switching, logout, the session, the second factor and the account calls.
  #
  # Safe to share between threads (it keeps no state between calls). Every refusal raises an
  # IdentSphere::Error with the catalog's `code`. No call is retried.
  class Client
    # `timeout` / `open_timeout`: seconds (see IdentSphere::HTTP); `transport`: your own (see HTTP).
    def initialize(base_url, timeout: 10, open_timeout: 5, transport: nil)
      @connection = Connection.new(base_url, transport: transport || HTTP.new(open_timeout: open_timeout, timeout: timeout))
    end

    # Creates an account and signs it in: a TokenResponse, or MfaRequired (with `enrollment_required`)
    # into an organization that requires a second factor. Without `organization` (id or slug) or
    # `invitation` (a link's token) the user gets a personal organization of their own.
    #
    # Refusals: invalid_request, invalid_email, weak_password, email_taken, organization_not_found,
    # signup_not_allowed, invitation_invalid, invitation_email_mismatch, rate_limited.
    def register(email:, password:, display_name: nil, organization: nil, invitation: nil)
      sign_in("/v1/auth/register", 201, email: email, password: password, display_name: display_name,
                                        organization: organization, invitation: invitation)
    end

    # Signs a user in with email and password: a TokenResponse, or MfaRequired when a second factor is
    # due (a normal outcome, not an error: `result.mfa_required?`). `organization` (id or slug): where
    # to sign in; default the user's most recently used.
    #
    # Refusals: invalid_credentials (wrong password or unknown email, indistinguishably), invalid_email,
    # not_a_member, organization_not_found, account_disabled, auth_method_not_allowed, rate_limited.
    def login(email:, password:, organization: nil)
      sign_in("/v1/auth/login", 200, email: email, password: password, organization: organization)
    end

    # Exchanges the refresh token for a new pair (the one sent is spent). With `organization` (id or
    # slug) it switches the session into that organization: `org` changes; `sid`, `aal` and `auth_time`
    # stay.
    #
    # Refusals: token_missing, token_invalid, token_expired, token_revoked, refresh_token_reused (the
    # whole session is revoked), not_a_member, organization_not_found, account_disabled,
    # insufficient_aal, auth_method_not_allowed, rate_limited.
    def refresh(refresh_token, organization: nil)
      tokens(call("POST", "/v1/auth/refresh", 200, body: { refresh_token: refresh_token, organization: organization }))
    end

    # Ends sessions: `scope` `:local` (this one), `:others` or `:global`. Authenticated by the access
    # token, or by the refresh token when the access token has expired. Their access tokens are refused
    # by IdentSphere at once, and by Verifiers through the revocation feed.
    #
    # Refusals: token_missing, token_invalid, token_expired, token_revoked, invalid_request.
    def logout(access_token: nil, refresh_token: nil, scope: :local)
      call("POST", "/v1/auth/logout", 204, bearer: access_token, body: { refresh_token: refresh_token, scope: scope.to_s })
      nil
    end

    # What IdentSphere says of the session of `access_token` now: a SessionInfo. Unlike
    # Verifier#verify it sees a logout at once (one round trip).
    #
    # Refusals: token_missing, token_invalid, token_expired, token_revoked, account_disabled, not_a_member.
    def session(access_token)
      SessionInfo.from_json(call("GET", "/v1/auth/session", 200, bearer: access_token))
    end

    # Checks a second factor (`code`: a 6-digit TOTP code or a recovery code) and answers with a
    # TokenResponse at `aal2`, for one of two purposes:
    # - completing a sign-in: `mfa_token` (from MfaRequired);
    # - stepping a signed-in session up: `access_token` and that session's `refresh_token`.
    #
    # Refusals: mfa_invalid_code (wrong or already used), token_missing, token_invalid (an mfa token that
    # is not ours or was used), token_expired, rate_limited (too many wrong codes).
    def verify_mfa(code:, mfa_token: nil, access_token: nil, refresh_token: nil)
      body = { code: code, mfa_token: mfa_token, refresh_token: refresh_token }
      tokens(call("POST", "/v1/auth/mfa/verify", 200, bearer: access_token, body: body))
    end

    # Asks for a reset link to be mailed. The answer is the same whether or not the email has an account.
    #
    # Refusals: invalid_email, rate_limited.
    def forgot_password(email)
      call("POST", "/v1/auth/password/forgot", 202, body: { email: email })
      nil
    end

    # Sets a new password with the token of a reset link; every session of the user ends.
    #
    # Refusals: link_invalid (unknown, expired or used), weak_password, rate_limited.
    def reset_password(token:, password:)
      call("POST", "/v1/auth/password/reset", 204, body: { token: token, password: password })
      nil
    end

    # Sets a new password for the user of `access_token`; the user's other sessions end.
    #
    # Refusals: invalid_credentials (wrong current password), weak_password, insufficient_aal (the user
    # has a second factor and the session is aal1), token_* codes, rate_limited.
    def change_password(access_token, current_password:, new_password:)
      body = { current_password: current_password, new_password: new_password }
      call("POST", "/v1/auth/password", 204, bearer: access_token, body: body)
      nil
    end

    # Marks the address verified with the token of a verification link.
    #
    # Refusals: link_invalid, rate_limited.
    def verify_email(token)
      call("POST", "/v1/auth/email/verify", 204, body: { token: token })
      nil
    end

    def inspect = "#<#{self.class.name} #{@connection.base_url}>"

    private

    # Either answer of a sign-in: the tokens, or the second-factor step.
    def sign_in(path, status, **body)
      answer = call("POST", path, status, body: body)
      answer["mfa_required"] ? MfaRequired.from_json(answer) : tokens(answer)
    end

    def tokens(answer) = TokenResponse.from_json(answer)

    # Sends a request (nil fields of `body` left out, so a request says only what the caller set) and
    # returns the parsed answer of status `expected`; any other status raises.
    def call(method, path, expected, bearer: nil, body: nil)
      response = @connection.request(method, path, bearer: bearer, body: body&.compact)
      parsed = parse(response)
      raise Error.from_response(response.status, response.headers, parsed) unless response.status == expected

      parsed
    end

    def parse(response)
      return nil if response.body.empty?

      JSON.parse(response.body)
    rescue JSON::ParserError
      raise Error.build(status: response.status, code: "unexpected_response", type: "client_error",
                        message: "HTTP #{response.status} with a body that is not JSON",
                        request_id: response.headers["x-request-id"])
    end
  end
end
