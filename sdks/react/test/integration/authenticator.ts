// A software passkey authenticator for the integration tests, standing in for a browser's WebAuthn and a
// platform authenticator together: `navigator.credentials.create` and `get` on the options the client decoded,
// answering with credentials shaped as a browser's `PublicKeyCredential` without `toJSON` (so the client's
// fallback encodes them). Real P-256 keys and signatures (node:crypto) and "none" attestation: the server
// verifies genuine WebAuthn data. The browser's own WebAuthn is the end-to-end test's.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";

/** User present, user verified, attested credential data (authenticator data flags). */
const UP = 0x01;
const UV = 0x04;
const AT = 0x40;

type Cbor = number | string | Uint8Array | Map<Cbor, Cbor>;

/** CBOR (RFC 8949) of the few kinds an attestation object holds; lengths below 65536. */
function cbor(value: Cbor): Buffer {
  const head = (major: number, n: number) =>
    Buffer.from(n < 24 ? [(major << 5) | n] : n < 256 ? [(major << 5) | 24, n] : [(major << 5) | 25, n >> 8, n & 0xff]);
  if (typeof value === "number") return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === "string") return Buffer.concat([head(3, Buffer.byteLength(value)), Buffer.from(value)]);
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();
const bytes = (source: BufferSource) =>
  ArrayBuffer.isView(source) ? Buffer.from(source.buffer, source.byteOffset, source.byteLength) : Buffer.from(source);
/** A standalone copy, as the browser's attributes are. */
const arrayBuffer = (data: Uint8Array) => new Uint8Array(data).buffer;

interface Credential {
  id: Buffer;
  key: KeyObject;
  rpId: string;
  userHandle: Buffer;
  counter: number;
}

/** An authenticator for pages of `origin`; `userVerification` false is a security key without a PIN. */
export function softAuthenticator(origin: string, { userVerification = true } = {}) {
  const held: Credential[] = [];
  const flags = UP | (userVerification ? UV : 0);
  const clientData = (type: string, challenge: BufferSource) =>
    Buffer.from(JSON.stringify({ type, challenge: bytes(challenge).toString("base64url"), origin, crossOrigin: false }));
  const common = (id: Buffer) => ({
    id: id.toString("base64url"),
    rawId: arrayBuffer(id),
    type: "public-key",
    authenticatorAttachment: "platform",
    getClientExtensionResults: () => ({}),
  });

  async function create({ publicKey }: CredentialCreationOptions) {
    if (!publicKey?.rp.id) throw new Error("softAuthenticator: no RP ID in the options");
    const { privateKey, publicKey: point } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const { x = "", y = "" } = point.export({ format: "jwk" });
    const credential: Credential = {
      id: randomBytes(16),
      key: privateKey,
      rpId: publicKey.rp.id,
      userHandle: bytes(publicKey.user.id),
      counter: 0,
    };
    const coseKey = new Map<Cbor, Cbor>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, Buffer.from(x, "base64url")],
      [-3, Buffer.from(y, "base64url")],
    ]);
    const length = Buffer.from([credential.id.length >> 8, credential.id.length & 0xff]);
    const authData = Buffer.concat([
      sha256(credential.rpId),
      Buffer.from([flags | AT, 0, 0, 0, 0]),
      Buffer.alloc(16), // AAGUID: none
      length,
      credential.id,
      cbor(coseKey),
    ]);
    const attestation = new Map<Cbor, Cbor>([
      ["fmt", "none"],
      ["attStmt", new Map()],
      ["authData", authData],
    ]);
    held.push(credential);
    return {
      ...common(credential.id),
      response: {
        clientDataJSON: arrayBuffer(clientData("webauthn.create", publicKey.challenge)),
        attestationObject: arrayBuffer(cbor(attestation)),
        getTransports: () => ["internal"],
      },
    };
  }

  /** The first credential of the RP ID that `allowCredentials` allows (any, when it is empty: discoverable). */
  async function get({ publicKey }: CredentialRequestOptions) {
    const allowed = (publicKey?.allowCredentials ?? []).map((c) => bytes(c.id));
    const credential = held.find(
      (c) => c.rpId === publicKey?.rpId && (allowed.length === 0 || allowed.some((id) => id.equals(c.id))),
    );
    if (!publicKey || !credential) throw new DOMException("no passkey for these options", "NotAllowedError");
    credential.counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(credential.counter);
    const authenticatorData = Buffer.concat([sha256(credential.rpId), Buffer.from([flags]), counter]);
    const clientDataJSON = clientData("webauthn.get", publicKey.challenge);
    const signature = sign("sha256", Buffer.concat([authenticatorData, sha256(clientDataJSON)]), credential.key);
    return {
      ...common(credential.id),
      response: {
        clientDataJSON: arrayBuffer(clientDataJSON),
        authenticatorData: arrayBuffer(authenticatorData),
        signature: arrayBuffer(signature),
        userHandle: arrayBuffer(credential.userHandle),
      },
    };
  }

  return { credentials: { create, get }, held };
}
