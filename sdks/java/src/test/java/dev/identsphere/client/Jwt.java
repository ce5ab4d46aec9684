package dev.identsphere.client;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/** Takes tokens apart and puts forged ones together, for the verifier's tests. */
final class Jwt {
    private Jwt() {}

    /** An RSA key that is not IdentSphere's, made once: 2048-bit keys take a while to generate. */
    private static final KeyPair OTHER_KEY = generate();

    /** Part {@code index} of a token (0: header, 1: claims), as a mutable map. */
    static Map<String, Object> part(String token, int index) {
        String encoded = token.split("\\.")[index];
        return new LinkedHashMap<>(Json.parseObject(new String(Base64.getUrlDecoder().decode(encoded),
                StandardCharsets.UTF_8)).members());
    }

    static String encode(Map<String, ?> json) {
        return encode(Json.write(json).getBytes(StandardCharsets.UTF_8));
    }

    static String encode(byte[] bytes) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    /** A token with this header and these claims, signed RS256 by a key that is not IdentSphere's. */
    static String signedByAnotherKey(Map<String, ?> header, Map<String, ?> claims) {
        String input = encode(header) + "." + encode(claims);
        try {
            Signature rsa = Signature.getInstance("SHA256withRSA");
            rsa.initSign(OTHER_KEY.getPrivate());
            rsa.update(input.getBytes(StandardCharsets.US_ASCII));
            return input + "." + encode(rsa.sign());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A token MACed with HS256 under {@code secret}: the algorithm-confusion attack when it is a public key. */
    static String hs256(Map<String, ?> header, Map<String, ?> claims, byte[] secret) {
        String input = encode(header) + "." + encode(claims);
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            return input + "." + encode(mac.doFinal(input.getBytes(StandardCharsets.US_ASCII)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static KeyPair generate() {
        try {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
            generator.initialize(2048);
            return generator.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
