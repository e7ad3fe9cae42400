// The LIFF page end to end in a real browser: examples/server.rs, mostly in demo mode (its
// embedded emulator stands in for LINE; LINE's LIFF SDK is faked where a LIFF ID is set), Debian's
// Chromium driven by playwright-core (no browser download).
//
//   cargo build --example server && (cd tests/browser && npm ci && npm test)
//
// CHROMIUM (default /usr/bin/chromium) and SERVER (default target/debug/examples/server) override.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const serverPath = process.env.SERVER ?? path.join(root, "target/debug/examples/server");
const servers = [];
let base;
let browser;

// Starts the example server with `env` over this process's environment (without
// LINE_CHANNEL_ID or LIFF_ID unless given: demo mode, its own emulator, the stand-in for LIFF)
// and resolves to its base URL.
async function startServer(env = {}) {
  const { LINE_CHANNEL_ID, LIFF_ID, ...inherited } = process.env;
  const server = spawn(serverPath, [], {
    env: { ...inherited, LISTEN_ADDR: "127.0.0.1:0", RUST_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  servers.push(server);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start")), 20000);
    const lines = createInterface({ input: server.stdout });
    lines.on("line", (line) => {
      const match = line.match(/^listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    server.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
}

before(async () => {
  base = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  for (const server of servers) server.kill();
});

test("the LIFF page shows the profile, then the error once the token is revoked", async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/liff/`);

  await page.locator("#name").waitFor({ state: "visible", timeout: 15000 });
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
  assert.equal(await page.locator("#name").textContent(), "Brown");
  assert.equal(await page.locator("#user-id").textContent(), "U4af4980629aabbccddeeff0011223344");
  assert.match(await page.locator("#picture").getAttribute("src"), /^data:image\/svg\+xml,/);
  assert.equal(await page.locator("#status").textContent(), "Signed in");

  await page.locator("#logout").click();
  await page.locator("#error").waitFor({ state: "visible", timeout: 15000 });
  const error = await page.locator("#error").textContent();
  assert.match(error, /^401: .*revoked/);
  assert.equal(await page.locator("#profile").isHidden(), true);
});

test("without a token the API refuses, and the page says so", async () => {
  const page = await browser.newPage();
  // The page's call reaches the real API with its Authorization header taken off, as if LIFF
  // had handed the page no token.
  const refusals = [];
  await page.route("**/api/me", async (route) => {
    const { authorization, ...headers } = route.request().headers();
    assert.ok(authorization, "the page sent its token; the test takes it off");
    const response = await route.fetch({ headers });
    refusals.push({ status: response.status(), challenge: response.headers()["www-authenticate"] });
    await route.fulfill({ response });
  });

  await page.goto(`${base}/liff/`);

  await page.locator("#error").waitFor({ state: "visible", timeout: 15000 });
  assert.deepEqual(refusals, [{ status: 401, challenge: 'Bearer realm="line"' }]);
  assert.equal(await page.locator("#error").textContent(), "401: a LINE access token is required");
  assert.equal(await page.locator("#status").textContent(), "Not signed in");
  assert.equal(await page.locator("#profile").isHidden(), true);
});

// LINE's SDK, faked: the page under a LIFF ID loads it from LINE's CDN, which the test answers.
// `loggedIn` picks what `isLoggedIn()` says; `token` is what `getAccessToken()` hands over. The
// fake records `login()` and `logout()` calls where the test can read them.
async function withFakeLiffSdk(page, { loggedIn, token }) {
  await page.route("https://static.line-scdn.net/liff/edge/2/sdk.js", (route) =>
    route.fulfill({
      contentType: "text/javascript",
      body: `window.liffCalls = [];
        window.liff = {
          init: async (options) => { window.liffCalls.push(["init", options]); },
          isLoggedIn: () => ${JSON.stringify(loggedIn)},
          login: (options) => { window.liffCalls.push(["login", options]); },
          logout: () => { window.liffCalls.push("logout"); },
          getAccessToken: () => ${loggedIn ? JSON.stringify(token) : "null"},
        };`,
    }),
  );
}

// The page's calls to the API, as they happen: it must make none where it has no token.
function apiCallsOf(page) {
  const calls = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.startsWith("/api/")) {
      calls.push(`${request.method()} ${request.url()} ${request.headers().authorization}`);
    }
  });
  return calls;
}

test("outside LINE, not yet logged in, the page sends the user to LINE Login and back", async () => {
  const page = await browser.newPage();
  await withFakeLiffSdk(page, { loggedIn: false });
  const apiCalls = apiCallsOf(page);
  const opened = `${base}/liff/?liffId=1234567890-AbcdEfgh`;

  await page.goto(opened);

  const loggingIn = () => window.liffCalls?.some((call) => call[0] === "login");
  await page.waitForFunction(loggingIn, null, { timeout: 15000 });
  // What a redirect would have cut short, given a moment to happen if it is going to.
  await page.waitForTimeout(500);
  assert.deepEqual(apiCalls, []);
  // Back to this very URL: LINE Login would otherwise return to the endpoint URL as
  // registered, without the page's `?liffId=`.
  assert.deepEqual(await page.evaluate(() => window.liffCalls), [
    ["init", { liffId: "1234567890-AbcdEfgh" }],
    ["login", { redirectUri: opened }],
  ]);
  assert.equal(await page.locator("#status").textContent(), "Signing in with LINE…");
  assert.equal(await page.locator("#error").isHidden(), true);
});

test("logging out tells LIFF too, so the page does not keep the revoked token", async () => {
  const page = await browser.newPage();
  const token = (await (await fetch(`${base}/liff/demo-token`)).text()).trim();
  await withFakeLiffSdk(page, { loggedIn: true, token });

  await page.goto(`${base}/liff/?liffId=1234567890-AbcdEfgh`);
  await page.locator("#name").waitFor({ state: "visible", timeout: 15000 });
  await page.locator("#logout").click();
  await page.locator("#error").waitFor({ state: "visible", timeout: 15000 });

  assert.deepEqual(await page.evaluate(() => window.liffCalls), [
    ["init", { liffId: "1234567890-AbcdEfgh" }],
    "logout",
  ]);
  assert.match(await page.locator("#error").textContent(), /^401: .*revoked/);
});

test("with LIFF_ID set, the page opened as LINE opens it uses LINE's SDK under that ID", async () => {
  // LINE opens the endpoint URL as registered, with no `liffId`; after LINE Login outside LINE
  // it comes back to the same URL with LIFF's own parameters.
  const liffBase = await startServer({ LIFF_ID: "1234567890-AbcdEfgh" });
  for (const opened of [
    "/liff/",
    "/liff?liff.state=%2F",
    "/liff/?code=abc&state=xyz&liffClientId=1234567890-AbcdEfgh&liffRedirectUri=x",
  ]) {
    const page = await browser.newPage();
    const token = (await (await fetch(`${liffBase}/liff/demo-token`)).text()).trim();
    await withFakeLiffSdk(page, { loggedIn: true, token });

    await page.goto(`${liffBase}${opened}`);

    await page.locator("#name").waitFor({ state: "visible", timeout: 15000 });
    assert.equal(await page.locator("#name").textContent(), "Brown", opened);
    assert.deepEqual(
      await page.evaluate(() => window.liffCalls),
      [["init", { liffId: "1234567890-AbcdEfgh" }]],
      opened,
    );
    await page.close();
  }
});

test("outside demo mode with no LIFF ID, the page names the missing setting and calls no API", async () => {
  const productionBase = await startServer({
    LINE_CHANNEL_ID: "1234567890",
    LINE_API_BASE: "http://127.0.0.1:9",
  });
  const page = await browser.newPage();
  const apiCalls = apiCallsOf(page);

  await page.goto(`${productionBase}/liff/`);

  await page.locator("#error").waitFor({ state: "visible", timeout: 15000 });
  assert.match(await page.locator("#error").textContent(), /LIFF_ID/);
  assert.equal(await page.locator("#status").textContent(), "Not signed in");
  assert.deepEqual(apiCalls, []);
});
