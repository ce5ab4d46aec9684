# frozen_string_literal: true

require "test_helper"

# An emergency rotation (`identsphere keys rotate`) beside a running server, which needs Postgres and
# Redis: the embedded store admits one process. CI requires them (IDENTSPHERE_TEST_REQUIRE_POSTGRES).
class KeyRotationTest < Minitest::Test
  include IdentSphereTest

  def setup
    @on = IdentSphereServer.start_on_postgres
    return if @on

    flunk "Postgres or Redis is not reachable, and IDENTSPHERE_TEST_REQUIRE_POSTGRES is set" if ENV["IDENTSPHERE_TEST_REQUIRE_POSTGRES"]
    skip "Postgres or Redis is not reachable (#{PostgresBacking::MAINTENANCE}, #{PostgresBacking::REDIS}): key rotation not tested"
  end

  def teardown
    @on&.stop
    super
  end

  def test_after_a_key_rotation_new_tokens_verify_with_one_refetch_and_old_ones_are_refused
    shared = IdentSphere::Verifier.new(@on.url, jwks_refetch_interval: 1)
    old = sign_up(@on).access_token
    shared.verify(old)

    new_kid = @on.run("keys", "rotate").strip
    wait_for("the server to publish only #{new_kid}") { @on.published_kids == [new_kid] }
    fresh = wait_for("a token signed with #{new_kid}") do
      token = sign_up(@on).access_token
      token if part(token, 0)["kid"] == new_kid
    end
    sleep 1 # the refetch interval since the verifier's first fetch

    before = @on.served("/.well-known/jwks.json")
    3.times { assert_equal part(fresh, 1)["sub"], shared.verify(fresh).sub }
    assert_equal 1, @on.served("/.well-known/jwks.json") - before, "one refetch for the new kid, then the cache"
    assert_refused(401, "token_invalid") { shared.verify(old) }
  end

  private

  def wait_for(what, seconds: 15)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    loop do
      result = yield
      return result if result
      raise "timed out waiting for #{what}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.1
    end
  end
end
