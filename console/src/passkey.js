// Passkey ceremonies for the console (src/passkey.rs). The server sends the WebAuthn options
// as JSON with base64url strings; the browser API wants ArrayBuffers, and answers with
// ArrayBuffers that go back as base64url. Written out by hand rather than with
// PublicKeyCredential.parseCreationOptionsFromJSON / toJSON, which not every engine has yet.

const toBytes = (b64url) => {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '==='.slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
};
const toB64url = (buffer) => {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};
const withIds = (list) => (list || []).map((c) => ({ ...c, id: toBytes(c.id) }));
/** A credential as the server reads it (PublicKeyCredential.toJSON's shape), `response`
 *  being the ceremony's own fields. */
const asJson = (credential, response) => JSON.stringify({
  id: credential.id,
  rawId: toB64url(credential.rawId),
  type: credential.type,
  authenticatorAttachment: credential.authenticatorAttachment || null,
  clientExtensionResults: credential.getClientExtensionResults(),
  response,
});

export function passkeysSupported() {
  return typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
}

/** Registers a new passkey: `optionsJson` is the server's creation options. */
export async function createPasskey(optionsJson) {
  const o = JSON.parse(optionsJson);
  const publicKey = {
    ...o,
    challenge: toBytes(o.challenge),
    user: { ...o.user, id: toBytes(o.user.id) },
    excludeCredentials: withIds(o.excludeCredentials),
  };
  const credential = await navigator.credentials.create({ publicKey });
  const r = credential.response;
  return asJson(credential, {
    clientDataJSON: toB64url(r.clientDataJSON),
    attestationObject: toB64url(r.attestationObject),
    transports: typeof r.getTransports === 'function' ? r.getTransports() : [],
  });
}

/** Signs in with a passkey: `optionsJson` is the server's request options. */
export async function getPasskey(optionsJson) {
  const o = JSON.parse(optionsJson);
  const publicKey = {
    ...o,
    challenge: toBytes(o.challenge),
    allowCredentials: withIds(o.allowCredentials),
  };
  const credential = await navigator.credentials.get({ publicKey });
  const r = credential.response;
  return asJson(credential, {
    clientDataJSON: toB64url(r.clientDataJSON),
    authenticatorData: toB64url(r.authenticatorData),
    signature: toB64url(r.signature),
    userHandle: r.userHandle ? toB64url(r.userHandle) : null,
  });
}
