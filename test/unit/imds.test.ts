/**
 * The IMDSv2 client's retries (lib/imds.ts), against a metadata service on
 * a loopback port that fails on purpose. Its token renewal and a real
 * instance's metadata service are in test/fleet/interruption.test.ts.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it, type TestContext } from "node:test";

import { ExternalServiceError } from "../../lib/errors.js";
import { ImdsClient, TOKEN_PATH } from "../../lib/imds.js";

/** A metadata service whose first `failures` answers are 503s. */
async function flakyImds(t: TestContext, failures: number) {
  const seen: string[] = [];
  const server = createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`);
    if (seen.length <= failures) {
      response.writeHead(503).end();
    } else if (request.method === "PUT" && request.url === TOKEN_PATH) {
      response.end("token-1");
    } else if (request.headers["x-aws-ec2-metadata-token"] !== "token-1") {
      response.writeHead(401).end();
    } else if (request.url === "/latest/meta-data/instance-id") {
      response.end("i-0123");
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, seen };
}

describe("the IMDSv2 client", () => {
  it("with attempts, tries again after a 5xx, as a boot does", async (t) => {
    const imds = await flakyImds(t, 2);
    const client = new ImdsClient({ endpoint: imds.endpoint, attempts: 3 });
    assert.equal(await client.get("/latest/meta-data/instance-id"), "i-0123");
    assert.equal(await client.get("/latest/meta-data/nothing"), undefined);
    assert.deepEqual(imds.seen, [
      `PUT ${TOKEN_PATH}`,
      `PUT ${TOKEN_PATH}`,
      `PUT ${TOKEN_PATH}`,
      "GET /latest/meta-data/instance-id",
      "GET /latest/meta-data/nothing",
    ]);
  });

  it("without, says at once that the service did not answer, and what to check", async (t) => {
    const imds = await flakyImds(t, 1);
    const client = new ImdsClient({ endpoint: imds.endpoint });
    await assert.rejects(
      client.get("/latest/meta-data/instance-id"),
      (e: unknown) =>
        e instanceof ExternalServiceError &&
        e.fault === "transient" &&
        e.message.includes(
          `the instance metadata service at ${imds.endpoint} did not answer PUT ${TOKEN_PATH} (HTTP 503)`,
        ) &&
        /HttpPutResponseHopLimit/.test(e.suggestion ?? ""),
    );
  });
});
