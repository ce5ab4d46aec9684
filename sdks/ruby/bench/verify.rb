# frozen_string_literal: true

# What verifying an access token costs in Ruby, per call: `ruby -Ilib bench/verify.rb` (IDENTSPHERE_BIN or
# the workspace's debug build, as the tests). A real IdentSphere issues the token; the calls are in
# process (no network in the numbers): the raw RS256 check alone, Verifier#verify without and with a
# revocation feed, and the Rack middleware around an app that does nothing, against that app alone.
require "identsphere"
require "identsphere/rack"
require_relative "../test/support/identsphere_server"

ROUNDS = Integer(ENV.fetch("ROUNDS", 20_000))

def measure(name)
  ROUNDS.times.map do
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_microsecond)
    yield
    Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_microsecond) - started
  end.sort.then do |times|
    puts format("| %-58s | %7.1f | %7.1f |", name, times[times.size / 2], times[(times.size * 0.99).floor])
  end
end

server = IdentSphereServer.start
begin
  token = IdentSphere::Client.new(server.url).register(email: "bench-#{rand(1 << 40)}@example.com",
                                                       password: "correct horse battery staple").access_token
  verifier = IdentSphere::Verifier.new(server.url)
  feed = IdentSphere::RevocationFeed.new(server.url, platform_api_key: IdentSphereServer::PLATFORM_KEY)
  with_feed = IdentSphere::Verifier.new(server.url, revocations: feed)
  [verifier, with_feed].each { |v| v.verify(token) } # fetch the keys, start the feed
  key = IdentSphere::KeyCache.rs256_keys(JSON.parse(Net::HTTP.get(URI("#{server.url}/.well-known/jwks.json")))).values.first
  input, signature = token.rpartition(".").then { |head, _, tail| [head, Base64.urlsafe_decode64(tail)] }
  app = ->(_env) { [200, {}, []] }
  middleware = IdentSphere::Rack::Middleware.new(app, verifier: verifier)
  env = -> { { "REQUEST_METHOD" => "GET", "PATH_INFO" => "/", "HTTP_AUTHORIZATION" => "Bearer #{token}" } }

  puts "#{ROUNDS} calls each; #{RUBY_DESCRIPTION}; #{OpenSSL::OPENSSL_LIBRARY_VERSION}"
  puts "| Path | p50 µs | p99 µs |", "|---|---|---|"
  measure("raw RS256 check (OpenSSL::PKey::RSA#verify)") { key.verify("SHA256", signature, input) }
  measure("Verifier#verify, no revocation feed") { verifier.verify(token) }
  measure("Verifier#verify, revocation feed on") { with_feed.verify(token) }
  measure("Rack app alone (the baseline)") { app.call(env.call) }
  measure("Rack app behind IdentSphere::Rack::Middleware") { middleware.call(env.call) }
ensure
  feed&.stop
  server.stop
end
