package dev.identsphere.client;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Assumptions;

/**
 * A real IdentSphere for the tests: the workspace's binary on a free port, with a data directory of its own
 * (or, for {@link #onPostgres()}, a Postgres database and a Redis key prefix of its own), stopped and
 * removed by {@link #close()}. A JVM shutdown hook kills any server a failed test left running.
 */
final class TestServer implements AutoCloseable {
    /** The platform API key of every test server: it reads the revocation feed. */
    static final String PLATFORM_KEY = "platform-key-for-java-sdk-tests-0123456789abcdef";
    static final String PASSWORD = "correct horse battery staple";

    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static final String MAINTENANCE_DB =
            env("IDENTSPHERE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres");
    private static final String REDIS = env("IDENTSPHERE_TEST_REDIS_URL", "redis://127.0.0.1:6379");

    final String baseUrl;
    final Path dataDir;
    /** The server's whole environment, for commands run beside it ({@code identsphere keys rotate}). */
    final Map<String, String> env;
    private final Path root;
    private final Process process;
    private final Thread killer;
    private final Runnable dropBackingStores;

    private TestServer(String baseUrl, Path root, Map<String, String> env, Runnable dropBackingStores)
            throws IOException {
        this.baseUrl = baseUrl;
        this.root = root;
        this.dataDir = root.resolve("data");
        this.env = env;
        this.dropBackingStores = dropBackingStores;
        ProcessBuilder builder = new ProcessBuilder(binary().toString()).redirectErrorStream(true)
                .redirectOutput(root.resolve("server.log").toFile());
        builder.environment().keySet().removeIf(name -> name.startsWith("IDENTSPHERE_"));
        builder.environment().putAll(env);
        this.process = builder.start();
        this.killer = new Thread(process::destroyForcibly, "kill identsphere " + baseUrl);
        Runtime.getRuntime().addShutdownHook(killer);
    }

    /** A server on the embedded store with the test configuration and {@code overrides}, ready. */
    static TestServer start(Map<String, String> overrides) {
        return launch(overrides, Map.of(), () -> {});
    }

    /**
     * A server on a Postgres database and a Redis key prefix of its own (both removed at {@link #close()}),
     * so that {@code identsphere keys rotate} can run beside it: the embedded store admits one process.
     */
    static TestServer onPostgres() {
        for (String url : List.of(MAINTENANCE_DB, REDIS)) {
            // Without Postgres or Redis the test says so and checks nothing, as the repository's
            // suite does, unless CI requires them (IDENTSPHERE_TEST_REQUIRE_POSTGRES).
            String unreachable = reachable(URI.create(url)) ? null : "Postgres + Redis test not run: " + url
                    + " does not answer";
            if (unreachable != null && System.getenv("IDENTSPHERE_TEST_REQUIRE_POSTGRES") != null) {
                throw new IllegalStateException(unreachable + ", and IDENTSPHERE_TEST_REQUIRE_POSTGRES is set");
            }
            Assumptions.assumeTrue(unreachable == null, unreachable);
        }
        String database = "identsphere_sdk_java_" + UUID.randomUUID().toString().replace("-", "");
        String prefix = "identsphere-sdk-java-" + UUID.randomUUID() + ":";
        run(List.of("psql", "-q", MAINTENANCE_DB, "-c", "CREATE DATABASE " + database));
        byte[] kek = new byte[32];
        new SecureRandom().nextBytes(kek);
        Map<String, String> backing = Map.of(
                "IDENTSPHERE_DATABASE_URL", MAINTENANCE_DB.substring(0, MAINTENANCE_DB.lastIndexOf('/') + 1) + database,
                "IDENTSPHERE_REDIS_URL", REDIS,
                "IDENTSPHERE_REDIS_KEY_PREFIX", prefix,
                "IDENTSPHERE_KEY_ENCRYPTION_KEY", Base64.getEncoder().encodeToString(kek));
        return launch(Map.of(), backing, () -> {
            run(List.of("psql", "-q", MAINTENANCE_DB, "-c", "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)"));
            deleteRedisKeys(prefix);
        });
    }

    private static TestServer launch(Map<String, String> overrides, Map<String, String> backing,
            Runnable dropBackingStores) {
        Path root = null;
        TestServer server;
        try {
            int port = freePort();
            String baseUrl = "http://127.0.0.1:" + port;
            root = Files.createTempDirectory("identsphere-sdk-java-");
            Map<String, String> env = new HashMap<>(limitsOff());
            env.put("IDENTSPHERE_BIND", "127.0.0.1:" + port);
            env.put("IDENTSPHERE_PUBLIC_BASE_URL", baseUrl);
            env.put("IDENTSPHERE_DATA_DIR", root.resolve("data").toString());
            env.put("IDENTSPHERE_PLATFORM_API_KEY", PLATFORM_KEY);
            env.put("IDENTSPHERE_KEY_CHECK_INTERVAL", "1");
            env.put("IDENTSPHERE_WORKERS", "2");
            env.put("IDENTSPHERE_ACTOR_ARBITERS", "1");
            env.put("IDENTSPHERE_LOG", "warn");
            env.putAll(backing);
            env.putAll(overrides);
            server = new TestServer(baseUrl, root, Map.copyOf(env), dropBackingStores);
        } catch (IOException | RuntimeException e) {
            deleteTree(root);
            dropBackingStores.run();
            throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
        }
        try {
            server.awaitReady();
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
        return server;
    }

    /**
     * The repository's list of abuse limits, all off (the tests sign in far more often from one address than
     * a person would), except the second-factor one, whose {@code rate_limited} refusal a test checks.
     */
    private static Map<String, String> limitsOff() throws IOException {
        Map<String, String> vars = new HashMap<>();
        for (String line : Files.readAllLines(Path.of("../../scripts/limits-off.env"))) {
            line = line.strip();
            if (!line.isEmpty() && !line.startsWith("#") && !line.startsWith("IDENTSPHERE_RATE_LIMIT_MFA_FAILURES=")) {
                vars.put(line.substring(0, line.indexOf('=')), line.substring(line.indexOf('=') + 1));
            }
        }
        return vars;
    }

    /**
     * {@code $IDENTSPHERE_BIN}, else the debug build in cargo's target directory ({@code $CARGO_TARGET_DIR},
     * default {@code ~/.cache/identsphere/target}), as the repository's scripts build it.
     */
    static Path binary() {
        String bin = System.getenv("IDENTSPHERE_BIN");
        if (bin != null && !bin.isEmpty()) {
            return Path.of(bin);
        }
        Path target = Path.of(env("CARGO_TARGET_DIR", System.getProperty("user.home") + "/.cache/identsphere/target"));
        Path debug = target.resolve("debug/identsphere");
        if (!Files.isExecutable(debug)) {
            throw new IllegalStateException("no IdentSphere binary at " + debug + ": set IDENTSPHERE_BIN to one, build "
                    + "it with (cd ../.. && cargo build --workspace --bins), or run ./scripts/test.sh, which does");
        }
        return debug;
    }

    private void awaitReady() {
        Instant deadline = Instant.now().plusSeconds(60);
        while (Instant.now().isBefore(deadline)) {
            if (!process.isAlive()) {
                throw new IllegalStateException("identsphere exited at start:\n" + log());
            }
            try {
                if (get("/readyz").statusCode() == 200) {
                    return;
                }
            } catch (UncheckedIOException notYet) {
                // Not listening yet.
            }
            sleep(Duration.ofMillis(50));
        }
        throw new IllegalStateException("identsphere at " + baseUrl + " was not ready within 60 s:\n" + log());
    }

    private String log() {
        try {
            String log = Files.readString(root.resolve("server.log"));
            return log.length() > 8192 ? log.substring(log.length() - 8192) : log;
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** Stops the server (SIGTERM, then SIGKILL if it lingers) and removes everything it had. */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        try {
            Runtime.getRuntime().removeShutdownHook(killer);
        } catch (IllegalStateException exiting) {
            // The JVM is shutting down: the hook runs anyway, harmlessly.
        }
        deleteTree(root);
        dropBackingStores.run();
    }

    // ---- calls the SDK does not make: enrolling a factor, organizations, mail, metrics ----

    /** A client for this server. */
    IdentSphereClient client() {
        return IdentSphereClient.create(baseUrl);
    }

    /** A verifier for this server with the revocation feed polled every 200 ms. */
    TokenVerifier.Builder verifier() {
        return TokenVerifier.builder(baseUrl).platformApiKey(PLATFORM_KEY)
                .revocationPollInterval(Duration.ofMillis(200));
    }

    /** A new user's address. */
    static String newEmail() {
        return "user-" + UUID.randomUUID() + "@example.com";
    }

    /** Registers a new user: the token response. */
    TokenResponse signUp() {
        return (TokenResponse) client().register(newEmail(), PASSWORD);
    }

    HttpResponse<String> get(String path) {
        return send(HttpRequest.newBuilder(URI.create(baseUrl + path)).GET().build());
    }

    /** POSTs a JSON body (as a bearer of {@code token} unless null) and requires {@code status}: the answer. */
    JsonObject post(String path, String token, Map<String, ?> body, int status) {
        return call("POST", path, token, Json.write(body), status);
    }

    /** Sends a JSON body with {@code method} (as a bearer of {@code token} unless null), requires {@code status}. */
    JsonObject call(String method, String path, String token, String json, int status) {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(json));
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        HttpResponse<String> response = send(request.build());
        if (response.statusCode() != status) {
            throw new AssertionError(method + " " + path + ": expected " + status + ", got " + response.statusCode()
                    + " " + response.body());
        }
        return response.body().isEmpty() ? new JsonObject(Map.of()) : Json.parseObject(response.body());
    }

    static HttpResponse<String> send(HttpRequest request) {
        try {
            return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /**
     * Enrolls and confirms TOTP in the session of {@code tokens}: the TOTP secret (base32). The
     * confirmation's tokens, at {@code aal2}, are in {@link Enrolled#tokens()}.
     */
    Enrolled enrollTotp(TokenResponse tokens) {
        JsonObject enrollment = post("/v1/auth/mfa/totp", tokens.accessToken(), Map.of(), 200);
        Totp totp = new Totp(enrollment.string("secret"));
        JsonObject confirmed = post("/v1/auth/mfa/totp/confirm", tokens.accessToken(),
                Map.of("code", totp.now(), "refresh_token", tokens.refreshToken()), 200);
        return new Enrolled(totp, TokenResponse.from(confirmed), confirmed.strings("recovery_codes"));
    }

    record Enrolled(Totp totp, TokenResponse tokens, List<String> recoveryCodes) {}

    /** Creates an organization the user of {@code accessToken} owns: its id. */
    String createOrganization(String accessToken) {
        String slug = "org-" + UUID.randomUUID().toString().substring(0, 8);
        return post("/v1/organizations", accessToken, Map.of("name", "Org " + slug, "slug", slug), 201).string("id");
    }

    /** The token of the newest link of {@code kind} ({@code verify-email}, {@code reset-password}) mailed to {@code email}. */
    String mailedToken(String email, String kind) {
        Pattern link = Pattern.compile(kind + "\\?token=([A-Za-z0-9_-]{43})");
        Instant deadline = Instant.now().plusSeconds(10);
        while (Instant.now().isBefore(deadline)) {
            // Mail is sent after the answer, in the background: wait for it.
            try (Stream<Path> mails = Files.list(dataDir.resolve("outbox"))) {
                List<Path> newestFirst = new ArrayList<>(mails.toList());
                newestFirst.sort(Comparator.comparing(TestServer::modified).reversed());
                for (Path mail : newestFirst) {
                    // Quoted-printable: soft line breaks and =3D for '='.
                    String text = Files.readString(mail).replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
                    Matcher match = link.matcher(text);
                    if (text.contains("To: " + email) && match.find()) {
                        return match.group(1);
                    }
                }
            } catch (IOException notYet) {
                // No outbox before the first mail.
            }
            sleep(Duration.ofMillis(50));
        }
        throw new AssertionError("no " + kind + " link was mailed to " + email);
    }

    private static long modified(Path file) {
        try {
            return Files.getLastModifiedTime(file).toMillis();
        } catch (IOException e) {
            return 0;
        }
    }

    /** The JWKS requests this server has served, whoever made them (its own {@code /metrics}). */
    long jwksServed() {
        return get("/metrics").body().lines()
                .filter(l -> l.startsWith("identsphere_http_requests_total{") && l.contains("route=\"/.well-known/jwks.json\""))
                .mapToLong(l -> (long) Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
    }

    /** Runs {@code identsphere <args>} with this server's environment: its standard output. */
    String command(String... args) {
        List<String> command = new ArrayList<>(List.of(binary().toString()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().keySet().removeIf(name -> name.startsWith("IDENTSPHERE_"));
        builder.environment().putAll(env);
        return run(builder);
    }

    // ---- plumbing ----

    private static String run(List<String> command) {
        return run(new ProcessBuilder(command));
    }

    private static String run(ProcessBuilder builder) {
        try {
            Process process = builder.redirectErrorStream(true).start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (process.waitFor() != 0) {
                throw new IllegalStateException(String.join(" ", builder.command()) + " failed:\n" + output);
            }
            return output;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void deleteRedisKeys(String prefix) {
        List<String> keys = run(List.of("redis-cli", "-u", REDIS, "--scan", "--pattern", prefix + "*")).lines()
                .filter(k -> !k.isBlank()).toList();
        for (int from = 0; from < keys.size(); from += 500) {
            List<String> command = new ArrayList<>(List.of("redis-cli", "-u", REDIS, "DEL"));
            command.addAll(keys.subList(from, Math.min(keys.size(), from + 500)));
            run(command);
        }
    }

    private static boolean reachable(URI url) {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(url.getHost(), url.getPort()), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket()) {
            socket.bind(new InetSocketAddress("127.0.0.1", 0));
            return socket.getLocalPort();
        }
    }

    static void deleteTree(Path root) {
        if (root == null || !Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("removing " + root, e);
        }
    }

    static void sleep(Duration duration) {
        try {
            Thread.sleep(duration.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
