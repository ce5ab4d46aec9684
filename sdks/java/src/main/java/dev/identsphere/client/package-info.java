/**
 * The IdentSphere server-side SDK for Java 17+, on the JDK alone.
 *
 * <ul>
 *   <li>{@link dev.identsphere.client.IdentSphereClient}: the REST API, typed: {@code register}, {@code login}
 *       (tokens, or {@link dev.identsphere.client.MfaRequired}), {@code refresh} (optionally switching
 *       organization), {@code logout}, {@code session}, {@code verifyMfa}, {@code stepUp} and the account
 *       calls. Every refusal is an {@link dev.identsphere.client.IdentSphereException} with the catalog's
 *       code ({@link dev.identsphere.client.ErrorCodes}).</li>
 *   <li>{@link dev.identsphere.client.TokenVerifier}: access tokens checked locally (RS256 against the
 *       cached JWKS, issuer, type, expiry) and, with a platform API key, against the revocation feed, into
 *       typed {@link dev.identsphere.client.Claims}.</li>
 *   <li>{@link dev.identsphere.client.IdentSphereServletFilter} (Jakarta Servlet 5+) and
 *       {@link dev.identsphere.client.IdentSphereHttpFilter} (the JDK's {@code HttpServer}): the token from
 *       {@code Authorization: Bearer} or the {@code identsphere_at} cookie, the claims as the attribute
 *       {@code identsphere.claims}, refusals in IdentSphere's error envelope.</li>
 * </ul>
 */
package dev.identsphere.client;
