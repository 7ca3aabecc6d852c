// MongoDB's tls options against a private FerretDB with a TLS listener and a certificate
// authority made by the test: the right authority connects, another one is refused in time with
// an error naming the certificate.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertRoundTripThenClose, makeSignalRow } from "@persist-kit/contract";
import { BackendUnavailableError } from "@persist-kit/core";
import { makeTestCertificates, type TestCertificates } from "@persist-kit/tools-test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistMongo } from "../src/index.js";
import { PrivateFerretDb } from "./private-ferretdb.js";

describe("MongoDB over TLS", () => {
  let certificates: TestCertificates;
  let certDir: string;
  let server: PrivateFerretDb;
  const urlTrusting = (caFile: string) => `${server.tlsUrl}?tls=true&tlsCAFile=${encodeURIComponent(caFile)}`;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), "persist-mongo-tls-"));
    certificates = makeTestCertificates(certDir);
    server = await PrivateFerretDb.start({ certFile: certificates.certFile, keyFile: certificates.keyFile });
  });

  afterAll(async () => {
    await server?.destroy();
    rmSync(certDir, { recursive: true, force: true });
  });

  it("writes, reads and deletes with tls=true and the test's certificate authority", async () => {
    await assertRoundTripThenClose(new PersistMongo(urlTrusting(certificates.caFile)), "tls");
  });

  it("a server whose certificate another authority signed is refused in time, the error naming the certificate", async () => {
    const persist = new PersistMongo(urlTrusting(certificates.otherCaFile), { serverSelectionTimeoutMS: 2_000 });
    try {
      const started = performance.now();
      const error = await persist.writeSignalData("BTC/USDT", "tls", makeSignalRow(1)).catch((caught) => caught);
      expect(performance.now() - started).toBeLessThan(6_000);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.outcome).toBe("not-applied");
      expect(error.message).toMatch(/certificate/i);
    } finally {
      await persist.close();
    }
  });
});
