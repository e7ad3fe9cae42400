// The LIFF page end to end in a real browser: examples/server.rs in demo mode (its embedded
// emulator stands in for LINE), Debian's Chromium driven by playwright-core (no browser download).
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
let server;
let base;
let browser;

before(async () => {
  // Demo mode: no LINE_CHANNEL_ID, so the server runs its own emulator.
  const { LINE_CHANNEL_ID, ...env } = process.env;
  server = spawn(serverPath, [], {
    env: { ...env, LISTEN_ADDR: "127.0.0.1:0", RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  base = await new Promise((resolve, reject) => {
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
  server?.kill();
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
          init: async () => {},
          isLoggedIn: () => ${JSON.stringify(loggedIn)},
          login: () => { window.liffCalls.push("login"); },
          logout: () => { window.liffCalls.push("logout"); },
          getAccessToken: () => ${loggedIn ? JSON.stringify(token) : "null"},
        };`,
    }),
  );
}

test("outside LINE, not yet logged in, the page sends the user to LINE Login and calls no API", async () => {
  const page = await browser.newPage();
  await withFakeLiffSdk(page, { loggedIn: false });
  const apiCalls = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.startsWith("/api/")) {
      apiCalls.push(`${request.method()} ${request.url()} ${request.headers().authorization}`);
    }
  });

  await page.goto(`${base}/liff/?liffId=1234567890-AbcdEfgh`);

  await page.waitForFunction(() => window.liffCalls?.includes("login"), null, { timeout: 15000 });
  // What a redirect would have cut short, given a moment to happen if it is going to.
  await page.waitForTimeout(500);
  assert.deepEqual(apiCalls, []);
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

  assert.deepEqual(await page.evaluate(() => window.liffCalls), ["logout"]);
  assert.match(await page.locator("#error").textContent(), /^401: .*revoked/);
});
