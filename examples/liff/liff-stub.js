// A tiny stand-in for LINE's `liff` object, for running the page outside LINE against the
// example server's embedded emulator. It implements only what app.js uses. With a LIFF ID the
// real SDK is loaded instead (see app.js).
(function () {
  const KEY = "line-auth-demo-token";
  window.liffStub = {
    async init() {
      if (!sessionStorage.getItem(KEY)) {
        // Only the example server in demo mode (no LINE_CHANNEL_ID) serves this.
        const response = await fetch("/liff/demo-token");
        if (!response.ok) throw new Error("no demo token: is the server in demo mode?");
        sessionStorage.setItem(KEY, (await response.text()).trim());
      }
    },
    isLoggedIn() {
      return sessionStorage.getItem(KEY) !== null;
    },
    getAccessToken() {
      return sessionStorage.getItem(KEY);
    },
    login() {
      // `init` always gets a token in demo mode, so the page never asks.
      throw new Error("no demo token: is the server in demo mode?");
    },
    logout() {
      sessionStorage.removeItem(KEY);
    },
  };
})();
