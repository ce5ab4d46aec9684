# frozen_string_literal: true

require "openssl"
require "securerandom"

# What the tests do besides the SDK's calls: sign up users, enroll a second factor, create an
# organization, forge tokens. Included in every test class.
module IdentSphereTest
  # Passes IdentSphere's password policy.
  PASSWORD = "correct horse battery staple"

  class << self
    # The server most tests use, started on first use and stopped after the run.
    def shared_server = @shared_server ||= IdentSphereServer.start

    def stop_shared_server = @shared_server&.stop
  end

  def server = IdentSphereTest.shared_server

  # A server for this test alone (other settings, or requests counted at the server), stopped after it.
  def own_server(overrides = {})
    started = IdentSphereServer.start(overrides)
    (@own_servers ||= []) << started
    started
  end

  def teardown
    (@own_servers || []).each(&:stop)
    super
  end

  def client(on = server) = IdentSphere::Client.new(on.url)

  def unique_email = "ruby-sdk-#{SecureRandom.hex(8)}@example.com"

  # A new user signed in on `on`: the TokenResponse.
  def sign_up(on = server, email: unique_email)
    client(on).register(email: email, password: PASSWORD)
  end

  # A JSON request for what the SDK does not wrap (enrolling TOTP, creating an organization); checks
  # the status and returns the parsed answer (nil for none).
  def api(method, path, bearer: nil, body: nil, status: 200, on: server)
    uri = URI("#{on.url}#{path}")
    request = Net::HTTPGenericRequest.new(method, !body.nil?, true, uri.request_uri,
                                          { "Content-Type" => "application/json" })
    request["Authorization"] = "Bearer #{bearer}" if bearer
    request.body = JSON.generate(body) if body
    response = Net::HTTP.start(uri.host, uri.port) { |http| http.request(request) }
    assert_equal status, response.code.to_i, "#{method} #{path}: #{response.body}"
    response.body.to_s.empty? ? nil : JSON.parse(response.body)
  end

  # RFC 6238 with what IdentSphere and every authenticator app use: HMAC-SHA1, 6 digits, 30-second steps.
  def totp(secret, at = Time.now)
    mac = OpenSSL::HMAC.digest("SHA1", base32_decode(secret), [at.to_i / 30].pack("Q>"))
    offset = mac.bytes.last & 0x0f
    format("%06d", (mac[offset, 4].unpack1("N") & 0x7fffffff) % 1_000_000)
  end

  # RFC 4648 base32 (the TOTP secret): Ruby's standard library has none.
  def base32_decode(text)
    bits = text.delete("=").upcase.each_char.map { |c| format("%05b", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".index(c)) }.join
    [bits[0, bits.size / 8 * 8]].pack("B*")
  end

  # Enrolls and confirms TOTP in the session of `tokens` (a recent sign-in): the secret and the
  # confirmation's answer (the session at aal2, with access_token, refresh_token and recovery_codes).
  def enroll_totp(tokens, on = server)
    secret = api("POST", "/v1/auth/mfa/totp", bearer: tokens.access_token, body: {}, on: on)["secret"]
    confirmed = api("POST", "/v1/auth/mfa/totp/confirm", bearer: tokens.access_token, on: on,
                                                         body: { code: totp(secret), refresh_token: tokens.refresh_token })
    [secret, confirmed]
  end

  # A new organization owned by the user of `access_token`: its id.
  def create_organization(access_token, on = server)
    slug = "ruby-#{SecureRandom.hex(4)}"
    api("POST", "/v1/organizations", bearer: access_token, body: { name: "Org #{slug}", slug: slug }, status: 201, on: on)["id"]
  end

  # A part of a JWT (0: header, 1: claims) as a Hash.
  def part(token, index) = JSON.parse(Base64.urlsafe_decode64(token.split(".")[index]))

  def b64(data) = Base64.urlsafe_encode64(data, padding: false)

  # A JWT of `header` and `claims` signed with RS256 by `key`.
  def sign_rs256(key, header, claims)
    input = "#{b64(JSON.generate(header))}.#{b64(JSON.generate(claims))}"
    "#{input}.#{b64(key.sign(OpenSSL::Digest.new('SHA256'), input))}"
  end

  # A JWT of `header` and `claims` MACed with HS256 under `secret`.
  def sign_hs256(secret, header, claims)
    input = "#{b64(JSON.generate(header))}.#{b64(JSON.generate(claims))}"
    "#{input}.#{b64(OpenSSL::HMAC.digest('SHA256', secret, input))}"
  end

  # Asserts that the block raises an IdentSphere::Error with this status and code, and returns it.
  def assert_refused(status, code, &block)
    error = assert_raises(IdentSphere::Error, &block)
    assert_equal [status, code], [error.status, error.code], error.inspect
    refute_empty error.type
    refute_empty error.message
    error
  end
end
