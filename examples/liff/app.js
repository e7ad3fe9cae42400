// The LIFF page: get the user's access token from LIFF, call the protected API with it as a
// bearer token, show the profile it returns, or the error.
(async function () {
  const $ = (id) => document.getElementById(id);
  const show = (id, visible) => { $(id).hidden = !visible; };

  // LIFF, initialized: LINE's SDK under the server's LIFF ID (`?liffId=` overrides it), or in
  // demo mode without one, the stand-in.
  async function liffClient() {
    const config = window.LIFF_CONFIG || {};
    const liffId = new URLSearchParams(location.search).get("liffId") || config.liffId;
    if (!liffId) {
      if (!config.demo) {
        throw new Error("no LIFF ID: set LIFF_ID on the server to your LIFF app's ID");
      }
      await window.liffStub.init();
      return window.liffStub;
    }
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "https://static.line-scdn.net/liff/edge/2/sdk.js";
      script.onload = resolve;
      script.onerror = () => reject(new Error("could not load the LIFF SDK"));
      document.head.appendChild(script);
    });
    await window.liff.init({ liffId });
    return window.liff;
  }

  function showError(message) {
    show("profile", false);
    $("error").textContent = message;
    show("error", true);
    $("status").textContent = "Not signed in";
  }

  async function loadProfile(token) {
    const response = await fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(`${response.status}: ${body.error_description || body.error || "request failed"}`);
      return;
    }
    $("name").textContent = body.displayName;
    $("user-id").textContent = body.userId;
    if (body.pictureUrl) $("picture").src = body.pictureUrl;
    show("picture", Boolean(body.pictureUrl));
    show("error", false);
    show("profile", true);
    $("status").textContent = "Signed in";
  }

  try {
    const liff = await liffClient();
    if (!liff.isLoggedIn()) {
      // Outside LINE's browser: LIFF sends the user to LINE Login and back. There is no token
      // until then, so no API is called (it would only carry `Bearer null`).
      $("status").textContent = "Signing in with LINE…";
      // Back to this very page: without it LINE returns to the endpoint URL as registered,
      // and a `?liffId=` given here would be lost.
      liff.login({ redirectUri: location.href });
      return;
    }
    const token = liff.getAccessToken();
    $("logout").addEventListener("click", async () => {
      await fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      // LIFF forgets the token too, so a reload signs in afresh instead of reusing it.
      liff.logout();
      // The same token again: the API now refuses it, and the page shows why.
      await loadProfile(token);
    });
    await loadProfile(token);
  } catch (error) {
    showError(String(error.message || error));
  }
})();
