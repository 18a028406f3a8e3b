// The vaccinations app's sign-in, with its own client stack: Auth.js (@auth/core 0.41.2) on oauth4webapi 3.8.5,
// configured as the app configures its "nhs-login" provider (src/app/api/auth/[...nextauth]/provider.ts), the app
// itself played in process by Auth.js's Auth() and the simulator reached over HTTP.
//
//   BASE=http://127.0.0.1:PORT CLIENT_ID=... PRIVATE_KEY="$(cat key.pem)" MODE=fake|real node signin.mjs
//
// MODE=fake is the app pointed at a fake (checks ["state"]: no nonce sent, and a token with one is refused);
// MODE=real its other environments (checks ["state", "nonce"]). NHS_NUMBER picks the patient (X-NHS-Number),
// TEST_ERROR asks the fake for an error redirect (X-Test-Oauth-Error). Prints one JSON line: what happened.
import { Auth } from "@auth/core";
import { createPrivateKey, webcrypto } from "node:crypto";

const base = process.env.BASE;
const clientId = process.env.CLIENT_ID;
const mode = process.env.MODE ?? "fake";
const app = "http://localhost:3000";
const nhsLoginUrl = new URL(base); // the app's NHS_LOGIN_URL: .href adds the trailing slash

// The app imports its PKCS8 key as RSASSA-PKCS1-v1_5 / SHA-512, so its client assertion is RS512.
const der = createPrivateKey(process.env.PRIVATE_KEY).export({ type: "pkcs8", format: "der" });
const clientPrivateKey = await webcrypto.subtle.importKey(
  "pkcs8", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }, false, ["sign"]);

// What went over the wire to the simulator, to check the client assertion the app sends.
const sent = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input.url;
  const body = init?.body instanceof URLSearchParams ? init.body.toString() : init?.body;
  sent.push({ url: url.toString(), method: init?.method ?? "GET", body: typeof body === "string" ? body : null });
  return realFetch(input, init);
};

let profile = null;
const config = {
  secret: "a-test-secret-of-at-least-thirty-two-characters",
  trustHost: true,
  basePath: "/api/auth",
  session: { strategy: "jwt" },
  providers: [
    {
      id: "nhs-login",
      name: "NHS Login",
      type: "oidc",
      issuer: nhsLoginUrl.href,
      clientId,
      authorization: { params: { scope: "openid profile", prompt: "none" } },
      token: { clientPrivateKey },
      client: { token_endpoint_auth_method: "private_key_jwt", userinfo_signed_response_alg: "RS512" },
      idToken: true,
      checks: mode === "fake" ? ["state"] : ["state", "nonce"],
    },
  ],
  callbacks: {
    // The app's signIn callback (src/utils/auth/callbacks/is-valid-signin.ts).
    signIn({ account, profile: p }) {
      profile = p;
      return (
        new URL(p.iss).href === nhsLoginUrl.href &&
        p.aud === clientId &&
        p.identity_proofing_level === "P9" &&
        ["P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm"].includes(p.vot)
      );
    },
  },
  logger: { error() {}, warn() {}, debug() {} },
};

const jar = new Map();
function keep(response) {
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(";");
    const at = pair.indexOf("=");
    jar.set(pair.slice(0, at), pair.slice(at + 1));
  }
}
const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");

// 1. The app's /api/sso: signIn("nhs-login", {redirect: false}, {asserted_login_identity}).
let response = await Auth(new Request(`${app}/api/auth/csrf`), config);
keep(response);
const { csrfToken } = await response.json();
const assertedLoginIdentity = "eyJhbGciOiJSUzUxMiJ9.eyJjb2RlIjoiand0LWlkIn0.c2ln"; // as the NHS App hands it over
response = await Auth(
  new Request(`${app}/api/auth/signin/nhs-login?asserted_login_identity=${assertedLoginIdentity}`, {
    method: "POST",
    headers: { cookie: cookies(), "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrfToken, callbackUrl: `${app}/` }),
  }),
  config,
);
keep(response);
const authorizeUrl = response.headers.get("location");
const authorizeParams = Object.fromEntries(new URL(authorizeUrl).searchParams);

// 2. The browser follows the redirect to the provider, which redirects back to the app's callback.
const headers = { "X-NHS-Number": process.env.NHS_NUMBER ?? "9686368973" };
if (process.env.TEST_ERROR) headers["X-Test-Oauth-Error"] = process.env.TEST_ERROR;
const provider = await realFetch(authorizeUrl, { redirect: "manual", headers });
const callbackUrl = provider.headers.get("location");

// 3. The callback: Auth.js validates the response, exchanges the code, validates the ID token, runs signIn.
response = await Auth(new Request(callbackUrl, { headers: { cookie: cookies() } }), config);
keep(response);

const tokenRequest = sent.find((r) => r.url.endsWith("/token"));
const form = tokenRequest ? Object.fromEntries(new URLSearchParams(tokenRequest.body)) : null;
const decode = (part) => JSON.parse(Buffer.from(part, "base64url").toString());
const [header, payload] = form?.client_assertion ? form.client_assertion.split(".").slice(0, 2).map(decode) : [null, null];

console.log(JSON.stringify({
  authorizeStatus: provider.status,
  authorizeParams,
  callbackParams: callbackUrl ? Object.fromEntries(new URL(callbackUrl).searchParams) : null,
  discoveryRequests: sent.filter((r) => r.url.includes("/.well-known/openid-configuration")).length,
  tokenForm: form ? Object.keys(form).sort() : null,
  assertionHeader: header,
  assertionPayload: payload,
  finalStatus: response.status,
  finalLocation: response.headers.get("location"),
  sessionCookie: [...jar.keys()].some((k) => k.includes("session-token")),
  profile,
}));
