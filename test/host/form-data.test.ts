/**
 * `request.formData()` inside a function: uploaded files round-trip byte
 * for byte (the engine's own multipart parser turned bytes into decimal
 * text), with their names and types; text fields decode as UTF-8;
 * urlencoded forms still parse; a malformed multipart body fails the
 * function's call with a TypeError, as Web platforms do.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
beforeAll(async () => {
  t = await startTestHost();
  expect((await t.deploy("misbehave")).status).toBe(201);
});
afterAll(() => t?.close());

const everyByte = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)]);

function upload(): FormData {
  const form = new FormData();
  form.append("caption", "héllo ✓ \r\n line two");
  form.append("file", new Blob([everyByte], { type: "application/octet-stream" }), 'every "byte".bin');
  form.append("empty", new Blob([]), "empty.txt");
  form.append("text", new Blob(["plain text\r\n--not-a-boundary\r\n"], { type: "text/plain" }), "notes.txt");
  return form;
}

describe("request.formData() in a function", () => {
  it("gives back an uploaded file's exact bytes, name and type", async () => {
    const answer = await t.fetch("/fn/misbehave/form?part=file", { method: "POST", body: upload() });
    expect(answer.status).toBe(200);
    expect(Buffer.from(await answer.arrayBuffer()).equals(everyByte)).toBe(true);
    expect(answer.headers.get("content-type")).toBe("application/octet-stream");
    expect(decodeURIComponent(answer.headers.get("x-file-name") ?? "")).toBe('every "byte".bin');
    const text = await t.fetch("/fn/misbehave/form?part=text", { method: "POST", body: upload() });
    expect(await text.text()).toBe("plain text\r\n--not-a-boundary\r\n");
  });

  it("lists every entry: text fields as UTF-8 strings, files with their sizes", async () => {
    const answer = await t.fetch("/fn/misbehave/form", { method: "POST", body: upload() });
    expect(await answer.json()).toEqual([
      { name: "caption", value: "héllo ✓ \r\n line two" },
      { name: "file", file: 'every "byte".bin', type: "application/octet-stream", size: everyByte.byteLength },
      { name: "empty", file: "empty.txt", type: "application/octet-stream", size: 0 },
      { name: "text", file: "notes.txt", type: "text/plain", size: 30 },
    ]);
  });

  it("still parses urlencoded forms", async () => {
    const answer = await t.fetch("/fn/misbehave/form", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "a=1&b=%C3%A9t%C3%A9&b=two",
    });
    expect(await answer.json()).toEqual([
      { name: "a", value: "1" },
      { name: "b", value: "été" },
      { name: "b", value: "two" },
    ]);
  });

  it("fails the call with a TypeError on a body that is not valid multipart", async () => {
    const answer = await t.fetch("/fn/misbehave/form", {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=xyz" },
      body: '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nno closing boundary',
    });
    expect(answer.status).toBe(502);
    const { error } = await answer.json();
    expect(error.code).toBe("JOULE_ERR_EXECUTION_FAILED");
    expect(error.message).toMatch(/TypeError: could not parse the body as multipart\/form-data/);
  });
});
