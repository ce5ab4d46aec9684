# frozen_string_literal: true

require "base64"
require "fileutils"
require "json"
require "net/http"
require "securerandom"
require "socket"
require "tmpdir"
require "uri"

# A real IdentSphere for the tests: the workspace's binary on a free port with a data directory of its
# own (or, for a key rotation, a Postgres database and a Redis key prefix of its own), stopped and
# removed afterwards, even when the test process dies.
class IdentSphereServer
  # The IDENTSPHERE_PLATFORM_API_KEY of every test server: it reads the revocation feed.
  PLATFORM_KEY = "platform-key-for-ruby-sdk-tests-0123456789abcdef"
  REPO = File.expand_path("../../../..", __dir__)
  # The server runs under this shell, whose stdin is a pipe the test process holds: when the pipe closes
  # (stop, or the test process died however it died) the shell stops the server and removes its directory
  # ($1), so no test run leaves a server or its data behind. fd 3 keeps the pipe for the background reader
  # (an asynchronous list's own stdin is /dev/null).
  WATCHDOG = <<~SH
    exec 3<&0
    "$0" 3<&- &
    server=$!
    (cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null) &
    exec 3<&-
    wait "$server"
    status=$?
    rm -rf "$1"
    exit "$status"
  SH

  # $IDENTSPHERE_BIN, else the debug build in cargo's target directory ($CARGO_TARGET_DIR, default
  # ~/.cache/identsphere/target, as the repository's scripts build it).
  def self.binary
    return ENV["IDENTSPHERE_BIN"] unless ENV["IDENTSPHERE_BIN"].to_s.empty?

    target = ENV["CARGO_TARGET_DIR"].to_s.empty? ? File.join(Dir.home, ".cache/identsphere/target") : ENV["CARGO_TARGET_DIR"]
    binary = File.join(target, "debug", "identsphere")
    return binary if File.executable?(binary)

    abort "no IdentSphere binary at #{binary}: set IDENTSPHERE_BIN to one, build it with " \
          "(cd ../.. && cargo build --workspace --bins), or run ./scripts/test.sh, which does"
  end

  # The repository's abuse limits, all off (tests sign in far more often from one address than a person
  # would), except the second-factor one, whose refusal the tests check.
  def self.limits_off
    File.readlines(File.join(REPO, "scripts/limits-off.env"), chomp: true)
        .grep(/\AIDENTSPHERE_/).grep_v(/\AIDENTSPHERE_RATE_LIMIT_MFA_FAILURES=/)
        .to_h { |line| line.split("=", 2) }
  end

  # A server on the embedded store; `overrides` are added to its configuration.
  def self.start(overrides = {})
    new(overrides)
  end

  # A server on a Postgres database and a Redis key prefix of its own (both removed at stop), so that
  # `identsphere keys rotate` can run beside it. Nil when Postgres or Redis cannot be reached.
  def self.start_on_postgres(overrides = {})
    binary # ends the run when there is none: before a database exists to be left behind
    backing = PostgresBacking.create or return nil
    new(backing.env.merge(overrides), backing)
  rescue StandardError
    backing&.remove
    raise
  end

  attr_reader :url, :data_dir

  def initialize(overrides, backing = nil)
    @backing = backing
    @binary = self.class.binary # first: it ends the run when there is none, which no cleanup follows
    @root = Dir.mktmpdir("identsphere-sdk-ruby-")
    @data_dir = File.join(@root, "data")
    port = free_port
    @url = "http://127.0.0.1:#{port}"
    @env = self.class.limits_off.merge(
      "IDENTSPHERE_BIND" => "127.0.0.1:#{port}",
      "IDENTSPHERE_PUBLIC_BASE_URL" => @url,
      "IDENTSPHERE_DATA_DIR" => @data_dir,
      "IDENTSPHERE_PLATFORM_API_KEY" => PLATFORM_KEY,
      "IDENTSPHERE_KEY_CHECK_INTERVAL" => "1",
      "IDENTSPHERE_WORKERS" => "2",
      "IDENTSPHERE_ACTOR_ARBITERS" => "1",
      "IDENTSPHERE_LOG" => "warn",
      "IDENTSPHERE_LOG_FORMAT" => "json"
    ).merge(overrides)
    start_process
  rescue StandardError
    stop
    raise
  end

  # Runs the binary with this server's configuration (`keys rotate`): its standard output.
  def run(*args)
    output = IO.popen(process_env, [@binary, *args], err: %i[child out], &:read)
    raise "identsphere #{args.join(' ')} failed: #{output}" unless $?.success?

    output
  end

  # Stops the server (SIGTERM through the watchdog, SIGKILL if it lingers) and removes what it used.
  def stop
    if @pid
      @stdin.close
      unless wait_exit(10)
        Process.kill("KILL", -@pid)
        Process.wait(@pid)
      end
      @pid = nil
    end
    FileUtils.rm_rf(@root) if @root
    @backing&.remove
  end

  # Requests this server has answered on `route` (its own /metrics), whoever made them.
  def served(route)
    metrics = Net::HTTP.get(URI("#{@url}/metrics"))
    metrics.each_line.sum do |line|
      line.start_with?("identsphere_http_requests_total{") && line.include?(%(route="#{route}")) ? line.split.last.to_f.to_i : 0
    end
  end

  # The key ids the JWKS publishes now.
  def published_kids
    JSON.parse(Net::HTTP.get(URI("#{@url}/.well-known/jwks.json")))["keys"].map { |key| key["kid"] }
  end

  # The token of the link to `path` (/verify-email, /reset-password) mailed to `to`: without SMTP the
  # server writes each mail to outbox/ in its data directory. Mail is sent after the answer, so wait.
  def mailed_token(to, path)
    deadline = monotonic + 10
    while monotonic < deadline
      Dir.glob(File.join(@data_dir, "outbox", "*.eml")).each do |file|
        # Quoted-printable, as the server writes every part (String#unpack("M") stops at the headers' `=`).
        mail = File.read(file).gsub(/=\r?\n/, "").gsub(/=([0-9A-F]{2})/) { Regexp.last_match(1).hex.chr }
        next unless mail.match?(/^To: #{Regexp.escape(to)}\r?$/i)

        token = mail[%r{#{Regexp.escape(path)}\?token=([A-Za-z0-9_-]+)}, 1]
        return token if token
      end
      sleep 0.05
    end
    raise "no mail to #{to} with a #{path} link"
  end

  private

  # The developer's own IDENTSPHERE_* variables (a database URL...) must not reach a test server.
  def process_env
    ENV.keys.grep(/\AIDENTSPHERE_/).to_h { |name| [name, nil] }.merge(@env)
  end

  def start_process
    reader, @stdin = IO.pipe
    @log = File.join(@root, "server.log")
    @pid = Process.spawn(process_env, "sh", "-c", WATCHDOG, @binary, @root,
                         in: reader, out: File::NULL, err: @log, pgroup: true)
    reader.close
    wait_ready(60)
  end

  def wait_ready(seconds)
    deadline = monotonic + seconds
    while monotonic < deadline
      raise "identsphere exited at start:\n#{log_tail}" if Process.waitpid(@pid, Process::WNOHANG)
      return if ready?

      sleep 0.05
    end
    raise "identsphere at #{@url} was not ready within #{seconds} s:\n#{log_tail}"
  end

  def ready?
    Net::HTTP.get_response(URI("#{@url}/readyz")).code == "200"
  rescue SystemCallError, IOError
    false
  end

  def wait_exit(seconds)
    deadline = monotonic + seconds
    until Process.waitpid(@pid, Process::WNOHANG)
      return false if monotonic > deadline

      sleep 0.05
    end
    true
  rescue Errno::ECHILD
    true
  end

  def log_tail = File.exist?(@log) ? File.read(@log)[-4000..] || File.read(@log) : ""

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

# A Postgres database and a Redis key prefix for one server, with the key-encryption key Postgres
# requires; `remove` drops the database and deletes the prefix's keys.
class PostgresBacking
  MAINTENANCE = ENV.fetch("IDENTSPHERE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
  REDIS = ENV.fetch("IDENTSPHERE_TEST_REDIS_URL", "redis://127.0.0.1:6379")

  # A new backing, or nil when Postgres or Redis cannot be reached.
  def self.create
    return nil unless system("psql", MAINTENANCE, "-qAtc", "SELECT 1", out: File::NULL, err: File::NULL) &&
                      system("redis-cli", "-u", REDIS, "ping", out: File::NULL, err: File::NULL)

    new
  end

  attr_reader :env

  def initialize
    suffix = SecureRandom.hex(6)
    @database = "identsphere_sdk_ruby_#{suffix}"
    @prefix = "identsphere-sdk-ruby-#{suffix}:"
    psql("CREATE DATABASE #{@database}")
    database_url = URI(MAINTENANCE).tap { |uri| uri.path = "/#{@database}" }.to_s
    @env = {
      "IDENTSPHERE_DATABASE_URL" => database_url,
      "IDENTSPHERE_REDIS_URL" => REDIS,
      "IDENTSPHERE_REDIS_KEY_PREFIX" => @prefix,
      "IDENTSPHERE_KEY_ENCRYPTION_KEY" => Base64.strict_encode64(SecureRandom.random_bytes(32))
    }
  end

  def remove
    psql("DROP DATABASE IF EXISTS #{@database} WITH (FORCE)")
    keys = IO.popen(["redis-cli", "-u", REDIS, "--scan", "--pattern", "#{@prefix}*"], &:read).split
    system("redis-cli", "-u", REDIS, "del", *keys, out: File::NULL) unless keys.empty?
  end

  private

  def psql(statement)
    system("psql", MAINTENANCE, "-qAtc", statement, out: File::NULL, exception: true)
  end
end
