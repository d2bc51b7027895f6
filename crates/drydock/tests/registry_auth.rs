//! htpasswd basic authentication and read-only anonymous pull.

mod registry_support;

use std::process::Command;

use registry_support::*;
use reqwest::StatusCode;

fn htpasswd_file(dir: &std::path::Path) -> std::path::PathBuf {
    require_tool("htpasswd");
    let path = dir.join("htpasswd");
    let alice = format!("alice:{}\n", bcrypt::hash("wonderland", 4).unwrap());
    let bob = Command::new("htpasswd")
        .args(["-nbB", "bob", "builder"])
        .output()
        .unwrap();
    assert!(bob.status.success());
    std::fs::write(
        &path,
        format!("{alice}{}", String::from_utf8(bob.stdout).unwrap().trim()),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn credentials_are_required_for_everything() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd_file(dir.path());
    let server = Server::start(&["--htpasswd", file.to_str().unwrap()]);
    let client = client();

    let anonymous = client.get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&anonymous, "www-authenticate"),
        "Basic realm=\"drydock\""
    );
    assert_eq!(error_code(anonymous).await, "UNAUTHORIZED");
    for (user, password) in [
        ("alice", "wrong"),
        ("mallory", "wonderland"),
        ("bob", "wonderland"),
    ] {
        let denied = client
            .get(server.url("/v2/"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(
            denied.status(),
            StatusCode::UNAUTHORIZED,
            "{user}:{password}"
        );
    }
    for (user, password) in [("alice", "wonderland"), ("bob", "builder")] {
        let allowed = client
            .get(server.url("/v2/"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), StatusCode::OK, "{user}");
    }
    let digest = sha256(b"authenticated");
    let push = client
        .post(server.url(&format!("/v2/private/blobs/uploads/?digest={digest}")))
        .basic_auth("alice", Some("wonderland"))
        .body("authenticated")
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), StatusCode::CREATED);
    let anonymous_pull = client
        .get(server.url(&format!("/v2/private/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_pull.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_pull_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd_file(dir.path());
    let server = Server::start(&["--htpasswd", file.to_str().unwrap(), "--anonymous-pull"]);
    let client = client();
    let digest = sha256(b"public");
    let push = client
        .post(server.url(&format!("/v2/public/blobs/uploads/?digest={digest}")))
        .basic_auth("bob", Some("builder"))
        .body("public")
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), StatusCode::CREATED);

    let pull = client
        .get(server.url(&format!("/v2/public/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pull.status(), StatusCode::OK);
    assert_eq!(pull.bytes().await.unwrap().as_ref(), b"public");

    let write = client
        .post(server.url("/v2/public/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(write).await, "UNAUTHORIZED");
    let delete = client
        .delete(server.url(&format!("/v2/public/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::UNAUTHORIZED);
    let wrong = client
        .get(server.url(&format!("/v2/public/blobs/{digest}")))
        .basic_auth("bob", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}
