# frozen_string_literal: true

require "json"
require_relative "../identsphere"

module IdentSphere
  # Rack integration (Rails, Sinatra, Hanami and every other Rack app). It needs no `rack` gem: a Rack
  # middleware is a plain object with `call(env)`.
  module Rack
    # Where the middleware puts the verified IdentSphere::Claims: `env["identsphere.claims"]`.
    CLAIMS = "identsphere.claims"
    # The access-token cookie IdentSphere sets.
    ACCESS_COOKIE = "identsphere_at"
    SAFE_METHODS = %w[GET HEAD OPTIONS TRACE].freeze

    # The Rack answer to a refusal: IdentSphere's status and error envelope, so a client of your service
    # reads it as it reads IdentSphere's own. A failure on the client's side (IdentSphere unreachable) is
    # answered as `503 service_unavailable`. For controllers too: `status, headers, body = refusal(e)`.
    def self.refusal(error)
      error = Error.refusal("service_unavailable") if error.status < 400
      body = JSON.generate(error.envelope)
      headers = { "content-type" => "application/json", "content-length" => body.bytesize.to_s }
      headers["www-authenticate"] = "Bearer" if error.status == 401
      headers["retry-after"] = (error.retry_after || 1).to_s if [429, 503].include?(error.status)
      [error.status, headers, [body]]
    end

    # Verifies the request's access token and hands its claims to the app at env["identsphere.claims"];
    # refuses otherwise, with the API's envelope and status:
    # - `401 token_missing`, `token_invalid`, `token_expired`, `token_revoked`;
    # - `403 insufficient_aal` with `require_aal2: true` and a session without a second factor;
    # - `403 not_a_member` with `organization:` (an id, or a callable of the env returning one, e.g. from
    #   the path) and a token of another organization;
    # - `403 csrf_rejected` for a cookie-authenticated unsafe request (POST, PUT, PATCH, DELETE) from
    #   another origin than the request's own host or one of `allowed_origins`, as IdentSphere does.
    # The token is `Authorization: Bearer …`, else the `identsphere_at` cookie. With `optional: true` a
    # request without any token reaches the app with no claims (a token that was sent must still verify).
    class Middleware
      def initialize(app, verifier:, require_aal2: false, organization: nil, optional: false, allowed_origins: [])
        @app = app
        @verifier = verifier
        @require_aal2 = require_aal2
        @organization = organization
        @optional = optional
        @allowed_origins = allowed_origins.map { |origin| origin.chomp("/") }
      end

      def call(env)
        claims = authenticate(env)
      rescue Error => e
        Rack.refusal(e)
      else
        env[CLAIMS] = claims
        @app.call(env)
      end

      private

      # The verified claims, nil for an anonymous request when optional; raises the refusal otherwise.
      def authenticate(env)
        token = credential(env)
        return nil if token.nil? && @optional
        raise Error.refusal("token_missing") if token.nil?

        claims = @verifier.verify(token)
        raise Error.refusal("insufficient_aal") if @require_aal2 && !claims.aal2?

        required = @organization.respond_to?(:call) ? @organization.call(env) : @organization
        raise Error.refusal("not_a_member") if required && claims.org != required

        claims
      end

      # The bearer token, else the access cookie (after the CSRF check); nil when neither was sent.
      def credential(env)
        scheme, bearer = env["HTTP_AUTHORIZATION"].to_s.split(" ", 2)
        return bearer.strip if scheme&.casecmp?("bearer") && !bearer.to_s.strip.empty?

        cookie = cookie(env["HTTP_COOKIE"])
        raise Error.refusal("csrf_rejected") if cookie && !same_origin?(env)

        cookie
      end

      def cookie(header)
        header.to_s.split(";").each do |pair|
          name, value = pair.strip.split("=", 2)
          return value if name == ACCESS_COOKIE && !value.to_s.empty?
        end
        nil
      end

      # Safe methods pass; an unsafe one needs an allowed `Origin` (without a list, the request's own
      # host), or, without `Origin`, no `Sec-Fetch-Site: cross-site`: a browser sends the cookie whichever
      # site made the request.
      def same_origin?(env)
        return true if SAFE_METHODS.include?(env["REQUEST_METHOD"])

        origin = env["HTTP_ORIGIN"]
        return env["HTTP_SEC_FETCH_SITE"] != "cross-site" if origin.nil?
        return @allowed_origins.include?(origin) unless @allowed_origins.empty?

        _, host = origin.split("://", 2)
        !host.nil? && host == env["HTTP_HOST"]
      end
    end
  end
end
