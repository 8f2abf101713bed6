//! `recheck ledger verify --store URL` on stores written with the real
//! sample windows: a valid chain exits 0 with its entry count; after one
//! payload is rewritten directly in the backend (a redb write, an SQL
//! UPDATE) it exits 1 naming that entry; an unreadable store exits 2.

mod common;
#[path = "common/store_fixture.rs"]
mod store_fixture;

use std::process::{Command, Output};

use store_fixture::{commit_windows, fixture, tamper_postgres, tamper_redb};

fn verify(url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(["ledger", "verify", "--store", url])
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn write_windows(url: &str) {
    let store = recheck::store::open(url).await.unwrap();
    commit_windows(store.as_ref(), fixture(), 3).await;
}

/// Verify before and after `tamper`, which rewrites entry 1 of the store.
async fn valid_then_tampered(url: &str, tamper: impl AsyncFnOnce()) {
    drop(recheck::store::open(url).await.unwrap());
    let empty = verify(url);
    assert_eq!(empty.status.code(), Some(0), "{empty:?}");
    assert_eq!(stdout(&empty).trim(), "ledger valid: 0 entries");

    write_windows(url).await;
    let ok = verify(url);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert!(
        stdout(&ok).starts_with("ledger valid: 3 entries, head index 2 window 3 hash "),
        "{}",
        stdout(&ok)
    );

    tamper().await;
    let bad = verify(url);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let out = stdout(&bad);
    assert!(
        out.starts_with("ledger broken at index 1: payload hashes to "),
        "{out}"
    );
    assert!(out.contains("(payload altered)") && out.contains("(1 entries before it verified)"));
}

#[tokio::test]
async fn embedded_ledger_verify_detects_a_rewritten_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let url = format!("redb://{}", path.display());
    valid_then_tampered(&url, async || tamper_redb(&path, 1)).await;

    // A store that is not there is an error, not an empty ledger, and
    // verifying does not create it.
    let typo = dir.path().join("stroe.redb");
    let missing = verify(&typo.display().to_string());
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
    assert!(!typo.exists());
}

#[tokio::test]
async fn postgres_ledger_verify_detects_an_updated_row() {
    let base = std::env::var("RECHECK_POSTGRES_URI")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let Ok((client, conn)) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await else {
        common::skip(&format!(
            "PostgreSQL not reachable at {base}: set RECHECK_POSTGRES_URI"
        ));
        return;
    };
    tokio::spawn(conn);
    let schema = format!("rc_{}_ledger_cli", std::process::id());
    let url = format!("{base}?schema={schema}");
    valid_then_tampered(&url, async || tamper_postgres(&client, &schema, 1).await).await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
