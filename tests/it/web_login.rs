//! `examples/web_login.rs` end to end: the example binary in emulator mode, driven like a browser
//! (cookies and redirects by hand): log in, see the profile, refresh, log out.

use axum::http::StatusCode;

use crate::support::{start_example, Example};

/// Starts the example in emulator mode and returns its base URL.
fn start() -> (Example, String) {
    start_example("web_login", &[])
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

/// `GET /login`: the session cookie it sets, and the redirect to LINE's authorization page.
async fn begin_login(browser: &reqwest::Client, base: &str) -> (String, String) {
    let login = browser.get(format!("{base}/login")).send().await.unwrap();
    assert!(login.status().is_redirection());
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    (cookie, location(&login))
}

#[tokio::test]
async fn log_in_see_the_profile_refresh_and_log_out() {
    let (_example, base) = start();
    let browser = browser();

    // Log in: a session cookie, then LINE's authorization page, which consents at once.
    let (cookie, authorize_url) = begin_login(&browser, &base).await;
    let authorize = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(authorize.status(), StatusCode::FOUND);
    let callback = browser
        .get(location(&authorize))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        callback.status().is_redirection(),
        "{}",
        callback.text().await.unwrap()
    );

    let home = |cookie: String| {
        let (browser, base) = (browser.clone(), base.clone());
        async move {
            let page = browser
                .get(format!("{base}/"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            page.text().await.unwrap()
        }
    };
    let page = home(cookie.clone()).await;
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
        home(cookie.clone()).await.contains("Hello, Brown"),
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
        home(cookie).await.contains("Log in with LINE"),
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
