import { EXIT, runCli } from "./index.js";

// A reader that went away (`persist-kit export | head`) ends the program as an error of its own
// kind, with the usage-and-connection status, never as a crash.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(EXIT.error);
});

process.exitCode = await runCli(process.argv.slice(2));
