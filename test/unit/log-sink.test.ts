import { describe, expect, it } from "vitest";
import { LogSink } from "../../host/src/capabilities/log-sink.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("a guest's log within one invocation", () => {
  it("splits stream output into lines and keeps an unfinished line until drained", () => {
    const sink = new LogSink(4096);
    sink.write("stdout", bytes("one\ntw"));
    sink.write("stdout", bytes("o\nthree"));
    sink.line("info", "from ctx");
    expect(sink.drain()).toEqual({
      lines: [
        { stream: "stdout", message: "one" },
        { stream: "stdout", message: "two" },
        { stream: "info", message: "from ctx" },
        { stream: "stdout", message: "three" },
      ],
      dropped: 0,
    });
    expect(sink.drain()).toEqual({ lines: [], dropped: 0 });
  });

  it("bounds a flood of empty lines, not only of bytes", () => {
    const sink = new LogSink(64 * 1024);
    sink.write("stdout", bytes("\n".repeat(1_000_000)));
    const { lines, dropped } = sink.drain();
    expect(lines.length).toBeLessThanOrEqual(1000);
    expect(dropped).toBeGreaterThan(0);
  });

  it("cuts text that never ends its line instead of holding it", () => {
    const sink = new LogSink(1024);
    for (let i = 0; i < 100; i++) sink.write("stderr", bytes("x".repeat(500)));
    const { lines } = sink.drain();
    expect(lines.reduce((n, l) => n + l.message.length, 0)).toBeLessThanOrEqual(1024);
  });
});
