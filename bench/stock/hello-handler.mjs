// The hello function as plain JavaScript, for the process- and worker-per-request baselines.
export function hello(url) {
  const u = new URL(url);
  const name = u.searchParams.get("name") ?? "world";
  return { type: "application/json", body: JSON.stringify({ greeting: `Hello, ${name}!`, path: u.pathname }) };
}

export function tiny() {
  return { type: "text/plain", body: "tiny" };
}
