package dev.identsphere.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.util.Arrays;
import java.util.Base64;
import java.util.Locale;
import java.util.Map;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What verifying one access token costs, in a warmed loop on one thread: {@link TokenVerifier#verify} with
 * and without the revocation check, against a bare RS256 signature check of the same token with the JDK
 * ({@code SHA256withRSA}), the floor any local verification pays. Not part of the suite (tag
 * {@code benchmark}): {@code mvn -o test -Dtest=VerifyBenchmark -Dbenchmarks.excluded=none}.
 */
@Tag("benchmark")
class VerifyBenchmark {
    private static final int WARM_UP = 20_000;
    private static final int ROUNDS = 20_000;

    @Test
    void verification_cost_per_token() throws Exception {
        try (TestServer server = TestServer.start(Map.of())) {
            for (int i = 0; i < 50; i++) {
                server.client().logout(server.signUp().accessToken());
            }
            String token = server.signUp().accessToken();
            String kid = (String) Jwt.part(token, 0).get("kid");
            RSAPublicKey key = Jwks.rs256Keys(Json.parseObject(server.get("/.well-known/jwks.json").body())).get(kid);
            int dot = token.lastIndexOf('.');
            byte[] input = token.substring(0, dot).getBytes(StandardCharsets.US_ASCII);
            byte[] signature = Base64.getUrlDecoder().decode(token.substring(dot + 1));

            try (TokenVerifier withFeed = server.verifier().build();
                    TokenVerifier withoutFeed = TokenVerifier.create(server.baseUrl)) {
                String sub = withFeed.verify(token).sub();
                double[] raw = measure(() -> {
                    Signature rsa = Signature.getInstance("SHA256withRSA");
                    rsa.initVerify(key);
                    rsa.update(input);
                    if (!rsa.verify(signature)) {
                        throw new AssertionError("the genuine signature verifies");
                    }
                });
                double[] plain = measure(() -> assertEquals(sub, withoutFeed.verify(token).sub()));
                double[] feed = measure(() -> assertEquals(sub, withFeed.verify(token).sub()));
                System.out.printf(Locale.ROOT, "per token, %d rounds after %d warm-up, µs (p50 / p99)%n", ROUNDS, WARM_UP);
                row("raw RS256 signature check (JDK SHA256withRSA)", raw);
                row("TokenVerifier.verify, no revocation feed", plain);
                row("TokenVerifier.verify, revocation feed on (50 logouts)", feed);
            }
        }
    }

    private interface Body {
        void run() throws Exception;
    }

    private static double[] measure(Body body) throws Exception {
        for (int i = 0; i < WARM_UP; i++) {
            body.run();
        }
        long[] samples = new long[ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
            long started = System.nanoTime();
            body.run();
            samples[i] = System.nanoTime() - started;
        }
        Arrays.sort(samples);
        return new double[] {samples[ROUNDS / 2] / 1e3, samples[ROUNDS * 99 / 100] / 1e3};
    }

    private static void row(String name, double[] p50p99) {
        System.out.printf(Locale.ROOT, "%-58s %8.1f / %8.1f%n", name, p50p99[0], p50p99[1]);
    }
}
