# frozen_string_literal: true

require "pp"
require "test_helper"

class ClientTest < Minitest::Test
  include IdentSphereTest

  def test_register_answers_with_a_typed_token_response_that_prints_no_token
    email = unique_email
    tokens = client.register(email: email, password: PASSWORD, display_name: "Ada")

    refute tokens.mfa_required?
    assert_equal ["Bearer", email, "Ada", false], [tokens.token_type, tokens.user.email, tokens.user.display_name,
                                                   tokens.user.email_verified]
    assert_equal %w[aal1 password], [tokens.session.aal, tokens.session.auth_method]
    assert_operator tokens.expires_in, :>, 0
    assert_equal tokens.user.id, part(tokens.access_token, 1)["sub"]
    [tokens.inspect, tokens.to_s, PP.pp(tokens, +"")].each do |printed|
      refute_includes printed, tokens.access_token
      refute_includes printed, tokens.refresh_token
    end
  end

  def test_login_session_refresh_and_logout_follow_one_session_family
    email = sign_up.user.email
    signed_in = client.login(email: email, password: PASSWORD)
    info = client.session(signed_in.access_token)
    assert_equal [email, signed_in.session.id, "owner", [], 0],
                 [info.user.email, info.session.id, info.organization.role, info.factors, info.recovery_codes_left]

    refreshed = client.refresh(signed_in.refresh_token)
    assert_equal signed_in.session.id, refreshed.session.id
    refute_equal signed_in.refresh_token, refreshed.refresh_token

    assert_nil client.logout(access_token: refreshed.access_token)
    assert_refused(401, "token_revoked") { client.session(refreshed.access_token) }
  end

  def test_logout_scopes_end_this_session_others_or_all
    email = sign_up.user.email
    sessions = Array.new(4) { client.login(email: email, password: PASSWORD) }
    live = lambda do |tokens|
      client.session(tokens.access_token)
      true
    rescue IdentSphere::AuthenticationError
      false
    end

    client.logout(access_token: sessions[0].access_token, scope: :others)
    assert_equal [true, false, false, false], sessions.map(&live)
    sessions[1..] = Array.new(3) { client.login(email: email, password: PASSWORD) }
    client.logout(access_token: sessions[1].access_token, scope: :global)
    assert_equal [false] * 4, sessions.map(&live)

    expired_access = client.login(email: email, password: PASSWORD)
    client.logout(refresh_token: expired_access.refresh_token)
    refute live.call(expired_access), "a logout by refresh token ends its session"
  end

  def test_every_refusal_is_an_error_with_the_catalog_code_and_the_request_id
    alice = sign_up
    bob = sign_up
    cases = {
      "register: taken" => [409, "email_taken", IdentSphere::ConflictError, nil,
                            -> { client.register(email: alice.user.email, password: PASSWORD) }],
      "register: weak password" => [422, "weak_password", IdentSphere::InvalidRequestError, "password",
                                    -> { client.register(email: unique_email, password: "password123") }],
      "register: invalid email" => [422, "invalid_email", IdentSphere::InvalidRequestError, "email",
                                    -> { client.register(email: "not an email", password: PASSWORD) }],
      "register: unknown organization" => [404, "organization_not_found", IdentSphere::InvalidRequestError, nil,
                                           -> { client.register(email: unique_email, password: PASSWORD, organization: "no-such-org") }],
      "register: closed organization" => [403, "signup_not_allowed", IdentSphere::PermissionError, nil,
                                          lambda {
                                            client.register(email: unique_email, password: PASSWORD,
                                                            organization: alice.session.organization_id)
                                          }],
      "login: wrong password" => [401, "invalid_credentials", IdentSphere::AuthenticationError, nil,
                                  -> { client.login(email: alice.user.email, password: "wrong horse battery staple") }],
      "login: another user's organization" => [403, "not_a_member", IdentSphere::PermissionError, nil,
                                               lambda {
                                                 client.login(email: alice.user.email, password: PASSWORD,
                                                              organization: bob.session.organization_id)
                                               }],
      "refresh: no token" => [401, "token_missing", IdentSphere::AuthenticationError, nil, -> { client.refresh(nil) }],
      "refresh: an access token" => [401, "token_invalid", IdentSphere::AuthenticationError, nil,
                                     -> { client.refresh(alice.access_token) }],
      "logout: no credential" => [401, "token_missing", IdentSphere::AuthenticationError, nil, -> { client.logout }],
      "logout: unknown scope" => [400, "invalid_request", IdentSphere::InvalidRequestError, "scope",
                                  -> { client.logout(access_token: alice.access_token, scope: :everything) }],
      "session: a refresh token" => [401, "token_invalid", IdentSphere::AuthenticationError, nil,
                                     -> { client.session(alice.refresh_token) }],
      "verify mfa: not an mfa token" => [401, "token_invalid", IdentSphere::AuthenticationError, nil,
                                         -> { client.verify_mfa(mfa_token: alice.access_token, code: "123456") }],
      "forgot password: invalid email" => [422, "invalid_email", IdentSphere::InvalidRequestError, "email",
                                           -> { client.forgot_password("nobody") }],
      "reset password: unknown link" => [400, "link_invalid", IdentSphere::InvalidRequestError, nil,
                                         -> { client.reset_password(token: "x" * 43, password: "a new passphrase for me") }],
      "change password: wrong current one" => [401, "invalid_credentials", IdentSphere::AuthenticationError, nil,
                                               lambda {
                                                 client.change_password(bob.access_token, current_password: "wrong horse battery staple",
                                                                                          new_password: "a new passphrase for me")
                                               }],
      "verify email: unknown link" => [400, "link_invalid", IdentSphere::InvalidRequestError, nil,
                                       -> { client.verify_email("x" * 43) }]
    }
    cases.each do |name, (status, code, klass, param, call)|
      error = assert_refused(status, code, &call)
      assert_kind_of klass, error, name
      assert_match(/\A[0-9a-f-]{36}\z/, error.request_id, name)
      assert_equal param, error.param, name if param
      assert_includes error.inspect, code
    end
  end

  def test_a_reused_refresh_token_revokes_the_family
    on = own_server("IDENTSPHERE_REFRESH_REUSE_GRACE" => "0")
    first = sign_up(on)
    second = client(on).refresh(first.refresh_token)
    assert_refused(401, "refresh_token_reused") { client(on).refresh(first.refresh_token) }
    assert_refused(401, "token_revoked") { client(on).refresh(second.refresh_token) }
  end

  def test_a_second_factor_is_an_outcome_of_login_and_verify_mfa_completes_or_steps_up
    owner = sign_up
    email = owner.user.email
    login = -> { client.login(email: email, password: PASSWORD) }
    # Two sessions signed in before the factor exists: they stay aal1.
    step_up = login.call
    stay_aal1 = login.call
    secret, confirmed = enroll_totp(owner)
    codes = confirmed["recovery_codes"]
    assert_equal 10, codes.size

    pending = login.call
    assert pending.mfa_required?
    assert_equal [["totp"], false], [pending.factors, pending.enrollment_required]
    refute_includes pending.inspect, pending.mfa_token
    assert_refused(401, "mfa_invalid_code") { client.verify_mfa(mfa_token: pending.mfa_token, code: "000000") }
    # The confirmation spent this 30-second step's code: the next step's is within the ±1 step accepted.
    signed_in = client.verify_mfa(mfa_token: pending.mfa_token, code: totp(secret, Time.now + 30))
    assert_equal %w[aal2 aal2], [signed_in.session.aal, part(signed_in.access_token, 1)["aal"]]
    # A recovery code completes a sign-in too.
    assert_equal "aal2", client.verify_mfa(mfa_token: login.call.mfa_token, code: codes[0]).session.aal

    # Step-up: a session from before the factor, with its refresh token and a recovery code.
    raised = client.verify_mfa(access_token: step_up.access_token, refresh_token: step_up.refresh_token, code: codes[1])
    assert_equal ["aal1", "aal2", step_up.session.id], [step_up.session.aal, raised.session.aal, raised.session.id]
    info = client.session(raised.access_token)
    assert_equal [8, ["totp"]], [info.recovery_codes_left, info.factors.map(&:type)]
    refute_nil info.factors[0].confirmed_at
    # Once the user has a factor, changing the password needs aal2.
    assert_refused(403, "insufficient_aal") do
      client.change_password(stay_aal1.access_token, current_password: PASSWORD, new_password: "a new passphrase for me")
    end
  end

  def test_refresh_with_an_organization_switches_the_session
    tokens = sign_up
    acme = create_organization(tokens.access_token)

    switched = client.refresh(tokens.refresh_token, organization: acme)
    claims = IdentSphere::Verifier.new(server.url).verify(switched.access_token)
    assert_equal [acme, acme, tokens.session.id], [switched.session.organization_id, claims.org, claims.sid]
    assert_refused(403, "not_a_member") do
      client.refresh(switched.refresh_token, organization: sign_up.session.organization_id)
    end
  end

  def test_the_account_calls_verify_the_email_reset_and_change_the_password
    tokens = sign_up
    email = tokens.user.email

    assert_nil client.verify_email(server.mailed_token(email, "/verify-email"))
    assert client.session(tokens.access_token).user.email_verified

    assert_nil client.forgot_password(email)
    assert_nil client.forgot_password(unique_email), "an unknown email gets the same answer"
    link = server.mailed_token(email, "/reset-password")
    assert_refused(422, "weak_password") { client.reset_password(token: link, password: "password123") }
    client.reset_password(token: link, password: "a reset passphrase here")
    assert_refused(400, "link_invalid") { client.reset_password(token: link, password: "another passphrase here") }
    assert_refused(401, "token_revoked") { client.session(tokens.access_token) } # a reset ends every session

    signed_in = client.login(email: email, password: "a reset passphrase here")
    client.change_password(signed_in.access_token, current_password: "a reset passphrase here",
                                                   new_password: "a changed passphrase")
    refute client.login(email: email, password: "a changed passphrase").mfa_required?
  end

  def test_wrong_second_factor_codes_are_rate_limited_with_retry_after
    tokens = sign_up
    enroll_totp(tokens)
    pending = client.login(email: tokens.user.email, password: PASSWORD)
    5.times { assert_refused(401, "mfa_invalid_code") { client.verify_mfa(mfa_token: pending.mfa_token, code: "000000") } }
    limited = assert_refused(429, "rate_limited") { client.verify_mfa(mfa_token: pending.mfa_token, code: "000000") }
    assert_kind_of IdentSphere::RateLimitError, limited
    assert_operator limited.retry_after, :>=, 1
  end

  def test_the_client_sends_its_user_agent_and_times_out
    tokens = sign_up
    sessions = api("GET", "/v1/auth/sessions", bearer: tokens.access_token)["sessions"]
    assert_equal "identsphere-ruby/#{IdentSphere::VERSION} (ruby #{RUBY_VERSION})", sessions[0]["user_agent"]

    # A server that accepts and never answers.
    hung = TCPServer.new("127.0.0.1", 0)
    slow = IdentSphere::Client.new("http://127.0.0.1:#{hung.addr[1]}", timeout: 0.3)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    error = assert_refused(0, "network_error") { slow.login(email: unique_email, password: PASSWORD) }
    assert_kind_of IdentSphere::ClientError, error
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 5
    refute_includes error.message, PASSWORD
  ensure
    hung&.close
  end

  def test_an_answer_without_the_envelope_is_unexpected_response
    # A proxy in front of IdentSphere whose upstream is down answers with a page of its own.
    proxy = RackServer.start(->(_env) { [502, { "content-type" => "text/html" }, ["<h1>Bad Gateway</h1>"]] })
    error = assert_refused(502, "unexpected_response") do
      IdentSphere::Client.new(proxy.url).login(email: unique_email, password: PASSWORD)
    end
    assert_kind_of IdentSphere::ClientError, error
  ensure
    proxy&.stop
  end

  def test_a_transport_of_your_own_carries_every_call
    seen = []
    http = IdentSphere::HTTP.new
    recording = lambda do |method, uri, headers, body|
      seen << [method, uri.path]
      http.call(method, uri, headers, body)
    end
    own = IdentSphere::Client.new(server.url, transport: recording)
    own.session(own.register(email: unique_email, password: PASSWORD).access_token)
    assert_equal [%w[POST /v1/auth/register], %w[GET /v1/auth/session]], seen
  end
end
