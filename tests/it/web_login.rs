//! `examples/web_login.rs` end to end: the example binary in emulator mode, driven like a browser
//! (cookies and redirects by hand): log in, see the profile, refresh, log out.

use axum::http::StatusCode;

use crate::support::{start_example, Example};

/// Starts the example in emulator mode and returns its base URL.
fn start() -> (Example, String) {
    start_example("web_login", &[])
}

/// Starts the example configured for the LINE `line` (a stand-in: the emulator run apart), with
/// this channel and secret.
fn start_against(
    line: &line_auth_emulator::LineEmulator,
    channel_id: &str,
    secret: &str,
) -> (Example, String) {
    start_example(
        "web_login",
        &[
            ("LINE_CHANNEL_ID", channel_id),
            ("LINE_CHANNEL_SECRET", secret),
            ("LINE_API_BASE", &line.base_url()),
        ],
    )
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The `session=…` pair a response's `Set-Cookie` sets.
fn session_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// `GET /login`: the session cookie it sets, and the redirect to LINE's authorization page.
async fn begin_login(browser: &reqwest::Client, base: &str) -> (String, String) {
    let login = browser.get(format!("{base}/login")).send().await.unwrap();
    assert!(login.status().is_redirection());
    (session_cookie(&login), location(&login))
}

/// Finishes the sign-in `/login` began (its cookie and authorization URL) on LINE's page, which
/// consents at once; the callback's answer, a redirect.
async fn finish_sign_in(
    browser: &reqwest::Client,
    cookie: &str,
    authorize_url: String,
) -> reqwest::Response {
    let authorize = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(authorize.status(), StatusCode::FOUND);
    let callback = browser
        .get(location(&authorize))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert!(callback.status().is_redirection(), "{}", callback.status());
    callback
}

/// Signs in from `/login`: its cookie, and the callback's answer.
async fn sign_in(browser: &reqwest::Client, base: &str) -> (String, reqwest::Response) {
    let (cookie, authorize_url) = begin_login(browser, base).await;
    let callback = finish_sign_in(browser, &cookie, authorize_url).await;
    (cookie, callback)
}

/// The home page as the browser holding `cookie` sees it.
async fn home_page(browser: &reqwest::Client, base: &str, cookie: &str) -> String {
    let page = browser
        .get(format!("{base}/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    page.text().await.unwrap()
}

#[tokio::test]
async fn log_in_see_the_profile_refresh_and_log_out() {
    let (_example, base) = start();
    let browser = browser();

    // Log in: a session cookie, then LINE's authorization page, which consents at once.
    let (_, callback) = sign_in(&browser, &base).await;
    let cookie = session_cookie(&callback);

    let page = home_page(&browser, &base, &cookie).await;
    assert!(page.contains("Hello, Brown"), "{page}");
    assert!(page.contains("U4af4980629aabbccddeeff0011223344"), "{page}");

    let refresh = browser
        .post(format!("{base}/refresh"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&refresh), "/");
    assert!(
        home_page(&browser, &base, &cookie)
            .await
            .contains("Hello, Brown"),
        "still signed in after refresh"
    );

    let logout = browser
        .post(format!("{base}/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(logout.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert!(
        home_page(&browser, &base, &cookie)
            .await
            .contains("Log in with LINE"),
        "the session is gone"
    );
}

#[tokio::test]
async fn a_callback_with_the_wrong_state_is_refused() {
    let (_example, base) = start();
    let browser = browser();
    let (cookie, _) = begin_login(&browser, &base).await;

    let forged = browser
        .get(format!("{base}/callback?code=anything&state=forged"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(forged
        .text()
        .await
        .unwrap()
        .contains("state does not match"));
}

/// Signing in renews the session (OWASP: a new session ID at sign-in): a cookie planted before
/// the sign-in, say by an attacker who started `/login` and passed the browser its cookie, does
/// not become the signed-in session.
#[tokio::test]
async fn signing_in_renews_the_session_cookie() {
    let (_example, base) = start();
    let browser = browser();

    let (before, callback) = sign_in(&browser, &base).await;

    let after = session_cookie(&callback);
    assert_ne!(after, before);
    assert!(home_page(&browser, &base, &after)
        .await
        .contains("Hello, Brown"));
    assert!(
        home_page(&browser, &base, &before)
            .await
            .contains("Log in with LINE"),
        "the cookie from /login is not signed in"
    );
}

/// The session cookie is `Secure` when the app is served over HTTPS (`PUBLIC_URL`), and not on
/// plain-HTTP loopback, where a browser would not send it back.
#[tokio::test]
async fn the_session_cookie_is_secure_behind_an_https_public_url() {
    let browser = browser();
    let set_cookie = |base: String| {
        let browser = browser.clone();
        async move {
            let login = browser.get(format!("{base}/login")).send().await.unwrap();
            login.headers()["set-cookie"].to_str().unwrap().to_owned()
        }
    };
    let (_plain, base) = start();
    assert!(!set_cookie(base).await.contains("Secure"));

    let (_behind_tls, base) = start_example("web_login", &[("PUBLIC_URL", "https://app.example")]);
    let cookie = set_cookie(base).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

/// Sign-ins begun and never finished are bounded: with 1,000 under way, `/login` answers 503
/// instead of growing the app's memory without end; one under way still finishes.
#[tokio::test]
async fn sign_ins_under_way_are_bounded() {
    let (_example, base) = start();
    let browser = browser();
    let (first_cookie, first_authorize_url) = begin_login(&browser, &base).await;
    for _ in 1..1_000 {
        let login = browser.get(format!("{base}/login")).send().await.unwrap();
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
    }

    let login = browser.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.headers().get("set-cookie").is_none());

    let callback = finish_sign_in(&browser, &first_cookie, first_authorize_url).await;
    let signed_in = session_cookie(&callback);
    assert!(home_page(&browser, &base, &signed_in)
        .await
        .contains("Hello, Brown"));
}

/// Configured for a LINE of the user's own (`LINE_API_BASE`: a stand-in, the emulator run
/// apart), the whole sign-in goes there, the authorization page included; a blank
/// `LINE_CHANNEL_ID` is unset (demo mode), as the server example reads it.
#[tokio::test]
async fn pointed_at_another_line_the_sign_in_goes_there_whole() {
    let line = line_auth_emulator::LineEmulator::start().await.unwrap();
    line.register_channel("1234567890", "its-secret");
    line.sign_in_as(line_auth_emulator::EmulatedUser::new(
        "U0123456789abcdef0123456789abcdef",
        "Cony",
    ));
    // Padded as a `.env` file may leave them: read trimmed, as `LineAuthConfig::from_env` does.
    let (_example, base) = start_against(&line, " 1234567890 ", "its-secret ");
    let browser = browser();
    let (cookie, authorize_url) = begin_login(&browser, &base).await;
    assert!(
        authorize_url.starts_with(&format!("{}/oauth2/v2.1/authorize?", line.base_url())),
        "{authorize_url}"
    );
    let callback = finish_sign_in(&browser, &cookie, authorize_url).await;
    let cookie = session_cookie(&callback);
    let page = home_page(&browser, &base, &cookie).await;
    assert!(page.contains("Hello, Cony"), "{page}");

    // Logging out revokes the access token (the documented form) and the refresh token (the
    // form LINE's SDKs use, which takes the access tokens with it where LINE supports it).
    browser
        .post(format!("{base}/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(line.calls().revoke, 2);

    let (_blank, base) = start_example("web_login", &[("LINE_CHANNEL_ID", " ")]);
    let (_, callback) = sign_in(&browser, &base).await;
    let page = home_page(&browser, &base, &session_cookie(&callback)).await;
    assert!(page.contains("Hello, Brown"), "the demo user: {page}");
}

/// LINE busy at a refresh: the page says to try again, as a 503 with LINE's `Retry-After` (the
/// crate's own answer when LINE cannot be reached), not a 502.
#[tokio::test]
async fn a_refresh_while_line_is_rate_limiting_is_503_with_lines_retry_after() {
    use line_auth_emulator::{Endpoint, Fault};
    let line = line_auth_emulator::LineEmulator::start().await.unwrap();
    line.register_channel("1234567890", "its-secret");
    let (_example, base) = start_against(&line, "1234567890", "its-secret");
    let browser = browser();
    let (cookie, authorize_url) = begin_login(&browser, &base).await;
    let cookie = session_cookie(&finish_sign_in(&browser, &cookie, authorize_url).await);
    line.inject(
        Endpoint::Token,
        Fault::RateLimited {
            retry_after: std::time::Duration::from_secs(7),
        },
    );

    let refresh = browser
        .post(format!("{base}/refresh"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(refresh.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refresh.headers()["retry-after"], "7");
}
