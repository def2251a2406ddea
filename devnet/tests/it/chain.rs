//! The devnet chain: genesis from Devnet.toml, real signed transactions
//! executed in the Clarity VM, Stacks' failure semantics, persistence.

use clarity_repl::clarity::vm::types::PrincipalData;
use clarity_repl::clarity::vm::Value;
use clarity_repl::codec::{
    FungibleConditionCode, PostConditionPrincipal, TransactionPostCondition, TransactionPostConditionMode,
};
use medanchor_contracts::{decode_raw_print, ContractEvent, ContractName};
use medanchor_devnet::chain::{Candidate, Chain, RejectReason, TxStatus};
use medanchor_devnet::genesis::chain_config;
use medanchor_wallet::accounts::{parse_accounts, DevnetAccount, DEFAULT_DEVNET_TOML};
use medanchor_wallet::keys::TESTNET_SINGLESIG;
use medanchor_wallet::txbuild::{multisig_address, serialize, sign, sign_multisig, sign_sponsored, Payload, TxOptions};

struct Node {
    dir: tempfile::TempDir,
    chain: Chain,
    accounts: Vec<DevnetAccount>,
    now: u64,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml").expect("accounts");
        let chain = Chain::open(dir.path(), chain_config(&accounts, 1_700_000_000).expect("config")).expect("open");
        Node { dir, chain, accounts, now: 1_700_000_000 }
    }

    fn reopen(self) -> Node {
        let Node { dir, chain, accounts, now } = self;
        let config = chain.config().clone();
        drop(chain);
        let chain = Chain::open(dir.path(), config).expect("reopen");
        Node { dir, chain, accounts, now }
    }

    fn account(&self, name: &str) -> &DevnetAccount {
        self.accounts.iter().find(|a| a.name == name).expect("devnet account")
    }

    fn principal(&self, name: &str) -> PrincipalData {
        self.account(name).key.address(TESTNET_SINGLESIG).into()
    }

    fn nonce(&self, name: &str) -> u64 {
        self.chain.account(&self.principal(name)).expect("account").1
    }

    /// A signed contract call from `name` with its next nonce.
    fn call(&self, name: &str, contract: ContractName, function: &str, args: Vec<Value>, fee: u64) -> Candidate {
        self.call_with(name, contract, function, args, TxOptions::new(self.nonce(name), fee))
    }

    fn call_with(
        &self,
        name: &str,
        contract: ContractName,
        function: &str,
        args: Vec<Value>,
        opts: TxOptions,
    ) -> Candidate {
        let deployer = self.account("deployer").key.address(TESTNET_SINGLESIG);
        let payload = Payload::ContractCall {
            address: deployer,
            contract: contract.name().into(),
            function: function.into(),
            args,
        };
        let tx = sign(&self.account(name).key, payload, &opts).expect("sign");
        Candidate::decode(&serialize(&tx)).expect("decodes")
    }

    fn mine(&mut self, txs: Vec<Candidate>) -> medanchor_devnet::chain::Mined {
        for tx in &txs {
            self.chain.validate(tx).expect("valid");
        }
        self.now += 1;
        self.chain.mine_block(txs, 1, self.now).expect("mine")
    }
}

fn buff(b: &[u8]) -> Value {
    Value::buff_from(b.to_vec()).expect("buff")
}

#[test]
fn genesis_funds_the_accounts_and_deploys_the_contracts_in_block_one() {
    let node = Node::new();
    assert_eq!(node.chain.tip().height, 1);
    let block = node.chain.block(1).expect("read").expect("block 1");
    assert_eq!(block.receipts.len(), 2);
    for r in &block.receipts {
        assert_eq!(r.status, TxStatus::Success, "{r:?}");
        assert!(r.contract_interface.is_some());
    }
    let (balance, nonce) = node.chain.account(&node.principal("wallet_1")).expect("account");
    assert_eq!((balance, nonce), (100_000_000_000_000, 0));
    assert_eq!(node.nonce("deployer"), 2);
    assert_eq!(
        block.header.parent_index_block_hash,
        node.chain.block(0).expect("read").expect("b0").header.index_block_hash
    );
}

#[test]
fn a_signed_contract_call_is_mined_with_its_print_event_and_fee_charged() {
    let mut node = Node::new();
    let before = node.chain.account(&node.principal("wallet_1")).expect("account").0;
    let tx = node.call(
        "wallet_1",
        ContractName::PatientConsent,
        "register-patient",
        vec![buff(&[7; 32]), Value::none(), Value::none()],
        500,
    );
    let mined = node.mine(vec![tx]);
    let r = &mined.block.receipts[0];
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(r.raw_result, "0x0703");
    assert_eq!(r.events.len(), 1);
    let raw = r.events[0]["contract_event"]["raw_value"].as_str().expect("raw_value");
    let event = decode_raw_print(ContractName::PatientConsent, raw).expect("our event");
    assert!(matches!(
        event,
        ContractEvent::PatientConsent(medanchor_contracts::events::ConsentEvent::PatientRegistered { .. })
    ));
    let after = node.chain.account(&node.principal("wallet_1")).expect("account").0;
    assert_eq!(before - after, 500);
    assert!(r.execution_cost.runtime > 0);
}

#[test]
fn an_err_response_is_mined_as_abort_by_response_with_fee_and_no_events() {
    let mut node = Node::new();
    // grant-consent by an unregistered patient returns (err u101).
    let tx = node.call(
        "wallet_1",
        ContractName::PatientConsent,
        "grant-consent",
        vec![Value::Principal(node.principal("wallet_2")), Value::UInt(1), Value::none()],
        400,
    );
    let mined = node.mine(vec![tx]);
    let r = &mined.block.receipts[0];
    assert_eq!(r.status, TxStatus::AbortByResponse);
    assert_eq!(r.raw_result, "0x080100000000000000000000000000000065");
    assert!(r.events.is_empty());
    assert_eq!(node.nonce("wallet_1"), 1, "the nonce is used");
    assert_eq!(node.chain.account(&node.principal("wallet_1")).expect("a").0, 100_000_000_000_000 - 400);
}

/// Post-conditions as Stacks evaluates them: on a contract call that moves
/// STX, Deny mode aborts any unlisted transfer and a failing condition
/// aborts in either mode; an STX transfer payload moves exactly what it
/// says, so the mode does not apply to it and post-conditions make it
/// invalid (refused, never mined).
#[test]
fn post_conditions_guard_contract_calls_in_both_modes_and_never_apply_to_plain_transfers() {
    let mut node = Node::new();
    let recipient = node.principal("wallet_2");
    let deploy = sign(
        &node.account("deployer").key,
        Payload::Deploy {
            name: "pay".into(),
            source: "(define-public (pay (to principal) (amount uint)) (stx-transfer? amount tx-sender to))".into(),
        },
        &TxOptions::new(node.nonce("deployer"), 10_000),
    )
    .expect("sign");
    let deployed = node.mine(vec![Candidate::decode(&serialize(&deploy)).expect("decode")]);
    assert_eq!(deployed.block.receipts[0].status, TxStatus::Success);
    let deployer = node.account("deployer").key.address(TESTNET_SINGLESIG);
    let pay = |node: &Node, mode, post_conditions| {
        let mut opts = TxOptions::new(node.nonce("wallet_1"), 300);
        opts.mode = mode;
        opts.post_conditions = post_conditions;
        let payload = Payload::ContractCall {
            address: deployer,
            contract: "pay".into(),
            function: "pay".into(),
            args: vec![Value::Principal(recipient.clone()), Value::UInt(1000)],
        };
        Candidate::decode(&serialize(&sign(&node.account("wallet_1").key, payload, &opts).expect("sign")))
            .expect("decode")
    };
    let sends = |code, amount| vec![TransactionPostCondition::STX(PostConditionPrincipal::Origin, code, amount)];
    let before = node.chain.account(&recipient).expect("a").0;
    // (mode, post-conditions, outcome)
    let cases = [
        (TransactionPostConditionMode::Deny, sends(FungibleConditionCode::SentLe, 10), TxStatus::AbortByPostCondition),
        (TransactionPostConditionMode::Allow, sends(FungibleConditionCode::SentLe, 10), TxStatus::AbortByPostCondition),
        (TransactionPostConditionMode::Deny, sends(FungibleConditionCode::SentEq, 1000), TxStatus::Success),
        (TransactionPostConditionMode::Allow, vec![], TxStatus::Success),
        (TransactionPostConditionMode::Deny, vec![], TxStatus::AbortByPostCondition),
    ];
    let mut paid = 0;
    for (mode, pcs, outcome) in cases {
        let r = node.mine(vec![pay(&node, mode, pcs.clone())]).block.receipts[0].clone();
        assert_eq!(r.status, outcome, "{mode:?} {pcs:?}");
        if outcome == TxStatus::Success {
            paid += 1000;
        }
    }
    assert_eq!(node.chain.account(&recipient).expect("a").0, before + paid);

    // A plain transfer: Deny mode without post-conditions moves the STX;
    // with a post-condition it is refused at admission.
    let transfer = |node: &Node, post_conditions| {
        let mut opts = TxOptions::new(node.nonce("wallet_1"), 300);
        opts.post_conditions = post_conditions;
        let tx = sign(
            &node.account("wallet_1").key,
            Payload::Transfer { recipient: recipient.clone(), amount: 1000 },
            &opts,
        )
        .expect("sign");
        Candidate::decode(&serialize(&tx)).expect("decode")
    };
    let r = node.mine(vec![transfer(&node, vec![])]).block.receipts[0].clone();
    assert_eq!(r.status, TxStatus::Success, "Deny mode does not apply to a transfer payload");
    assert_eq!(node.chain.account(&recipient).expect("a").0, before + paid + 1000);
    let refused = node.chain.validate(&transfer(&node, sends(FungibleConditionCode::SentEq, 1000))).expect_err("pcs");
    assert_eq!(refused.reason, RejectReason::ServerFailureOther);
    assert!(refused.detail.contains("do not support post-conditions"), "{refused:?}");
}

#[test]
fn rejections_name_stacks_node_reasons() {
    let node = Node::new();
    let ok = node.call(
        "wallet_1",
        ContractName::PatientConsent,
        "register-patient",
        vec![buff(&[1; 32]), Value::none(), Value::none()],
        500,
    );
    // Low fee.
    let low = node.call(
        "wallet_1",
        ContractName::PatientConsent,
        "register-patient",
        vec![buff(&[1; 32]), Value::none(), Value::none()],
        1,
    );
    assert_eq!(node.chain.validate(&low).expect_err("fee").reason, RejectReason::FeeTooLow);
    // Tampered signature: flip a byte in the signature area.
    let mut raw = ok.raw.clone();
    raw[50] ^= 1;
    let tampered = Candidate::decode(&raw);
    let reason = match tampered {
        Err(r) => r.reason,
        Ok(c) => node.chain.validate(&c).expect_err("signature").reason,
    };
    assert!(matches!(reason, RejectReason::SignatureValidation | RejectReason::Deserialization), "{reason:?}");
    // Garbage.
    assert_eq!(Candidate::decode(&[0, 1, 2]).expect_err("garbage").reason, RejectReason::Deserialization);
    // Unknown function, bad argument.
    let nf = node.call("wallet_1", ContractName::PatientConsent, "no-such-fn", vec![], 500);
    assert_eq!(node.chain.validate(&nf).expect_err("fn").reason, RejectReason::NoSuchPublicFunction);
    let bad = node.call(
        "wallet_1",
        ContractName::PatientConsent,
        "register-patient",
        vec![Value::UInt(1), Value::none(), Value::none()],
        500,
    );
    assert_eq!(node.chain.validate(&bad).expect_err("arg").reason, RejectReason::BadFunctionArgument);
    // Old nonce.
    let old = node.call_with("deployer", ContractName::PatientConsent, "pause", vec![], TxOptions::new(0, 500));
    assert_eq!(node.chain.validate(&old).expect_err("nonce").reason, RejectReason::BadNonce);
    // Wrong chain.
    let mut opts = TxOptions::new(0, 500);
    opts.chain_id = 1;
    let wrong = node.call_with("wallet_1", ContractName::PatientConsent, "pause", vec![], opts);
    assert_eq!(node.chain.validate(&wrong).expect_err("chain").reason, RejectReason::BadTransactionVersion);
}

/// A 2-of-3 multi-sig (P2SH) account: funded, then spending with exactly
/// two signatures (the third key's public key carried along); one
/// signature, or three, is refused as stacks-node refuses it.
#[test]
fn a_two_of_three_multisig_account_spends_with_exactly_two_signatures() {
    let mut node = Node::new();
    let keys: Vec<_> = ["wallet_1", "wallet_2", "wallet_3"].iter().map(|n| node.account(n).key.clone()).collect();
    let address = multisig_address(&keys, 2, 21).expect("address");
    let multisig = PrincipalData::from(address);
    assert!(multisig.to_string().starts_with("SN"), "a testnet P2SH address: {multisig}");
    let fund = sign(
        &node.account("faucet").key,
        Payload::Transfer { recipient: multisig.clone(), amount: 5_000_000 },
        &TxOptions::new(node.nonce("faucet"), 1_000),
    )
    .expect("sign");
    let funded = node.mine(vec![Candidate::decode(&serialize(&fund)).expect("decodes")]);
    assert_eq!(funded.block.receipts[0].status, TxStatus::Success, "{:?}", funded.block.receipts[0]);
    assert_eq!(node.chain.account(&multisig).expect("account"), (5_000_000, 0));

    let recipient = node.principal("deployer");
    let before = node.chain.account(&recipient).expect("account").0;
    let spend = |signs: &[bool]| {
        let tx = sign_multisig(
            &keys,
            signs,
            2,
            Payload::Transfer { recipient: recipient.clone(), amount: 1_000_000 },
            &TxOptions::new(0, 2_000),
        )
        .expect("build");
        Candidate::decode(&serialize(&tx))
    };
    // The wire format itself carries the count: a short or over-signed
    // transaction does not even decode (stacks-node answers the same).
    for signs in [[true, false, false], [true, true, true]] {
        let refused = spend(&signs).expect_err("wrong signature count");
        assert_eq!(refused.reason, RejectReason::Deserialization, "{signs:?}");
        assert!(refused.detail.contains("sigs, expected 2"), "{refused:?}");
    }
    let good = spend(&[true, false, true]).expect("decodes");
    node.chain.validate(&good).expect("two valid signatures");
    let mined = node.mine(vec![good]);
    assert_eq!(mined.block.receipts[0].status, TxStatus::Success);
    assert_eq!(node.chain.account(&multisig).expect("account"), (5_000_000 - 1_000_000 - 2_000, 1));
    assert_eq!(node.chain.account(&recipient).expect("account").0, before + 1_000_000);
}

/// A sponsored transaction: the origin acts, the sponsor pays with its own
/// nonce — which is checked as the origin's is: a used sponsor nonce is
/// refused at admission and dropped if it reaches a block, a later one
/// waits, so one sponsor signature cannot be replayed nor the sponsor's
/// nonce moved back.
#[test]
fn sponsored_transactions_spend_the_sponsors_fee_and_nonce_exactly_once() {
    let mut node = Node::new();
    let (origin, sponsor) = (node.account("wallet_1").key.clone(), node.account("faucet").key.clone());
    let deployer = node.account("deployer").key.address(TESTNET_SINGLESIG);
    let register = |origin_nonce, sponsor_nonce, id: u8| {
        let payload = Payload::ContractCall {
            address: deployer,
            contract: ContractName::PatientConsent.name().into(),
            function: "register-patient".into(),
            args: vec![buff(&[id; 32]), Value::none(), Value::none()],
        };
        let tx = sign_sponsored(&origin, &sponsor, sponsor_nonce, payload, &TxOptions::new(origin_nonce, 3_000))
            .expect("sign");
        Candidate::decode(&serialize(&tx)).expect("decodes")
    };
    let (origin_balance, origin_nonce) = node.chain.account(&node.principal("wallet_1")).expect("account");
    let (sponsor_balance, sponsor_nonce) = node.chain.account(&node.principal("faucet")).expect("account");
    let mined = node.mine(vec![register(origin_nonce, sponsor_nonce, 9)]);
    assert_eq!(mined.block.receipts[0].status, TxStatus::Success, "{:?}", mined.block.receipts[0]);
    assert_eq!(
        node.chain.account(&node.principal("wallet_1")).expect("account"),
        (origin_balance, origin_nonce + 1),
        "the origin pays nothing and uses its nonce"
    );
    assert_eq!(
        node.chain.account(&node.principal("faucet")).expect("account"),
        (sponsor_balance - 3_000, sponsor_nonce + 1),
        "the sponsor pays the fee with its nonce"
    );

    // The sponsor's used nonce again (a fresh origin nonce): refused at
    // admission, and dropped if it is put in a block anyway.
    let replay = register(origin_nonce + 1, sponsor_nonce, 10);
    let refused = node.chain.validate(&replay).expect_err("a used sponsor nonce");
    assert_eq!(refused.reason, RejectReason::BadNonce, "{refused:?}");
    assert_eq!(refused.data.as_ref().map(|d| d["is_origin"].clone()), Some(serde_json::json!(false)));
    node.now += 1;
    let mined = node.chain.mine_block(vec![replay], 1, node.now).expect("mine");
    assert!(mined.block.receipts.is_empty(), "never mined: {:?}", mined.block.receipts);
    assert_eq!(mined.dropped.len(), 1, "dropped with its reason");
    assert_eq!(node.chain.account(&node.principal("faucet")).expect("account").1, sponsor_nonce + 1);

    // A sponsor nonce ahead of the account's waits for its predecessor.
    node.now += 1;
    let ahead = register(origin_nonce + 1, sponsor_nonce + 2, 11);
    let mined = node.chain.mine_block(vec![ahead], 1, node.now).expect("mine");
    assert!(mined.block.receipts.is_empty() && mined.deferred.len() == 1, "deferred, not mined");
}

#[test]
fn future_nonces_wait_for_their_predecessor() {
    let mut node = Node::new();
    let n = node.nonce("wallet_1");
    let first = node.call_with(
        "wallet_1",
        ContractName::PatientConsent,
        "register-patient",
        vec![buff(&[3; 32]), Value::none(), Value::none()],
        TxOptions::new(n, 500),
    );
    let second = node.call_with(
        "wallet_1",
        ContractName::PatientConsent,
        "grant-consent",
        vec![Value::Principal(node.principal("wallet_2")), Value::UInt(1), Value::none()],
        TxOptions::new(n + 1, 500),
    );
    let mined = node.mine(vec![second.clone()]);
    assert!(mined.block.receipts.is_empty());
    assert_eq!(mined.deferred.len(), 1);
    let mined = node.mine(vec![first, second]);
    assert_eq!(
        mined.block.receipts.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![TxStatus::Success, TxStatus::Success]
    );
}

#[test]
fn a_restart_continues_from_the_tip_with_identical_state() {
    let mut node = Node::new();
    let tx = node.call(
        "wallet_1",
        ContractName::PatientConsent,
        "register-patient",
        vec![buff(&[9; 32]), Value::none(), Value::none()],
        500,
    );
    node.mine(vec![tx]);
    let tip = node.chain.tip().clone();
    let wallet = node.principal("wallet_1");
    let before = node.chain.account(&wallet).expect("a");
    let deployer = node.account("deployer").key.address(TESTNET_SINGLESIG);
    let id =
        clarity_repl::clarity::vm::types::QualifiedContractIdentifier::new(deployer.into(), "patient-consent".into());
    let read = |chain: &Chain| {
        chain.call_read_only(&wallet, &id, "get-history-length", &[Value::Principal(wallet.clone())]).expect("read")
    };
    assert_eq!(read(&node.chain), Ok(Value::UInt(1)));
    let mut node = node.reopen();
    assert_eq!(node.chain.tip(), &tip);
    assert_eq!(node.chain.account(&wallet).expect("a"), before);
    assert_eq!(read(&node.chain), Ok(Value::UInt(1)));
    // And it keeps going.
    let tx = node.call(
        "wallet_1",
        ContractName::PatientConsent,
        "grant-consent",
        vec![Value::Principal(node.principal("wallet_2")), Value::UInt(1), Value::none()],
        500,
    );
    assert_eq!(node.mine(vec![tx]).block.receipts[0].status, TxStatus::Success);
    assert_eq!(node.chain.tip().parent_index_block_hash, tip.index_block_hash);
}
