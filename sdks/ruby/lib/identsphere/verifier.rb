# frozen_string_literal: true

require "base64"
require "json"
require "openssl"

module IdentSphere
  # Checks IdentSphere access tokens locally, against the public keys IdentSphere publishes at
  # `/.well-known/jwks.json`: no round trip per request. Safe to share between threads; make one per
  # IdentSphere and keep it for the life of the process (it holds the key cache).
  #
  # The checks are IdentSphere's own: at most 8 KiB; header `alg` `RS256` (nothing else, `none`
  # included) and `typ` `JWT`; a `kid` the JWKS publishes; the signature; claim `typ` `access` (refresh
  # and mfa tokens are refused); `iss` equal to the issuer; `sub`, `exp` and `iat` present; `exp` not
  # passed (with the leeway); then, with a RevocationFeed, neither `jti` nor `sid` revoked.
  class Verifier
    # Longest token accepted: anything larger is refused before any parsing, as IdentSphere does.
    MAX_TOKEN_BYTES = 8 * 1024
    # The characters of three base64url parts and their dots. Checked with String#count, a fifth of the
    # cost of a regular expression over a whole token (whose parts are then decoded strictly).
    ALPHABET = "A-Za-z0-9_.-"

    attr_reader :issuer

    # - `issuer`: the `iss` tokens must carry; default the base URL. Set it when you reach IdentSphere at
    #   another address than its IDENTSPHERE_PUBLIC_BASE_URL.
    # - `leeway`: seconds a token is still accepted after `exp`, for clock skew (default 0).
    # - `jwks_refetch_interval`: least seconds between two JWKS fetches (default 30).
    # - `revocations`: a RevocationFeed, to refuse revoked tokens (`token_revoked`).
    # - `timeout`, `open_timeout`, `transport`: as for Client; `logger`: where failed JWKS fetches are told.
    def initialize(base_url, issuer: nil, leeway: 0, jwks_refetch_interval: 30, revocations: nil, timeout: 10,
                   open_timeout: 5, transport: nil, logger: nil)
      connection = Connection.new(base_url, transport: transport || HTTP.new(open_timeout: open_timeout, timeout: timeout))
      @issuer = issuer || connection.base_url
      @leeway = leeway
      @revocations = revocations
      @keys = KeyCache.new(connection, refetch_interval: jwks_refetch_interval, logger: logger)
    end

    # The Claims of a valid access token. Raises IdentSphere::AuthenticationError `token_invalid` for
    # anything but a well-formed access token signed by a published key of this issuer, `token_expired`
    # once `exp` (plus the leeway) has passed, `token_revoked` when the feed lists its `jti` or `sid`; and
    # IdentSphere::APIError `service_unavailable` when no JWKS could ever be fetched.
    def verify(token)
      invalid! unless token.is_a?(String) && token.bytesize <= MAX_TOKEN_BYTES && well_shaped?(token)

      encoded_header, encoded_payload, encoded_signature = token.split(".", 3)
      header = decode(encoded_header)
      invalid! unless header["alg"] == "RS256" && header["typ"] == "JWT" && header["kid"].is_a?(String)

      key = @keys.key(header["kid"]) or invalid!
      signed = key.verify("SHA256", Base64.urlsafe_decode64(encoded_signature), "#{encoded_header}.#{encoded_payload}")
      invalid! unless signed
      # Only now, signed by IdentSphere, are the claims worth reading.
      claims = Claims.from_payload(decode(encoded_payload))
      invalid! unless well_formed?(claims)
      now = Time.now.to_i
      raise Error.refusal("token_expired") if now >= claims.exp + @leeway
      raise Error.refusal("token_revoked") if @revocations&.revoked?(claims, now)

      claims
    rescue ArgumentError, OpenSSL::PKey::PKeyError # a signature that is no base64 or no RSA signature
      invalid!
    end

    def inspect = "#<#{self.class.name} issuer=#{@issuer}>"

    private

    # Only base64url characters (multibyte ones count once but take more bytes) in three dot-separated parts.
    def well_shaped?(token) = token.count(ALPHABET) == token.bytesize && token.count(".") == 2

    def well_formed?(claims)
      claims.typ == "access" && claims.iss == @issuer && claims.sub.is_a?(String) && !claims.sub.empty? &&
        claims.exp.is_a?(Integer) && claims.iat.is_a?(Integer)
    end

    # A JSON object of one base64url part.
    def decode(part)
      object = JSON.parse(Base64.urlsafe_decode64(part))
      object.is_a?(Hash) ? object : invalid!
    rescue ArgumentError, JSON::ParserError
      invalid!
    end

    def invalid! = raise(Error.refusal("token_invalid"))
  end
end
