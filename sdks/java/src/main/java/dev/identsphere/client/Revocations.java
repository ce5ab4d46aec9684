package dev.identsphere.client;

import java.lang.System.Logger.Level;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import dev.identsphere.client.Json.JsonException;

/**
 * The revocation feed: what IdentSphere has revoked (logouts, refresh-token reuse), polled from
 * {@code GET /v1/revocations} on a daemon thread of its own and kept in memory.
 *
 * <p>Each entry names a session family ({@code sid}) or a token ({@code jti}) and the instant by which
 * every token it covers has expired; it is forgotten then, so memory is bounded by the revoked but
 * unexpired tokens. When the feed cannot be read the entries known stay in force and the failure is
 * logged once, until it recovers.
 */
final class Revocations implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dev.identsphere.client");
    /** Entries per page asked for: the feed's maximum. */
    private static final int PAGE = 1000;
    /** Pages read in one poll at most, so a huge backlog cannot hold the poller forever. */
    private static final int MAX_PAGES = 100;

    private final Http http;
    private final String authorization;
    private final Clock clock;
    /** Revoked session families and tokens, each with the Unix second its entry expires. */
    private final Map<String, Long> sids = new ConcurrentHashMap<>();
    private final Map<String, Long> jtis = new ConcurrentHashMap<>();
    private final ScheduledExecutorService poller;
    /** Only the poller thread touches these two. */
    private String cursor;
    private int failures;

    Revocations(Http http, String platformApiKey, Clock clock) {
        this.http = http;
        this.authorization = "Bearer " + platformApiKey;
        this.clock = clock;
        this.poller = Executors.newSingleThreadScheduledExecutor(task -> {
            Thread thread = new Thread(task, "identsphere-revocations");
            thread.setDaemon(true);
            return thread;
        });
    }

    /** Reads the feed once now, then every {@code interval} on the poller thread. */
    void start(Duration interval) {
        poll();
        poller.scheduleWithFixedDelay(this::poll, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Whether the token's {@code jti} or its session {@code sid} is revoked now. */
    boolean revoked(Claims claims, long now) {
        return listed(jtis, claims.jti().orElse(null), now) || listed(sids, claims.sid().orElse(null), now);
    }

    private static boolean listed(Map<String, Long> entries, String id, long now) {
        Long until = id == null ? null : entries.get(id);
        return until != null && until > now;
    }

    @Override
    public void close() {
        poller.shutdownNow();
    }

    /** Reads every new page; synchronized with {@link #start} so the first poll and the timer never overlap. */
    private synchronized void poll() {
        try {
            for (int page = 0; page < MAX_PAGES; page++) {
                if (readPage() < PAGE) {
                    break;
                }
            }
            long now = clock.instant().getEpochSecond();
            sids.values().removeIf(until -> until <= now);
            jtis.values().removeIf(until -> until <= now);
            if (failures > 0) {
                LOG.log(Level.INFO, "the IdentSphere revocation feed is reachable again after {0} failed polls",
                        failures);
            }
            failures = 0;
        } catch (RuntimeException e) {
            // An unreachable IdentSphere, an unexpected answer: the entries known stay in force.
            if (failures == 0) {
                LOG.log(Level.WARNING, "the IdentSphere revocation feed is unreachable ({0}); serving with the "
                        + "revocations known so far", e.toString());
            }
            failures++;
        }
    }

    /** Reads one page into the lists and moves the cursor: the number of entries read. */
    private int readPage() {
        String query = "?limit=" + PAGE + (cursor == null ? "" : "&after=" + URLEncoder.encode(cursor,
                StandardCharsets.UTF_8));
        HttpRequest request = http.request("/v1/revocations" + query).header("Authorization", authorization).GET()
                .build();
        HttpResponse<String> response = http.send(request);
        if (response.statusCode() == 400 && cursor != null) {
            // The server no longer knows the cursor (its store was reset): read again from the oldest entry
            // still meaningful; entries are idempotent.
            cursor = null;
            return PAGE;
        }
        if (response.statusCode() != 200) {
            throw IdentSphereClient.refusal(response, "GET /v1/revocations");
        }
        JsonObject page;
        try {
            page = Json.parseObject(response.body());
            for (JsonObject entry : page.objects("revocations")) {
                Map<String, Long> list = switch (entry.string("kind")) {
                    case "sid" -> sids;
                    case "jti" -> jtis;
                    default -> null; // a kind this version does not know
                };
                if (list != null) {
                    list.merge(entry.string("id"), entry.number("expires_at"), Math::max);
                }
            }
            cursor = page.string("cursor");
            return page.objects("revocations").size();
        } catch (JsonException e) {
            throw new IllegalStateException("not a revocation page: " + e.getMessage(), e);
        }
    }
}
