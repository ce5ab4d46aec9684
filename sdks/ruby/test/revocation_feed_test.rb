# frozen_string_literal: true

require "test_helper"

class RevocationFeedTest < Minitest::Test
  include IdentSphereTest

  def feed(on = server, key: IdentSphereServer::PLATFORM_KEY)
    @feed = IdentSphere::RevocationFeed.new(on.url, platform_api_key: key, poll_interval: 0.2)
  end

  def teardown
    @feed&.stop
    super
  end

  def test_a_logout_and_a_reused_refresh_token_are_refused_within_the_poll_interval
    on = own_server("IDENTSPHERE_REFRESH_REUSE_GRACE" => "0")
    revocation_aware = IdentSphere::Verifier.new(on.url, revocations: feed(on))
    logged_out = sign_up(on)
    stolen = sign_up(on)
    [logged_out, stolen].each { |tokens| revocation_aware.verify(tokens.access_token) }

    client(on).logout(access_token: logged_out.access_token)
    assert_refused_within(2) { revocation_aware.verify(logged_out.access_token) }

    # A refresh token used twice is theft: IdentSphere revokes the whole session, new tokens included.
    refreshed = client(on).refresh(stolen.refresh_token)
    assert_equal stolen.session.id, revocation_aware.verify(refreshed.access_token).sid
    assert_refused(401, "refresh_token_reused") { client(on).refresh(stolen.refresh_token) }
    assert_refused_within(2) { revocation_aware.verify(refreshed.access_token) }
    status = @feed.status
    assert_equal [true, 0], [status.synced, status.consecutive_failures]
    assert_operator status.entries, :>=, 2
  end

  def test_a_wrong_platform_key_is_counted_as_failures_and_tokens_still_verify
    token = sign_up.access_token
    verifier = IdentSphere::Verifier.new(server.url, revocations: feed(key: "not-the-platform-key-0123456789abcdefghij"))
    assert_equal part(token, 1)["sub"], verifier.verify(token).sub
    status = @feed.status
    assert_equal [false, 0], [status.synced, status.entries]
    assert_operator status.consecutive_failures, :>=, 1
    refute_includes @feed.inspect, "not-the-platform-key"
  end

  def test_a_forked_worker_polls_the_feed_itself
    revocation_aware = IdentSphere::Verifier.new(server.url, revocations: feed)
    tokens = sign_up
    revocation_aware.verify(tokens.access_token) # the parent's poller runs
    reader, writer = IO.pipe
    worker = fork do
      reader.close
      client.logout(access_token: tokens.access_token)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 2
      outcome = begin
        revocation_aware.verify(tokens.access_token) while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
        "still valid"
      rescue IdentSphere::Error => e
        e.code
      end
      writer.write(outcome)
      exit!(0) # no at-exit hooks of the parent (minitest, the shared server) in the worker
    end
    writer.close
    Process.wait(worker)
    assert_equal "token_revoked", reader.read
  end

  private

  # Retries the block until it raises token_revoked, at most `seconds`.
  def assert_refused_within(seconds)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    loop do
      yield
      flunk "still valid after #{seconds} s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.05
    rescue IdentSphere::Error => e
      assert_equal "token_revoked", e.code
      return
    end
  end
end
