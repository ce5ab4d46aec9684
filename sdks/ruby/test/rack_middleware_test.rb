# frozen_string_literal: true

require "test_helper"

# The middleware in a real Rack app served by WEBrick, called over HTTP, in front of a real IdentSphere.
class RackMiddlewareTest < Minitest::Test
  include IdentSphereTest

  # The app's handlers answer with the claims the middleware handed them.
  ECHO = lambda do |env|
    claims = env[IdentSphere::Rack::CLAIMS]
    [200, { "content-type" => "application/json" }, [JSON.generate(claims&.to_h)]]
  end

  def app_for(identsphere, verifier: IdentSphere::Verifier.new(identsphere.url), **options)
    Rack::Builder.app do
      map("/me") { run IdentSphere::Rack::Middleware.new(ECHO, verifier: verifier, **options) }
      map("/maybe") { run IdentSphere::Rack::Middleware.new(ECHO, verifier: verifier, optional: true) }
      map("/aal2") { run IdentSphere::Rack::Middleware.new(ECHO, verifier: verifier, require_aal2: true) }
      # The organization of the route, from its path: /orgs/<id>.
      map("/orgs") do
        run IdentSphere::Rack::Middleware.new(ECHO, verifier: verifier, organization: ->(env) { env["PATH_INFO"].delete_prefix("/") })
      end
    end
  end

  def setup
    @app = RackServer.start(app_for(server))
  end

  def teardown
    @app.stop
    super
  end

  def get(path, token = nil, headers = {}, app: @app)
    request(Net::HTTP::Get, path, headers.merge(token ? { "Authorization" => "Bearer #{token}" } : {}), app: app)
  end

  def request(kind, path, headers, app: @app)
    uri = URI("#{app.url}#{path}")
    request = kind.new(uri, headers)
    request.body, request.content_type = "{}", "application/json" if request.request_body_permitted?
    Net::HTTP.start(uri.host, uri.port) { |http| http.request(request) }
  end

  # Asserts an IdentSphere error envelope with this status and code.
  def assert_envelope(response, status, code)
    assert_equal status, response.code.to_i, response.body
    assert_equal "application/json", response["content-type"]
    error = JSON.parse(response.body)["error"]
    assert_equal code, error["code"]
    assert_equal IdentSphere::Error::REFUSALS.fetch(code)[1], error["type"]
    refute_empty error["message"]
  end

  def test_a_valid_bearer_token_reaches_the_app_with_its_claims
    token = sign_up.access_token
    response = get("/me", token)
    assert_equal 200, response.code.to_i
    assert_equal part(token, 1), JSON.parse(response.body)
  end

  def test_no_token_or_a_bad_one_is_refused_with_the_envelope
    missing = get("/me")
    assert_envelope(missing, 401, "token_missing")
    assert_equal "Bearer", missing["www-authenticate"]
    assert_envelope(get("/me", nil, { "Authorization" => "Basic YTpi" }), 401, "token_missing")
    assert_envelope(get("/me", "not-a-jwt"), 401, "token_invalid")
    assert_envelope(get("/me", sign_up.refresh_token), 401, "token_invalid")
  end

  def test_optional_authentication_admits_anonymous_requests_but_not_bad_tokens
    assert_equal "null", get("/maybe").body
    assert_envelope(get("/maybe", "not-a-jwt"), 401, "token_invalid")
    token = sign_up.access_token
    assert_equal part(token, 1)["sub"], JSON.parse(get("/maybe", token).body)["sub"]
  end

  def test_the_access_cookie_works_and_a_cross_site_unsafe_cookie_request_is_refused
    token = sign_up.access_token
    cookie = { "Cookie" => "theme=dark; identsphere_at=#{token}" }
    assert_equal 200, get("/me", nil, cookie).code.to_i
    own_origin = { "Origin" => @app.url }
    assert_equal 200, request(Net::HTTP::Post, "/me", cookie.merge(own_origin)).code.to_i
    assert_envelope(request(Net::HTTP::Post, "/me", cookie.merge("Origin" => "https://evil.example")), 403, "csrf_rejected")
    assert_envelope(request(Net::HTTP::Post, "/me", cookie.merge("Sec-Fetch-Site" => "cross-site")), 403, "csrf_rejected")
    bearer = { "Authorization" => "Bearer #{token}", "Origin" => "https://evil.example" }
    assert_equal 200, request(Net::HTTP::Post, "/me", bearer).code.to_i, "a bearer token is not a CSRF risk"

    allowed = RackServer.start(app_for(server, allowed_origins: ["https://app.example/"]))
    assert_equal 200, request(Net::HTTP::Post, "/me", cookie.merge("Origin" => "https://app.example"), app: allowed).code.to_i
  ensure
    allowed&.stop
  end

  def test_aal2_routes_need_a_second_factor_and_organization_routes_their_organization
    tokens = sign_up
    assert_envelope(get("/aal2", tokens.access_token), 403, "insufficient_aal")
    _, raised = enroll_totp(tokens)
    assert_equal 200, get("/aal2", raised["access_token"]).code.to_i

    organization = tokens.session.organization_id
    assert_equal 200, get("/orgs/#{organization}", tokens.access_token).code.to_i
    assert_envelope(get("/orgs/#{SecureRandom.uuid}", tokens.access_token), 403, "not_a_member")
    pinned = RackServer.start(app_for(server, organization: SecureRandom.uuid))
    assert_envelope(get("/me", tokens.access_token, app: pinned), 403, "not_a_member")
  ensure
    pinned&.stop
  end

  def test_a_revoked_token_is_refused_and_an_unreachable_identsphere_is_503
    feed = IdentSphere::RevocationFeed.new(server.url, platform_api_key: IdentSphereServer::PLATFORM_KEY, poll_interval: 0.2)
    watched = RackServer.start(app_for(server, verifier: IdentSphere::Verifier.new(server.url, revocations: feed)))
    token = sign_up.access_token
    assert_equal 200, get("/me", token, app: watched).code.to_i
    client.logout(access_token: token)
    sleep 0.05 until get("/me", token, app: watched).code.to_i == 401 # the next poll, 0.2 s
    assert_envelope(get("/me", token, app: watched), 401, "token_revoked")

    nowhere = RackServer.start(app_for(server, verifier: IdentSphere::Verifier.new("http://127.0.0.1:9", open_timeout: 1)))
    unavailable = get("/me", token, app: nowhere)
    assert_envelope(unavailable, 503, "service_unavailable")
    assert_equal "1", unavailable["retry-after"]
  ensure
    feed&.stop
    [watched, nowhere].compact.each(&:stop)
  end
end
