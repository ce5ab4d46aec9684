//! `@identsphere/react/client`: the framework-free client, usable without React.

export { IdentSphereClient, accessExpiry, refreshDelay, type ClientOptions } from "./client.js";
export { IdentSphereError, CLIENT_ERROR_CODES, type ErrorEnvelope } from "./errors.js";
export type * from "./types.js";
export type { AuthenticationCredentialJSON, PasskeyMediation, RegistrationCredentialJSON } from "./webauthn.js";
