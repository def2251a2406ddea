// A scanning app in JavaScript, offline: given a medanchor share link
// (`shlink:/…`), the node's pinned Ed25519 key (base64url) and a release
// JWE, it checks the link's kid (RFC 7638 thumbprint, via jose), its
// Ed25519 signature over the payload without `sig` (node:crypto), and
// decrypts the JWE with the key carried in the link (jose compactDecrypt,
// alg dir / enc A256GCM). Prints the decrypted release; exits non-zero on
// any failure.
import { calculateJwkThumbprint, compactDecrypt, base64url } from "jose";
import { createPublicKey, verify } from "node:crypto";

const [content, issuerX, jwe] = process.argv.slice(2);
if (!content || !issuerX || !jwe) {
  console.error("usage: share-link-compat.mjs <shlink:/…> <issuer key x> <jwe>");
  process.exit(2);
}
const payloadB64 = content.slice(content.indexOf("shlink:/") + "shlink:/".length);
const payload = JSON.parse(new TextDecoder().decode(base64url.decode(payloadB64)));

const jwk = { kty: "OKP", crv: "Ed25519", x: issuerX };
const kid = await calculateJwkThumbprint(jwk, "sha256");
if (kid !== payload.kid) throw new Error(`kid ${payload.kid} is not the pinned key's ${kid}`);

const { sig, ...unsigned } = payload;
const signed = Buffer.from(JSON.stringify(unsigned));
const ok = verify(null, signed, createPublicKey({ key: jwk, format: "jwk" }), Buffer.from(base64url.decode(sig)));
if (!ok) throw new Error("the link's signature does not verify");
if (payload.exp * 1000 <= Date.now()) throw new Error("the link expired");

const { plaintext, protectedHeader } = await compactDecrypt(jwe, base64url.decode(payload.key));
if (protectedHeader.alg !== "dir" || protectedHeader.enc !== "A256GCM") throw new Error("unexpected JWE header");
process.stdout.write(new TextDecoder().decode(plaintext));
