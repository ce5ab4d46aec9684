//! The browser's side of a passkey ceremony. IdentSphere sends the options as WebAuthn JSON (binary fields in
//! base64url) and wants the credential back as `credential.toJSON()` gives it. Browsers of WebAuthn Level 3
//! convert both ways themselves (`PublicKeyCredential.parseCreationOptionsFromJSON`,
//! `parseRequestOptionsFromJSON`, `toJSON`); for the others, the functions here do the same by hand. Each is
//! looked up at call time, on the object at hand: a password manager's extension may answer
//! `navigator.credentials` with credentials of its own, without `toJSON`, or inheriting the browser's, which
//! throws on an object the browser did not make (1Password's and KeePassXC's have done so).

import { CLIENT_ERROR_CODES, IdentSphereError } from "./errors.js";

/** `PublicKeyCredential.toJSON()` of a new credential (`RegistrationResponseJSON`), as far as IdentSphere reads it. */
export interface RegistrationCredentialJSON {
  id: string;
  rawId: string;
  type: string;
  authenticatorAttachment?: string;
  clientExtensionResults: AuthenticationExtensionsClientOutputs;
  response: { clientDataJSON: string; attestationObject: string; transports: string[] };
}

/** `PublicKeyCredential.toJSON()` of an assertion (`AuthenticationResponseJSON`). */
export interface AuthenticationCredentialJSON {
  id: string;
  rawId: string;
  type: string;
  authenticatorAttachment?: string;
  clientExtensionResults: AuthenticationExtensionsClientOutputs;
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string };
}

/** What a passkey sign-in may ask of the browser: a modal dialog (`optional`), or the autofill (`conditional`). */
export type PasskeyMediation = "conditional" | "optional";

export function base64urlEncode(data: ArrayBuffer | ArrayBufferView): string {
  const bytes = ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url, padded or not. */
export function base64urlDecode(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, ""));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** `PublicKeyCredential`, where this browser has it (never on the server, nor in an insecure context). */
type PublicKeyCredentialStatics = Partial<typeof PublicKeyCredential>;

function publicKeyCredential(): PublicKeyCredentialStatics | undefined {
  return (globalThis as { PublicKeyCredential?: PublicKeyCredentialStatics }).PublicKeyCredential;
}

const descriptor = (d: PublicKeyCredentialDescriptorJSON): PublicKeyCredentialDescriptor => ({
  id: base64urlDecode(d.id),
  type: d.type as PublicKeyCredentialType,
  ...(d.transports && { transports: d.transports as AuthenticatorTransport[] }),
});

/**
 * The options for `navigator.credentials.create`. The fallback decodes the binary fields IdentSphere sends
 * (challenge, user id, excluded credential ids) and passes the rest as it is: IdentSphere asks for no
 * extension with binary inputs.
 */
export function creationOptionsFromJSON(
  json: PublicKeyCredentialCreationOptionsJSON,
  pkc = publicKeyCredential(),
): PublicKeyCredentialCreationOptions {
  if (typeof pkc?.parseCreationOptionsFromJSON === "function") return pkc.parseCreationOptionsFromJSON(json);
  const { challenge, user, excludeCredentials, ...rest } = json;
  return {
    ...(rest as unknown as Omit<PublicKeyCredentialCreationOptions, "challenge" | "user">),
    challenge: base64urlDecode(challenge),
    user: { ...user, id: base64urlDecode(user.id) },
    ...(excludeCredentials && { excludeCredentials: excludeCredentials.map(descriptor) }),
  };
}

/** The options for `navigator.credentials.get`; the fallback decodes the challenge and the allowed ids. */
export function requestOptionsFromJSON(
  json: PublicKeyCredentialRequestOptionsJSON,
  pkc = publicKeyCredential(),
): PublicKeyCredentialRequestOptions {
  if (typeof pkc?.parseRequestOptionsFromJSON === "function") return pkc.parseRequestOptionsFromJSON(json);
  const { challenge, allowCredentials, ...rest } = json;
  return {
    ...(rest as unknown as Omit<PublicKeyCredentialRequestOptions, "challenge">),
    challenge: base64urlDecode(challenge),
    ...(allowCredentials && { allowCredentials: allowCredentials.map(descriptor) }),
  };
}

/**
 * The credential as `toJSON()` gives it. The fallback leaves out what `toJSON` adds for servers that do not
 * parse the attestation object (`publicKey`, `publicKeyAlgorithm`, `authenticatorData` of a registration):
 * IdentSphere reads them from it. Extension results pass as they are: IdentSphere asks for none with binary
 * outputs.
 */
export function credentialToJSON(
  credential: PublicKeyCredential,
): RegistrationCredentialJSON | AuthenticationCredentialJSON {
  if (typeof credential.toJSON === "function") {
    try {
      return credential.toJSON();
    } catch {
      // An extension's credential with the browser's toJSON ("Illegal invocation"): its attributes still read.
    }
  }
  const common = {
    id: credential.id,
    rawId: base64urlEncode(credential.rawId),
    type: credential.type,
    ...(credential.authenticatorAttachment && { authenticatorAttachment: credential.authenticatorAttachment }),
    clientExtensionResults: credential.getClientExtensionResults(),
  };
  const response = credential.response;
  const clientDataJSON = base64urlEncode(response.clientDataJSON);
  if ("attestationObject" in response) {
    const attestation = response as AuthenticatorAttestationResponse;
    return {
      ...common,
      response: {
        clientDataJSON,
        attestationObject: base64urlEncode(attestation.attestationObject),
        transports: typeof attestation.getTransports === "function" ? attestation.getTransports() : [],
      },
    };
  }
  const assertion = response as AuthenticatorAssertionResponse;
  return {
    ...common,
    response: {
      clientDataJSON,
      authenticatorData: base64urlEncode(assertion.authenticatorData),
      signature: base64urlEncode(assertion.signature),
      ...(assertion.userHandle && { userHandle: base64urlEncode(assertion.userHandle) }),
    },
  };
}

/** The browser's credential manager, or `passkeys_unsupported`. */
function credentialsContainer(): CredentialsContainer {
  const container = (globalThis as { navigator?: { credentials?: CredentialsContainer } }).navigator?.credentials;
  if (!container || !publicKeyCredential()) {
    throw unsupported("this browser has no WebAuthn here (passkeys need https:// or http://localhost)");
  }
  return container;
}

/**
 * Throws `passkeys_unsupported` unless this page can run WebAuthn (for `conditional`, with passkeys in the
 * autofill). Asked before the options: a ceremony started for nothing counts against the server's limits.
 */
export async function requireWebAuthn(mediation?: PasskeyMediation): Promise<void> {
  credentialsContainer();
  if (mediation !== "conditional") return;
  const available = await publicKeyCredential()?.isConditionalMediationAvailable?.();
  if (!available) throw unsupported("this browser offers no passkeys in the autofill (conditional mediation)");
}

/** `navigator.credentials.create`: a new passkey, as JSON for IdentSphere. */
export async function createCredential(
  options: PublicKeyCredentialCreationOptionsJSON,
  signal: AbortSignal,
): Promise<RegistrationCredentialJSON> {
  const container = credentialsContainer();
  const publicKey = creationOptionsFromJSON(options);
  const credential = await container.create({ publicKey, signal }).catch((error: unknown) => {
    throw ceremonyError(error, "create");
  });
  return credentialToJSON(credential as PublicKeyCredential) as RegistrationCredentialJSON;
}

/** `navigator.credentials.get`: an assertion of a passkey, as JSON for IdentSphere. */
export async function getCredential(
  options: PublicKeyCredentialRequestOptionsJSON,
  signal: AbortSignal,
  mediation?: PasskeyMediation,
): Promise<AuthenticationCredentialJSON> {
  const container = credentialsContainer();
  const publicKey = requestOptionsFromJSON(options);
  const request = { publicKey, signal, ...(mediation && { mediation }) };
  const credential = await container.get(request).catch((error: unknown) => {
    throw ceremonyError(error, "get");
  });
  return credentialToJSON(credential as PublicKeyCredential) as AuthenticationCredentialJSON;
}

/**
 * A failed browser ceremony as an `IdentSphereError`. Browsers report a dismissed dialog, a timeout and a
 * refusal alike (`NotAllowedError`, so that a page cannot probe which passkeys exist), hence one code for them
 * and for an abort; `InvalidStateError` on create means the authenticator holds one of the user's passkeys
 * already (the options exclude them), which is the server's `passkey_exists`.
 */
function ceremonyError(error: unknown, call: "create" | "get"): IdentSphereError {
  // By shape, not class: a DOMException of another realm (a frame's, or a test DOM's) is no `Error` here.
  const thrown = (typeof error === "object" && error !== null ? error : {}) as { name?: unknown; message?: unknown };
  const name = typeof thrown.name === "string" ? thrown.name : "";
  const message = `navigator.credentials.${call}: ${name ? `${name}: ` : ""}${
    typeof thrown.message === "string" ? thrown.message : String(error)
  }`;
  if (name === "NotAllowedError" || name === "AbortError") return passkeyCancelled(message, error);
  if (name === "InvalidStateError" && call === "create") {
    return new IdentSphereError({ code: "passkey_exists", type: "conflict_error", message, status: 0, cause: error });
  }
  return clientError(CLIENT_ERROR_CODES.webauthn, message, error);
}

export function passkeyCancelled(message: string, cause?: unknown): IdentSphereError {
  return clientError(CLIENT_ERROR_CODES.passkeyCancelled, message, cause);
}

function unsupported(message: string): IdentSphereError {
  return clientError(CLIENT_ERROR_CODES.passkeysUnsupported, message);
}

function clientError(code: string, message: string, cause?: unknown): IdentSphereError {
  return new IdentSphereError({ code, type: "client_error", message, status: 0, cause });
}
