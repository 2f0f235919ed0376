//! The conformance suite against a real etcd (one process per test, on free loopback ports),
//! plus watch resumption across an etcd restart and TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kplex_store::{EtcdOptions, EtcdStore, EtcdTls, KeyRange, Store};
use kplex_testing::EtcdServer;

async fn store() -> (conformance::Dyn, EtcdServer) {
    let etcd = EtcdServer::start();
    let store = EtcdStore::connect(EtcdOptions::new([etcd.endpoint()]))
        .await
        .unwrap();
    (Arc::new(store), etcd)
}

conformance_tests!(store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_etcd_restart() {
    let (s, mut etcd) = store().await;
    let mut w = s.watch(KeyRange::prefix("/resume/"), 0).await.unwrap();
    let r1 = s.put("/resume/a", Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(w.next().await.unwrap().unwrap().kv.mod_revision, r1);
    etcd.restart();
    // Writes after the restart (the client reconnects on its own).
    let mut written = Vec::new();
    for i in 0..5 {
        let rev = loop {
            match s
                .put(&format!("/resume/{i}"), Bytes::from_static(b"x"))
                .await
            {
                Ok(rev) => break rev,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        written.push(rev);
    }
    for rev in written {
        let e = tokio::time::timeout(Duration::from_secs(20), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            e.kv.mod_revision, rev,
            "no event lost or duplicated across the restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_over_tls_with_client_certificate() {
    let etcd = EtcdServer::start_tls();
    let files = etcd.tls().unwrap();
    let mut options = EtcdOptions::new([etcd.endpoint()]);
    options.tls = Some(EtcdTls {
        ca_file: Some(files.ca.clone()),
        cert_file: Some(files.client_cert.clone()),
        key_file: Some(files.client_key.clone()),
    });
    let s = EtcdStore::connect(options).await.unwrap();
    let r = s
        .put("/tls/a", Bytes::from_static(b"secure"))
        .await
        .unwrap();
    assert_eq!(s.get("/tls/a").await.unwrap().unwrap().mod_revision, r);

    // Without the client certificate etcd refuses us.
    let mut anonymous = EtcdOptions::new([etcd.endpoint()]);
    anonymous.tls = Some(EtcdTls {
        ca_file: Some(files.ca.clone()),
        ..Default::default()
    });
    anonymous.connect_timeout = Duration::from_secs(2);
    let refused = match EtcdStore::connect(anonymous).await {
        Err(_) => true,
        Ok(s) => s.put("/tls/b", Bytes::from_static(b"x")).await.is_err(),
    };
    assert!(refused, "etcd must refuse a client without a certificate");
}

/// A transaction that writes several keys (another etcd client's; kplex writes one key at a
/// time) gives one event per key, all at its revision: none is dropped as already seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_a_multi_key_transaction_is_watched() {
    let (s, etcd) = store().await;
    let mut w = s.watch(KeyRange::prefix("/txn/"), 0).await.unwrap();
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    let txn = etcd_client::Txn::new().and_then([
        etcd_client::TxnOp::put("/txn/a", "1", None),
        etcd_client::TxnOp::put("/txn/b", "2", None),
    ]);
    client.txn(txn).await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let e = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        keys.push(e.kv.key);
    }
    keys.sort();
    assert_eq!(keys, ["/txn/a", "/txn/b"]);
}
