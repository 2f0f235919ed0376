//! Crash safety of the embedded store: a child process writes from 64 concurrent writers and
//! is killed with SIGKILL at a random moment; on reopening, every acknowledged write is there
//! with its value, nothing torn is visible, and the store opens without repair by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kplex_store::{EmbeddedOptions, EmbeddedStore, RangeRequest, Store};
use rand::Rng;

const CYCLES: u32 = 20;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Runs one writer child until a random moment, kills it, returns its acknowledged writes.
fn write_then_kill(
    path: &std::path::Path,
    run: u32,
    kill_after: Duration,
) -> HashMap<String, usize> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kplex"))
        .args([
            "debug",
            "store-writer",
            "--writers",
            "64",
            "--run",
            &run.to_string(),
            "--path",
        ])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), "ready");
    let deadline = Instant::now() + kill_after;
    let mut acked = HashMap::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(5)) {
            record(&mut acked, &line);
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    // Lines printed before the kill: each was acknowledged. A torn last line has no newline
    // and `lines()` may hand it over; `record` ignores what does not parse.
    for line in rx.try_iter() {
        record(&mut acked, &line);
    }
    acked
}

fn record(acked: &mut HashMap<String, usize>, line: &str) {
    let mut parts = line.split(' ');
    if let (Some("ack"), Some(key), Some(len)) = (parts.next(), parts.next(), parts.next())
        && let Ok(len) = len.parse()
    {
        acked.insert(key.to_string(), len);
    }
}

async fn verify(path: &std::path::Path, acked: &HashMap<String, usize>, run: u32) {
    let store = EmbeddedStore::open(EmbeddedOptions::new(path))
        .expect("store opens after SIGKILL without repair by hand");
    for (key, len) in acked {
        let kv = store
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged write {key} lost"));
        assert_eq!(kv.value.len(), *len, "{key} has the wrong value");
    }
    // Every value present, acknowledged or not, is whole.
    let all = store.range(RangeRequest::prefix("/crash/")).await.unwrap();
    for kv in &all.kvs {
        if kv.key.starts_with("/crash/latest/") {
            continue;
        }
        let (sum, payload) = kv.value.split_at(8);
        assert_eq!(
            u64::from_le_bytes(sum.try_into().unwrap()),
            fnv1a(payload),
            "torn value under {}",
            kv.key
        );
    }
    // The per-writer CAS key holds at least the last acknowledged sequence number.
    let mut last_acked: HashMap<&str, u64> = HashMap::new();
    for key in acked.keys() {
        let parts: Vec<&str> = key.split('/').collect(); // ["", "crash", run, writer, seq]
        let seq: u64 = parts[4].parse().unwrap();
        let e = last_acked.entry(parts[3]).or_default();
        *e = (*e).max(seq);
    }
    for (writer, seq) in last_acked {
        let kv = store
            .get(&format!("/crash/latest/{run}/{writer}"))
            .await
            .unwrap()
            .unwrap();
        let stored: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
        assert!(
            stored >= seq,
            "writer {writer}: latest {stored} < acknowledged {seq}"
        );
    }
    // Revisions keep rising after the crash.
    let before = store.status().await.unwrap().revision;
    let after = store
        .put("/crash-check", bytes::Bytes::from_static(b"ok"))
        .await
        .unwrap();
    assert_eq!(after, before + 1);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_and_restart_cycles_lose_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut rng = rand::rng();
    let mut total = 0;
    for run in 0..CYCLES {
        let kill_after = Duration::from_millis(rng.random_range(30..400));
        let acked = write_then_kill(&path, run, kill_after);
        total += acked.len();
        verify(&path, &acked, run).await;
    }
    assert!(
        total > CYCLES as usize * 10,
        "the writer made too little progress ({total} acks) to test anything"
    );
}
