package dev.identsphere.client;

import static dev.identsphere.client.Refusals.refused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.interfaces.RSAPublicKey;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Local verification against a real IdentSphere: what passes, what is refused and with which code. */
@ExtendWith(SharedServer.class)
class VerifierTest {

    @Test
    void a_valid_access_token_verifies_to_its_claims_typed(TestServer server) {
        TokenResponse tokens = server.signUp();
        try (TokenVerifier verifier = server.verifier().build()) {
            Claims claims = verifier.verify(tokens.accessToken());
            Map<String, Object> sent = Jwt.part(tokens.accessToken(), 1);
            assertEquals(sent.get("sub"), claims.sub());
            assertEquals(Optional.of(sent.get("org")), claims.org());
            assertEquals(Optional.of(server.baseUrl), claims.iss());
            assertEquals(Instant.ofEpochSecond((Long) sent.get("exp")), claims.exp());
            assertEquals(Instant.ofEpochSecond((Long) sent.get("iat")), claims.iat());
            assertEquals("access", claims.typ());
            assertEquals(Optional.of(tokens.user().email()), claims.email());
            assertEquals(Optional.of(sent.get("jti")), claims.jti());
            assertEquals(Optional.of(tokens.session().id()), claims.sid());
            assertEquals(Optional.of(Aal.AAL1), claims.aal());
            assertFalse(claims.isAal2());
            assertEquals(Optional.of(tokens.session().authTime()), claims.authTime());
            assertEquals(Optional.of(AuthMethod.PASSWORD), claims.authMethod());
            assertEquals(server.baseUrl, verifier.issuer());
        }
    }

    @Test
    void forged_tokens_are_token_invalid(TestServer server) {
        TokenResponse tokens = server.signUp();
        String token = tokens.accessToken();
        Map<String, Object> header = Jwt.part(token, 0);
        Map<String, Object> claims = Jwt.part(token, 1);
        String signature = token.substring(token.lastIndexOf('.') + 1);
        try (TokenVerifier verifier = server.verifier().build()) {
            verifier.verify(token);

            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(Jwt.signedByAnotherKey(header, claims)));

            Map<String, Object> none = new LinkedHashMap<>(header);
            none.put("alg", "none");
            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(Jwt.encode(none) + "." + Jwt.encode(claims) + "."));
            refused(401, ErrorCodes.TOKEN_INVALID,
                    () -> verifier.verify(Jwt.encode(none) + "." + Jwt.encode(claims) + "." + signature));

            // HS256 keyed with IdentSphere's public key, as DER and as PEM: the algorithm-confusion attack.
            Map<String, Object> hs256 = new LinkedHashMap<>(header);
            hs256.put("alg", "HS256");
            RSAPublicKey publicKey = publicKey(server, (String) header.get("kid"));
            String pem = "-----BEGIN PUBLIC KEY-----\n"
                    + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(publicKey.getEncoded())
                    + "\n-----END PUBLIC KEY-----\n";
            for (byte[] secret : List.of(publicKey.getEncoded(), pem.getBytes(StandardCharsets.US_ASCII))) {
                refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(Jwt.hs256(hs256, claims, secret)));
            }

            Map<String, Object> otherUser = new LinkedHashMap<>(claims);
            otherUser.put("sub", UUID.randomUUID().toString());
            refused(401, ErrorCodes.TOKEN_INVALID,
                    () -> verifier.verify(Jwt.encode(header) + "." + Jwt.encode(otherUser) + "." + signature));

            for (String member : List.of("typ", "kid")) {
                Map<String, Object> without = new LinkedHashMap<>(header);
                without.remove(member);
                refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(Jwt.signedByAnotherKey(without, claims)));
            }
            Map<String, Object> critical = new LinkedHashMap<>(header);
            critical.put("crit", "exp");
            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(Jwt.signedByAnotherKey(critical, claims)));
            Map<String, Object> unknownKid = new LinkedHashMap<>(header);
            unknownKid.put("kid", "not-a-key-of-ours");
            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(Jwt.signedByAnotherKey(unknownKid, claims)));

            for (String garbage : List.of("", "not-a-jwt", "a.b", "a.b.c.d", token + "x", token + ".", "." + token,
                    token.substring(0, token.lastIndexOf('.')) + ".%%%", "e30.e30.e30", "x".repeat(9000))) {
                refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(garbage));
            }
            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(null));
        }
    }

    @Test
    void refresh_and_mfa_tokens_are_not_access_tokens(TestServer server) {
        TokenResponse tokens = server.signUp();
        TestServer.Enrolled enrolled = server.enrollTotp(tokens);
        MfaRequired mfa = (MfaRequired) server.client().login(tokens.user().email(), TestServer.PASSWORD);
        try (TokenVerifier verifier = server.verifier().build()) {
            assertEquals("mfa", Jwt.part(mfa.mfaToken(), 1).get("typ"), "a real, RS256-signed mfa token");
            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(mfa.mfaToken()));
            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(enrolled.tokens().refreshToken()));
            assertTrue(verifier.verify(enrolled.tokens().accessToken()).isAal2());
        }
    }

    @Test
    void a_token_of_another_issuer_is_token_invalid(TestServer server) {
        String token = server.signUp().accessToken();
        try (TokenVerifier elsewhere = server.verifier().issuer("https://someone-else.example").build()) {
            refused(401, ErrorCodes.TOKEN_INVALID, () -> elsewhere.verify(token));
        }
    }

    @Test
    void an_expired_token_is_token_expired_unless_within_the_leeway(TestServer server) {
        String token = server.signUp().accessToken();
        Instant exp = Instant.ofEpochSecond((Long) Jwt.part(token, 1).get("exp"));
        Clock atExpiry = Clock.fixed(exp, java.time.ZoneOffset.UTC);
        try (TokenVerifier verifier = server.verifier().clock(atExpiry).build();
                TokenVerifier lenient = server.verifier().clock(atExpiry).leeway(Duration.ofSeconds(30)).build();
                TokenVerifier justBefore = server.verifier().clock(Clock.offset(atExpiry, Duration.ofSeconds(-1))).build()) {
            refused(401, ErrorCodes.TOKEN_EXPIRED, () -> verifier.verify(token));
            lenient.verify(token);
            justBefore.verify(token);
        }
    }

    @Test
    void with_no_key_ever_fetched_every_token_is_service_unavailable(TestServer server) throws Exception {
        String token = server.signUp().accessToken();
        try (TokenVerifier nowhere = TokenVerifier.builder("http://127.0.0.1:" + TestServer.freePort())
                .issuer(server.baseUrl).build()) {
            IdentSphereException refusal = refused(503, ErrorCodes.SERVICE_UNAVAILABLE, () -> nowhere.verify(token));
            assertEquals(Duration.ofSeconds(1), refusal.getRetryAfter().orElseThrow());
        }
    }

    @Test
    void a_logout_reaches_the_verifier_through_the_revocation_feed(TestServer server) {
        IdentSphereClient client = server.client();
        TokenResponse loggedOut = server.signUp();
        TokenResponse other = (TokenResponse) client.login(loggedOut.user().email(), TestServer.PASSWORD);
        try (TokenVerifier verifier = server.verifier().build()) {
            verifier.verify(loggedOut.accessToken());
            client.logout(loggedOut.accessToken());
            awaitRefusal(verifier, loggedOut.accessToken(), ErrorCodes.TOKEN_REVOKED);
            verifier.verify(other.accessToken());
        }
        try (TokenVerifier withoutFeed = TokenVerifier.create(server.baseUrl)) {
            withoutFeed.verify(loggedOut.accessToken()); // documented: revoked tokens pass until they expire
        }
    }

    @Test
    void a_reused_refresh_token_revokes_its_session_at_the_verifier_too() {
        try (TestServer server = TestServer.start(Map.of("IDENTSPHERE_REFRESH_REUSE_GRACE", "0"));
                TokenVerifier verifier = server.verifier().build()) {
            TokenResponse tokens = server.signUp();
            TokenResponse successor = server.client().refresh(tokens.refreshToken());
            verifier.verify(successor.accessToken());
            refused(401, ErrorCodes.REFRESH_TOKEN_REUSED, () -> server.client().refresh(tokens.refreshToken()));
            awaitRefusal(verifier, successor.accessToken(), ErrorCodes.TOKEN_REVOKED);
        }
    }

    /** Waits up to two seconds (ten poll intervals) for {@code token} to be refused with {@code code}. */
    private static void awaitRefusal(TokenVerifier verifier, String token, String code) {
        Instant deadline = Instant.now().plusSeconds(2);
        while (true) {
            try {
                verifier.verify(token);
            } catch (IdentSphereException refusal) {
                assertEquals(code, refusal.getCode());
                return;
            }
            assertTrue(Instant.now().isBefore(deadline), "not refused with " + code + " within 2 s");
            TestServer.sleep(Duration.ofMillis(50));
        }
    }

    @Test
    void many_threads_verify_at_once_with_one_jwks_fetch() throws Exception {
        try (TestServer server = TestServer.start(Map.of())) {
            List<TokenResponse> users = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                users.add(server.signUp());
            }
            long before = server.jwksServed();
            ExecutorService pool = Executors.newFixedThreadPool(32);
            try (TokenVerifier verifier = server.verifier().build()) {
                CountDownLatch start = new CountDownLatch(1);
                List<Future<Boolean>> checks = new ArrayList<>();
                for (int i = 0; i < 3200; i++) {
                    TokenResponse user = users.get(i % users.size());
                    checks.add(pool.submit(() -> {
                        start.await();
                        return verifier.verify(user.accessToken()).sub().equals(user.user().id());
                    }));
                }
                start.countDown();
                for (Future<Boolean> check : checks) {
                    assertTrue(check.get(), "each thread sees its own user");
                }
            } finally {
                pool.shutdownNow();
            }
            assertEquals(1, server.jwksServed() - before, "the keys are fetched once, at build");
        }
    }

    @Test
    void a_flood_of_unknown_kids_costs_one_jwks_fetch() throws Exception {
        try (TestServer server = TestServer.start(Map.of())) {
            Map<String, Object> claims = Jwt.part(server.signUp().accessToken(), 1);
            Duration interval = Duration.ofSeconds(2);
            try (TokenVerifier verifier = server.verifier().jwksRefetchInterval(interval).build()) {
                long before = server.jwksServed();
                TestServer.sleep(interval.plusMillis(100)); // the build's fetch no longer holds back the next one
                ExecutorService pool = Executors.newFixedThreadPool(32);
                CountDownLatch start = new CountDownLatch(1);
                List<Future<String>> refusals = new ArrayList<>();
                for (int i = 0; i < 640; i++) {
                    String forged = Jwt.signedByAnotherKey(
                            Map.of("alg", "RS256", "typ", "JWT", "kid", UUID.randomUUID().toString()), claims);
                    refusals.add(pool.submit(() -> {
                        start.await();
                        try {
                            verifier.verify(forged);
                            return "accepted";
                        } catch (IdentSphereException refusal) {
                            return refusal.getCode();
                        }
                    }));
                }
                Instant flood = Instant.now();
                start.countDown();
                for (Future<String> refusal : refusals) {
                    assertEquals(ErrorCodes.TOKEN_INVALID, refusal.get());
                }
                Duration took = Duration.between(flood, Instant.now());
                pool.shutdownNow();
                long fetches = server.jwksServed() - before;
                // One fetch per started interval at most; the flood normally ends well within the first.
                long allowed = 1 + took.toMillis() / interval.toMillis();
                assertTrue(fetches >= 1 && fetches <= allowed, fetches + " JWKS fetches for 640 forged kids in " + took);
            }
        }
    }

    private static RSAPublicKey publicKey(TestServer server, String kid) {
        return Jwks.rs256Keys(Json.parseObject(server.get("/.well-known/jwks.json").body())).get(kid);
    }
}
