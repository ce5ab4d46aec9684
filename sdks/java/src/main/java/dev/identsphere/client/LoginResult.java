package dev.identsphere.client;

/**
 * What a sign-in answers: the tokens of a new session, or the second-factor step. Both are normal
 * outcomes, so neither is an exception:
 *
 * <pre>{@code
 * LoginResult result = client.login(email, password);
 * if (result instanceof MfaRequired mfa) {
 *     result = client.verifyMfa(mfa.mfaToken(), codeFromTheUser);
 * }
 * TokenResponse tokens = (TokenResponse) result;
 * }</pre>
 */
public sealed interface LoginResult permits TokenResponse, MfaRequired {}
