package dev.identsphere.client;

import static dev.identsphere.client.Refusals.refused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;

import org.junit.jupiter.api.Test;

/**
 * An emergency key rotation ({@code identsphere keys rotate}) as a resource server lives it: the first token
 * of the new key costs one JWKS refetch, the next ones none, and tokens of the retired key stop verifying.
 * On Postgres, because the command runs beside the server and the embedded store admits one process.
 */
class KeyRotationTest {

    @Test
    void after_a_key_rotation_new_tokens_verify_with_one_refetch_and_old_ones_are_refused() {
        Duration interval = Duration.ofSeconds(1);
        try (TestServer server = TestServer.onPostgres();
                TokenVerifier verifier = server.verifier().jwksRefetchInterval(interval).build()) {
            TokenResponse tokens = server.signUp();
            String old = tokens.accessToken();
            verifier.verify(old);
            String oldKid = (String) Jwt.part(old, 0).get("kid");

            String printed = server.command("keys", "rotate");
            Instant deadline = Instant.now().plusSeconds(10);
            // The server reloads its keys every second: wait until it publishes the new one.
            while (server.get("/.well-known/jwks.json").body().contains(oldKid)) {
                assertTrue(Instant.now().isBefore(deadline), "the rotated key was never published");
                TestServer.sleep(Duration.ofMillis(100));
            }
            String fresh = ((TokenResponse) server.client().login(tokens.user().email(), TestServer.PASSWORD))
                    .accessToken();
            String newKid = (String) Jwt.part(fresh, 0).get("kid");
            assertNotEquals(oldKid, newKid, "the new key signs");
            assertTrue(printed.contains(newKid), "keys rotate prints the new key id: " + printed);

            TestServer.sleep(interval); // the build's fetch no longer holds back a refetch
            long before = server.jwksServed();
            for (int i = 0; i < 5; i++) {
                assertEquals(tokens.user().id(), verifier.verify(fresh).sub());
            }
            refused(401, ErrorCodes.TOKEN_INVALID, () -> verifier.verify(old));
            assertEquals(1, server.jwksServed() - before, "one refetch for the new kid, then the cache");
        }
    }
}
