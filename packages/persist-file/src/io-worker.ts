// Entry of the I/O threads started by ./io-pool.ts: one message in, one synchronous sequence of
// system calls, one message out.
import { parentPort } from "node:worker_threads";
import { describeFailure, type IoRequest, runIoRequest } from "./record-jobs.js";

/** A request as it travels to an I/O thread. */
export interface IoMessage {
  id: number;
  request: IoRequest;
}

/** The answer to {@link IoMessage} `id`: a result, or a failure. */
export type IoReply = { id: number; result: unknown } | { id: number; failure: ReturnType<typeof describeFailure> };

const port = parentPort;
if (port === null) throw new Error("io-worker.js runs as a worker thread of @persist-kit/persist-file");

port.on("message", ({ id, request }: IoMessage) => {
  let reply: IoReply;
  try {
    reply = { id, result: runIoRequest(request) };
  } catch (error) {
    reply = { id, failure: describeFailure(error) };
  }
  port.postMessage(reply);
});
