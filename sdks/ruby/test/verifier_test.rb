# frozen_string_literal: true

require "test_helper"

class VerifierTest < Minitest::Test
  include IdentSphereTest

  CLAIM_NAMES = %w[sub org iss exp iat typ email jti sid aal auth_time auth_method].freeze

  def verifier(on = server, **options) = IdentSphere::Verifier.new(on.url, **options)

  def test_a_valid_access_token_verifies_to_every_claim_of_the_integration_page
    token = sign_up.access_token
    claims = verifier.verify(token)
    sent = part(token, 1)
    CLAIM_NAMES.each { |name| assert_equal sent[name], claims[name.to_sym], name }
    assert_equal ["access", server.url, false], [claims.typ, claims.iss, claims.aal2?]
    assert_predicate claims, :frozen?
  end

  def test_forged_and_misused_tokens_are_token_invalid
    tokens = sign_up
    token = tokens.access_token
    header = part(token, 0)
    claims = part(token, 1)
    genuine_signature = token.split(".")[2]
    public_pem = own_jwks_key(header["kid"]).public_to_pem
    pending = mfa_pending_login
    forged = {
      "another key under our kid" => sign_rs256(OpenSSL::PKey::RSA.generate(2048), header, claims),
      "alg none" => "#{b64(JSON.generate(header.merge('alg' => 'none')))}.#{b64(JSON.generate(claims))}.",
      "HS256 keyed with our public key" => sign_hs256(public_pem, header.merge("alg" => "HS256"), claims),
      "a changed payload" => "#{token.split('.')[0]}.#{b64(JSON.generate(claims.merge('sub' => SecureRandom.uuid)))}.#{genuine_signature}",
      "no typ in the header" => "#{b64(JSON.generate(header.except('typ')))}.#{token.split('.', 2)[1]}",
      "no kid" => sign_rs256(OpenSSL::PKey::RSA.generate(2048), header.except("kid"), claims),
      "an unknown kid" => sign_rs256(OpenSSL::PKey::RSA.generate(2048), header.merge("kid" => "nope"), claims),
      "a refresh token" => tokens.refresh_token,
      "an mfa token (RS256, our key)" => pending.mfa_token,
      "not a JWT" => "not-a-jwt",
      "padded base64" => "#{token}==",
      "over 8 KiB" => "#{token.split('.')[0]}.#{'A' * 9000}.#{genuine_signature}",
      "empty" => ""
    }
    forged.each do |name, forgery|
      error = assert_raises(IdentSphere::AuthenticationError, name) { verifier.verify(forgery) }
      assert_equal [401, "token_invalid"], [error.status, error.code], name
    end
    assert_equal "mfa", part(pending.mfa_token, 1)["typ"], "the mfa token is refused for its type, not its key"

    error = assert_raises(IdentSphere::AuthenticationError) do
      verifier(issuer: "https://someone-else.example").verify(token)
    end
    assert_equal "token_invalid", error.code, "a token of another issuer"
  end

  def test_an_expired_token_is_token_expired_unless_within_the_leeway
    on = own_server("IDENTSPHERE_ACCESS_TOKEN_TTL" => "1")
    token = sign_up(on).access_token
    strict = verifier(on)
    lenient = verifier(on, leeway: 60)
    strict.verify(token)
    sleep 0.1 until Time.now.to_i >= part(token, 1)["exp"]
    assert_refused(401, "token_expired") { strict.verify(token) }
    assert_equal part(token, 1)["sub"], lenient.verify(token).sub
  end

  def test_a_flood_of_unknown_kids_from_many_threads_costs_one_jwks_fetch
    on = own_server
    claims = part(sign_up(on).access_token, 1)
    attacker = OpenSSL::PKey::RSA.generate(2048)
    shared = verifier(on)
    before = on.served("/.well-known/jwks.json")
    refusals = Array.new(16) do
      Thread.new do
        Array.new(20) do
          shared.verify(sign_rs256(attacker, { "alg" => "RS256", "typ" => "JWT", "kid" => SecureRandom.uuid }, claims))
        rescue IdentSphere::Error => e
          e.code
        end
      end
    end.flat_map(&:value)
    assert_equal ["token_invalid"] * 320, refusals
    assert_equal 1, on.served("/.well-known/jwks.json") - before,
                 "the first kid fetches (the others wait for it), then the 30-second limit holds"
  end

  def test_threads_sharing_a_verifier_fetch_the_keys_once_and_all_verify
    on = own_server
    token = sign_up(on).access_token
    shared = verifier(on)
    before = on.served("/.well-known/jwks.json")
    subs = Array.new(8) { Thread.new { Array.new(25) { shared.verify(token).sub } } }.flat_map(&:value)
    assert_equal [part(token, 1)["sub"]] * 200, subs
    assert_equal 1, on.served("/.well-known/jwks.json") - before
  end

  def test_keys_stay_in_use_when_identsphere_goes_down_and_none_is_service_unavailable
    on = own_server
    token = sign_up(on).access_token
    warm = verifier(on)
    warm.verify(token)
    cold = verifier(on)
    on.stop
    assert_equal part(token, 1)["sub"], warm.verify(token).sub, "verified with the cached keys"
    error = assert_refused(503, "service_unavailable") { cold.verify(token) }
    assert_kind_of IdentSphere::APIError, error
    assert_equal 1, error.retry_after
  end

  def test_cache_control_max_age_is_read_as_the_server_sends_it
    assert_equal 300, IdentSphere::KeyCache.max_age("public, max-age=300")
    assert_equal 5, IdentSphere::KeyCache.max_age("Max-Age=5")
    assert_equal 0, IdentSphere::KeyCache.max_age("no-store")
    assert_nil IdentSphere::KeyCache.max_age("public")
    assert_nil IdentSphere::KeyCache.max_age("max-age=x")
    assert_nil IdentSphere::KeyCache.max_age(nil)
  end

  private

  # The server's public key with this kid, parsed as the SDK parses it.
  def own_jwks_key(kid)
    document = JSON.parse(Net::HTTP.get(URI("#{server.url}/.well-known/jwks.json")))
    IdentSphere::KeyCache.rs256_keys(document).fetch(kid)
  end

  # A login that stops at the second factor: its MfaRequired.
  def mfa_pending_login
    tokens = sign_up
    enroll_totp(tokens)
    client.login(email: tokens.user.email, password: PASSWORD)
  end
end
