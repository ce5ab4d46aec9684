//! A software passkey authenticator: what a browser and a platform authenticator do together, built on
//! real primitives (P-256 ECDSA from aws-lc-rs, CBOR from serde_cbor_2) so the server verifies genuine
//! WebAuthn data. It answers the server's options JSON with `credential.toJSON()`-shaped JSON.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};

/// User present, user verified, attested credential data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// One discoverable credential.
#[derive(Clone)]
pub struct Credential {
    pub id: Vec<u8>,
    pkcs8: Vec<u8>,
    rp_id: String,
    user_handle: String,
    pub counter: u32,
}

impl Credential {
    fn key(&self) -> EcdsaKeyPair {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.pkcs8).unwrap()
    }
}

/// The authenticator and the page it runs for. `Clone` copies the keys: a cloned authenticator.
#[derive(Clone)]
pub struct Authenticator {
    /// The origin the browser puts in the client data.
    pub origin: String,
    /// Whether it verifies the user (PIN, biometrics).
    pub user_verification: bool,
    /// Signs for this RP ID instead of the one in the options (a phishing site's).
    pub rp_id_override: Option<String>,
    pub credentials: Vec<Credential>,
}

impl Authenticator {
    pub fn new(origin: &str) -> Self {
        Self { origin: origin.to_owned(), user_verification: true, rp_id_override: None, credentials: Vec::new() }
    }

    fn flags(&self) -> u8 {
        if self.user_verification { UP | UV } else { UP }
    }

    fn client_data(&self, kind: &str, challenge: &Value) -> Vec<u8> {
        let data = json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false});
        serde_json::to_vec(&data).unwrap()
    }

    /// `navigator.credentials.create()` for the options the server returned (`{"publicKey": …}`): a new
    /// key pair, or the credential `reuse` (its id and key) registered again.
    pub fn register(&mut self, options: &Value, reuse: Option<&Credential>) -> Value {
        let options = &options["publicKey"];
        let rp_id = self.rp_id_override.clone().unwrap_or_else(|| options["rp"]["id"].as_str().unwrap().to_owned());
        let credential = match reuse {
            Some(existing) => Credential { counter: 0, ..existing.clone() },
            None => {
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
                Credential {
                    id: uuid::Uuid::new_v4().as_bytes().to_vec(),
                    pkcs8: pkcs8.as_ref().to_vec(),
                    rp_id: rp_id.clone(),
                    user_handle: options["user"]["id"].as_str().unwrap().to_owned(),
                    counter: 0,
                }
            }
        };
        let point = credential.key().public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let cose_key = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),  // kty: EC2
            (Cbor::Integer(3), Cbor::Integer(-7)), // alg: ES256
            (Cbor::Integer(-1), Cbor::Integer(1)), // crv: P-256
            (Cbor::Integer(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer(-3), Cbor::Bytes(point[33..].to_vec())),
        ]));
        let mut auth_data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(self.flags() | AT);
        auth_data.extend_from_slice(&credential.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(&u16::try_from(credential.id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&credential.id);
        auth_data.extend_from_slice(&serde_cbor_2::to_vec(&cose_key).unwrap());
        let attestation = Cbor::Map(BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        let client_data = self.client_data("webauthn.create", &options["challenge"]);
        let id = credential.id.clone();
        self.credentials.push(credential);
        to_json(
            &id,
            json!({
                "clientDataJSON": B64URL.encode(client_data),
                "attestationObject": B64URL.encode(serde_cbor_2::to_vec(&attestation).unwrap()),
                "transports": ["internal", "hybrid"],
            }),
        )
    }

    /// `navigator.credentials.get()` for the options the server returned: the first credential of the RP
    /// ID that `allowCredentials` allows (any, when it is empty: a discoverable sign-in).
    pub fn authenticate(&mut self, options: &Value) -> Value {
        let options = &options["publicKey"];
        let rp_id = options["rpId"].as_str().unwrap().to_owned();
        let allowed: Vec<Vec<u8>> = options["allowCredentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| B64URL.decode(c["id"].as_str().unwrap()).unwrap())
            .collect();
        let flags = self.flags();
        let signed_rp = self.rp_id_override.clone().unwrap_or_else(|| rp_id.clone());
        let client_data = self.client_data("webauthn.get", &options["challenge"]);
        let credential = self
            .credentials
            .iter_mut()
            .find(|c| c.rp_id == rp_id && (allowed.is_empty() || allowed.contains(&c.id)))
            .expect("a credential for this RP ID");
        credential.counter += 1;
        let mut auth_data = digest(&SHA256, signed_rp.as_bytes()).as_ref().to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&credential.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let signature = credential.key().sign(&SystemRandom::new(), &signed).unwrap();
        to_json(
            &credential.id,
            json!({
                "clientDataJSON": B64URL.encode(client_data),
                "authenticatorData": B64URL.encode(auth_data),
                "signature": B64URL.encode(signature.as_ref()),
                "userHandle": credential.user_handle,
            }),
        )
    }
}

/// What `credential.toJSON()` gives for a platform credential with this id and response.
fn to_json(id: &[u8], response: Value) -> Value {
    let id = B64URL.encode(id);
    json!({
        "id": id,
        "rawId": id,
        "type": "public-key",
        "response": response,
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    })
}
