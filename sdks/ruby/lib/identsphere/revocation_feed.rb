# frozen_string_literal: true

module IdentSphere
  # The revocation feed: what IdentSphere has revoked (logouts, refresh-token reuse), polled from
  # `GET /v1/revocations` with the platform API key and kept in memory, so a Verifier refuses those
  # tokens with `token_revoked` instead of accepting them until they expire.
  #
  # A background thread polls every `poll_interval` seconds. It starts on first use in each process, so
  # a forking server (Puma in cluster mode, Unicorn) polls in every worker: a thread does not survive a
  # fork. Each entry is kept until every token it covers has expired, so memory is bounded by the
  # revoked-but-unexpired tokens. When the feed cannot be reached the entries known so far stay in force.
  class RevocationFeed
    # Entries per page asked for (the feed's maximum).
    PAGE = 1000
    # Pages read in one poll at most, so a huge backlog cannot starve the interval.
    MAX_PAGES = 100

    # What the feed's state is, for health checks: `synced` once a poll succeeded, `consecutive_failures`
    # of the polls since the last success, `entries` held.
    Status = Struct.new(:synced, :consecutive_failures, :entries, keyword_init: true)

    # `platform_api_key`: the server's IDENTSPHERE_PLATFORM_API_KEY (or a platform key of
    # `identsphere admin create-key`). A revoked token is refused within `poll_interval` plus one round
    # trip.
    def initialize(base_url, platform_api_key:, poll_interval: 5, timeout: 10, open_timeout: 5, transport: nil,
                   logger: nil)
      @connection = Connection.new(base_url, transport: transport || HTTP.new(open_timeout: open_timeout, timeout: timeout))
      @api_key = platform_api_key
      @poll_interval = poll_interval
      @logger = logger
      @lock = Mutex.new
      # id => expires_at (Unix seconds), one map per kind; replaced whole, so readers take no lock.
      @revoked = { "sid" => {}, "jti" => {} }.freeze
      @cursor = nil
      @status = Status.new(synced: false, consecutive_failures: 0, entries: 0).freeze
      @poller = nil
      @poller_pid = nil
    end

    # Whether the claims' `jti` or session (`sid`) is revoked at `now` (Unix seconds).
    def revoked?(claims, now = Time.now.to_i)
      start_poller
      revoked = @revoked
      [["jti", claims.jti], ["sid", claims.sid]].any? { |kind, id| id && revoked[kind].fetch(id, 0) > now }
    end

    # Reads every new page of the feed now: the poller's work, also callable to sync before serving.
    def poll
      @lock.synchronize do
        read_pages
        record(nil)
      rescue StandardError => e # whatever went wrong (no answer, a malformed page), the poller goes on
        record(e)
      end
      self
    end

    def status = @status

    # Stops this process's poller (it is restarted by the next `revoked?`).
    def stop
      @lock.synchronize do
        @poller&.kill
        @poller = nil
      end
    end

    def inspect = "#<#{self.class.name} #{@connection.base_url} #{@status.to_h}>" # never the key

    private

    def start_poller
      return if @poller_pid == Process.pid && @poller&.alive?

      # The first poll of a process runs here, so no request is served before the feed was read once.
      poll unless @status.synced
      @lock.synchronize do
        next if @poller_pid == Process.pid && @poller&.alive?

        @poller_pid = Process.pid
        @poller = Thread.new { run }
        @poller.name = "identsphere-revocations"
      end
    end

    def run
      loop do
        sleep @poll_interval
        poll
      end
    end

    def read_pages
      MAX_PAGES.times do
        query = { limit: PAGE }
        query[:after] = @cursor if @cursor
        response = @connection.request("GET", "/v1/revocations", bearer: @api_key, query: query)
        if response.status == 400 && @cursor
          # The server no longer knows our cursor (its store was reset): read again from the oldest entry
          # still meaningful; entries are idempotent.
          @cursor = nil
          next
        end
        page = response.body.empty? ? nil : JSON.parse(response.body)
        raise Error.from_response(response.status, response.headers, page) unless response.status == 200

        apply(page.fetch("revocations"), Time.now.to_i)
        @cursor = page.fetch("cursor")
        break if page["revocations"].size < PAGE
      end
    end

    # Adds a page of entries and forgets those whose tokens have all expired at `now`.
    def apply(entries, now)
      revoked = @revoked.transform_values(&:dup)
      entries.each do |entry|
        map = revoked[entry["kind"]] or next # a kind this version does not know
        map[entry["id"]] = [map.fetch(entry["id"], 0), entry["expires_at"].to_i].max
      end
      revoked.each_value { |map| map.delete_if { |_, until_| until_ <= now } }
      @revoked = revoked.transform_values(&:freeze).freeze
    end

    def record(failure)
      entries = @revoked.sum { |_, map| map.size }
      if failure
        @logger&.warn("identsphere: the revocation feed is unreachable, keeping #{entries} entries: #{failure.message}")
        @status = Status.new(synced: @status.synced, consecutive_failures: @status.consecutive_failures + 1,
                             entries: entries).freeze
      else
        @status = Status.new(synced: true, consecutive_failures: 0, entries: entries).freeze
      end
    end
  end
end
