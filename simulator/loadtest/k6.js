// k6 script: the simulator's load-test targets, written in by `simulator targets --format k6`.
//
//   simulator targets --format k6 --base-url http://localhost:9123 > targets.js
//   k6 run --vus 10 --duration 30s targets.js
//   k6 run -e BASE_URL=http://other-host:9123 --vus 10 --iterations 1000 targets.js
//
// Each iteration sends the next target (k6's iteration number across all VUs, so no two VUs send the
// same target within a round: a token target's jti is accepted once; generate at least as many token
// targets as the test sends). Redirects are not followed (a sign-in's 302 is its answer); answers of 400
// and above count in http_req_failed. Requests are grouped by route in the `name` tag.
import { SharedArray } from "k6/data";
import exec from "k6/execution";
import http from "k6/http";

const BASE_URL = __ENV.BASE_URL || "http://localhost:9123";

// [method, path, name, headers, body]; one copy for all the VUs.
const TARGETS = new SharedArray("targets", () => [
  // simulator targets: the targets go here
]);

export function setup() {
  if (TARGETS.length === 0) {
    exec.test.abort("targets.js: no targets");
  }
}

export default function () {
  const [method, path, name, headers, body] = TARGETS[exec.scenario.iterationInTest % TARGETS.length];
  http.request(method, BASE_URL + path, body === undefined ? null : body, {
    headers: headers || {},
    redirects: 0,
    tags: { name },
  });
}
