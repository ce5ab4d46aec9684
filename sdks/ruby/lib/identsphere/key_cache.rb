# frozen_string_literal: true

require "base64"
require "json"
require "openssl"

module IdentSphere
  # IdentSphere's public signing keys (the JWKS), fetched when first needed and shared by every thread.
  #
  # The rules, the same in every IdentSphere SDK:
  # - a key set is used as long as its answer's `Cache-Control: max-age` says (default 5 minutes, at most
  #   a day); the first request that finds it stale refreshes it while the others go on with it;
  # - a token whose `kid` is unknown (a key rotation) triggers a refetch, but fetches of any cause are at
  #   most one per `refetch_interval` (30 s by default) and one at a time, under a Mutex: a flood of
  #   forged `kid`s costs one fetch, and the threads that ask during a fetch wait for that one;
  # - a fetch that fails keeps the keys in use (and is logged).
  # Lookups read one instance variable that is only ever replaced whole, so they take no lock.
  class KeyCache
    # Used when the answer has no usable `max-age`: IdentSphere's own value.
    DEFAULT_MAX_AGE = 300
    # Longest a key set is trusted without asking again, whatever the answer says.
    MAX_MAX_AGE = 86_400
    # Least time between two fetches while no key set was ever fetched: every request is refused until
    # one succeeds, so retry sooner than the refetch interval, but not once per request.
    COLD_RETRY = 1

    # One fetched JWKS: RS256 keys by `kid`, and until when (monotonic seconds) it is fresh.
    KeySet = Struct.new(:keys, :fresh_until)

    def initialize(connection, refetch_interval:, logger: nil)
      @connection = connection
      @refetch_interval = refetch_interval
      @logger = logger
      @current = nil
      @last_attempt = nil
      @fetching = Mutex.new
    end

    # The key with this `kid`, or nil when IdentSphere does not publish it. Raises `service_unavailable`
    # when no JWKS could ever be fetched.
    def key(kid)
      set = @current
      if set.nil? || !set.keys.key?(kid)
        set = fetch_for(kid)
      elsif now >= set.fresh_until
        refresh_unless_busy
      end
      raise Error.refusal("service_unavailable") if set.nil?

      set.keys[kid]
    end

    private

    # An unknown `kid`: waits for the fetch in flight, then fetches unless that one brought the key or
    # the rate limit forbids another.
    def fetch_for(kid)
      @fetching.synchronize do
        set = @current
        next set if set&.keys&.key?(kid) || !may_fetch?

        fetch
      end
    end

    # A stale key set: one thread refreshes it, the others do not wait.
    def refresh_unless_busy
      return unless @fetching.try_lock

      begin
        fetch if may_fetch? && now >= @current.fresh_until
      ensure
        @fetching.unlock
      end
    end

    def may_fetch?
      @last_attempt.nil? || now - @last_attempt >= (@current ? @refetch_interval : COLD_RETRY)
    end

    # Fetches the JWKS (the caller holds @fetching) and returns the key set in use afterwards.
    def fetch
      @last_attempt = now
      response = @connection.request("GET", "/.well-known/jwks.json")
      raise Error.from_response(response.status, response.headers, nil) unless response.status == 200

      @current = KeySet.new(KeyCache.rs256_keys(JSON.parse(response.body)), now + max_age(response.headers["cache-control"]))
    rescue Error, JSON::ParserError, ArgumentError => e
      @logger&.warn("identsphere: could not fetch the JWKS, keeping the keys in use: #{e.message}")
      @current
    end

    def max_age(cache_control)
      [[KeyCache.max_age(cache_control) || DEFAULT_MAX_AGE, MAX_MAX_AGE].min, @refetch_interval].max
    end

    def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

    # The RS256 signing keys of a JWKS document, by `kid`. Keys for another use or algorithm, or that do
    # not parse, are left out; a document that is no JWKS raises ArgumentError.
    def self.rs256_keys(document)
      jwks = document.is_a?(Hash) ? document["keys"] : nil
      raise ArgumentError, "the JWKS has no `keys` list" unless jwks.is_a?(Array)

      jwks.each_with_object({}) do |jwk, keys|
        next unless jwk.is_a?(Hash) && jwk["kty"] == "RSA" && jwk["kid"].is_a?(String)
        next unless [nil, "RS256"].include?(jwk["alg"]) && [nil, "sig"].include?(jwk["use"])

        key = rsa_public_key(jwk["n"], jwk["e"])
        keys[jwk["kid"]] = key if key
      end
    end

    # The public key of a JWK's modulus and exponent (base64url), or nil.
    def self.rsa_public_key(modulus, exponent)
      integer = ->(value) { OpenSSL::ASN1::Integer.new(OpenSSL::BN.new(Base64.urlsafe_decode64(value), 2)) }
      OpenSSL::PKey::RSA.new(OpenSSL::ASN1::Sequence.new([integer.call(modulus), integer.call(exponent)]).to_der)
    rescue ArgumentError, TypeError, OpenSSL::PKey::PKeyError
      nil
    end

    # `max-age` of a `Cache-Control` value in seconds (`no-store` and `no-cache` count as 0), or nil.
    def self.max_age(value)
      directives = value.to_s.downcase.split(",").map(&:strip)
      return 0 if directives.intersect?(%w[no-store no-cache])

      age = directives.filter_map { |d| d.delete_prefix("max-age=").delete('"') if d.start_with?("max-age=") }.last
      age&.match?(/\A\d+\z/) ? age.to_i : nil
    end

    private_class_method :rsa_public_key
  end
end
