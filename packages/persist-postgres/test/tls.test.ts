// PostgreSQL over TLS on a private server that refuses connections without it, with a
// certificate authority made by the test: sslmode=verify-full with the right authority connects,
// another authority is refused with an error naming the certificate.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertRoundTripThenClose, makeSignalRow } from "@persist-kit/contract";
import { PersistError } from "@persist-kit/core";
import { makeTestCertificates, type TestCertificates } from "@persist-kit/tools-test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres } from "../src/index.js";
import { PrivatePostgres } from "./private-postgres.js";

describe("PostgreSQL over TLS", () => {
  let certificates: TestCertificates;
  let certDir: string;
  let server: PrivatePostgres;
  const urlTrusting = (caFile: string) => `${server.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), "persist-postgres-tls-"));
    certificates = makeTestCertificates(certDir);
    server = await PrivatePostgres.start({
      tls: { certFile: certificates.certFile, keyFile: certificates.keyFile },
      hbaRules: ["hostssl all all 127.0.0.1/32 trust", "hostnossl all all 127.0.0.1/32 reject"],
    });
  });

  afterAll(async () => {
    await server?.destroy();
    rmSync(certDir, { recursive: true, force: true });
  });

  it("writes, reads and deletes with sslmode=verify-full and the test's certificate authority", async () => {
    await assertRoundTripThenClose(new PersistPostgres({ connectionString: urlTrusting(certificates.caFile) }), "tls");
  });

  it("the server refuses a connection without TLS (what the test above relies on)", async () => {
    const persist = new PersistPostgres({
      connectionString: `${server.url}?sslmode=disable`,
      connectionTimeoutMillis: 3_000,
    });
    try {
      const error = await persist.readSignalData("BTC/USDT", "tls").catch((caught) => caught);
      expect(error).toBeInstanceOf(PersistError);
      expect(error.message).toMatch(/no encryption|pg_hba/);
    } finally {
      await persist.close();
    }
  });

  it("a server whose certificate another authority signed is refused in time, the error naming the certificate", async () => {
    const persist = new PersistPostgres({
      connectionString: urlTrusting(certificates.otherCaFile),
      connectionTimeoutMillis: 3_000,
    });
    try {
      const started = performance.now();
      const error = await persist.writeSignalData("BTC/USDT", "tls", makeSignalRow(1)).catch((caught) => caught);
      expect(performance.now() - started).toBeLessThan(6_000);
      expect(error).toBeInstanceOf(PersistError);
      expect(error.outcome).toBe("not-applied");
      expect(error.message).toMatch(/certificate/i);
    } finally {
      await persist.close();
    }
  });
});
