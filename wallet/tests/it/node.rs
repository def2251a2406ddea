//! The wallet against a real node: the devnet's `Node` serving its RPC on
//! `127.0.0.1:0`, reached only over HTTP, as a testnet node would be.

use std::time::Duration;

use medanchor_contracts::types::{AccessMethod, DataType};
use medanchor_contracts::ContractError;
use medanchor_devnet::node::{Node, NodeConfig};
use medanchor_wallet::accounts::{parse_accounts, DEFAULT_DEVNET_TOML};
use medanchor_wallet::{actions, import_key, ContractCall, Error, KeySource, Reader, RpcClient, Wallet};

/// The wallet against an in-process node over loopback: nonce, fee,
/// broadcast, a rejection's reason verbatim, waiting, read-only calls,
/// and an `(err uN)` decoded to the contract's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_against_a_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml").expect("accounts");
    let mut config = NodeConfig::new(dir.path().to_path_buf(), accounts);
    config.block_interval = Some(Duration::from_millis(100));
    let node = Node::open(config).expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        node.run(listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("node runs");
    });

    let deployer = medanchor_contracts::DEPLOYER_ADDRESS;
    let connect = |name: &'static str| {
        let base = base.clone();
        async move {
            let key = import_key(KeySource::DevnetAccount(name)).expect("key");
            Wallet::connect(key, RpcClient::new(&base).expect("client"), deployer).await.expect("connect")
        }
    };
    let patient = connect("wallet_1").await;
    let provider = connect("wallet_2").await;
    let p = actions::parse_principal(patient.address()).expect("p");
    let q = actions::parse_principal(provider.address()).expect("q");
    let wait = Duration::from_secs(30);

    // Not yet registered: the transaction is mined and aborts with the
    // contract's error.
    let grant = ContractCall::grant_consent(&q, DataType::LabResults, "48h".parse().expect("48h"));
    let sent = patient.submit(&grant, None).await.expect("submit");
    assert!(sent.fee > 100, "fee {} is length × rate", sent.fee);
    let out = patient.wait(&sent.txid, wait).await.expect("mined");
    assert_eq!(out.status, "abort_by_response");
    assert_eq!(out.contract_error(), Some(ContractError::PatientNotFound));
    assert!(out.block_height.is_some());

    let sent = patient.submit(&ContractCall::register_patient([7; 32], None, None), None).await.expect("submit");
    assert!(patient.wait(&sent.txid, wait).await.expect("mined").is_success());
    let sent = patient.submit(&grant, None).await.expect("submit");
    let out = patient.wait(&sent.txid, wait).await.expect("mined");
    assert!(out.is_success(), "{out:?}");

    let reader = Reader::new(RpcClient::new(&base).expect("client"), deployer).expect("reader");
    assert_eq!(reader.check_consent(&p, &q, DataType::LabResults).await.expect("read"), Ok(AccessMethod::Consent));
    assert_eq!(
        reader.check_consent(&p, &q, DataType::MentalHealth).await.expect("read"),
        Err(ContractError::NoConsent)
    );
    let entry = reader.get_consent(&p, &q, DataType::LabResults).await.expect("read").expect("entry");
    assert_eq!(entry.expires_at, Some(entry.granted_at + 288));
    assert!(reader.get_consent(&p, &q, DataType::Genetic).await.expect("read").is_none());

    // A fee below the node's minimum: the node's reason, verbatim.
    match provider.submit(&ContractCall::revoke_provider_access(&p), Some(1)).await {
        Err(Error::Rejected { reason, reason_data }) => {
            assert_eq!(reason, "FeeTooLow");
            assert!(reason_data.contains("expected"), "{reason_data}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    let _ = stop.send(());
    let _ = task.await;
}
