// expectNothingSecret: a password in a message shows; the same word in a stack frame is code.

import { describe, expect, it } from "vitest";
import { expectNothingSecret } from "../src/credentials.js";

const SECRET = { password: "aaaaaaaaaaProperty", core: "aaaaaaaaaa" };

describe("expectNothingSecret", () => {
  it("ignores stack frames, which name code, also inside util.inspect's output", () => {
    const error = new Error("[redis] create: the URL is not shown");
    error.stack = `${error.message}\n    at AsyncProperty.run (file:///x/fast-check.js:1:1)\n    at async asyncRunIt (file:///x.js:2:2)`;
    expect(() => expectNothingSecret(error, [SECRET], "frames")).not.toThrow();
    expect(() =>
      expectNothingSecret({ text: "Error: x\\n    at AsyncProperty.run (file:///x.js:1:1)" }, [SECRET], "escaped"),
    ).not.toThrow();
  });

  it("finds a piece of the password in a message, a cause and a property", () => {
    expect(() => expectNothingSecret(new Error("bad password Property here"), [SECRET], "message")).toThrow(
      /"Property" shows in/,
    );
    const wrapped = new Error("outer", { cause: new Error("inner aaaaaaaaaaProperty") });
    expect(() => expectNothingSecret(wrapped, [SECRET], "cause")).toThrow(/shows in/);
    expect(() => expectNothingSecret({ url: "redis://:aaaaaaaaaaProperty@h" }, [SECRET], "value")).toThrow(/shows in/);
  });
});
