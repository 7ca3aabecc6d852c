// rediss:// against a private redis-server with a TLS port and a certificate authority made by
// the test: the right authority connects, another one is refused with an error naming the
// certificate, and a TLS client on a plain port is told so.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertRoundTripThenClose, makeSignalRow } from "@persist-kit/contract";
import { BackendUnavailableError } from "@persist-kit/core";
import { makeTestCertificates, type TestCertificates } from "@persist-kit/tools-test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistRedis } from "../src/index.js";
import { closedPort, type PrivateRedis, startPrivateRedis } from "./helpers.js";

describe("Redis over TLS", () => {
  let certificates: TestCertificates;
  let certDir: string;
  let server: PrivateRedis;
  let tlsPort: number;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), "persist-redis-tls-"));
    certificates = makeTestCertificates(certDir);
    tlsPort = await closedPort();
    server = await startPrivateRedis([
      `tls-port ${tlsPort}`,
      `tls-cert-file ${certificates.certFile}`,
      `tls-key-file ${certificates.keyFile}`,
      `tls-ca-cert-file ${certificates.caFile}`,
      "tls-auth-clients no",
      "appendonly yes",
      "appendfsync always",
    ]);
  });

  afterAll(async () => {
    await server?.destroy();
    rmSync(certDir, { recursive: true, force: true });
  });

  it("writes, reads and deletes through rediss:// with the test's certificate authority", async () => {
    await assertRoundTripThenClose(
      new PersistRedis({
        url: `rediss://127.0.0.1:${tlsPort}`,
        redisOptions: { tls: { ca: readFileSync(certificates.caFile) } },
      }),
      "tls",
    );
  });

  it("a server whose certificate another authority signed is refused in time, the error naming the certificate", async () => {
    const persist = new PersistRedis({
      url: `rediss://127.0.0.1:${tlsPort}`,
      redisOptions: { tls: { ca: readFileSync(certificates.otherCaFile) } },
      timeoutMs: 2_000,
    });
    try {
      const started = performance.now();
      const error = await persist.writeSignalData("BTC/USDT", "tls", makeSignalRow(1)).catch((caught) => caught);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.outcome).toBe("not-applied");
      expect(error.message).toMatch(/self-signed certificate in certificate chain/);
      // It speaks TLS: the hint for a plain port would mislead.
      expect(error.message).not.toMatch(/may not speak TLS/);
    } finally {
      await persist.close();
    }
  });

  it("a TLS client on the plain port is told the server may not speak TLS", async () => {
    const persist = new PersistRedis({
      url: `rediss://127.0.0.1:${server.port}`,
      redisOptions: { tls: { ca: readFileSync(certificates.caFile) } },
      timeoutMs: 1_000,
    });
    try {
      const error = await persist.readSignalData("BTC/USDT", "tls").catch((caught) => caught);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.message).toMatch(/may not speak TLS/);
    } finally {
      await persist.close();
    }
  });
});
