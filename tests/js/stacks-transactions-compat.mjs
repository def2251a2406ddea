// Compatibility check: a transaction built and signed by @stacks/transactions
// v7 against our devnet's RPC, with fee and nonce left for the library to
// fetch, is accepted, mined, and its result is readable with
// fetchCallReadOnlyFunction; then an STX transfer with the library's
// defaults (Deny mode, no post-conditions) is mined and moves the STX. Run
// by the Rust test in medanchor/tests/it/devnet_process.rs with BASE_URL
// pointing at a devnet on loopback.
import {
  makeContractCall,
  makeSTXTokenTransfer,
  broadcastTransaction,
  fetchCallReadOnlyFunction,
  Cl,
  cvToJSON,
} from "@stacks/transactions";
import { STACKS_DEVNET } from "@stacks/network";

const baseUrl = process.env.BASE_URL;
if (!baseUrl) throw new Error("BASE_URL is required");
const network = { ...STACKS_DEVNET, client: { baseUrl } };
const deployer = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";
// wallet_3 of Clarinet's devnet (public test key).
const senderKey = "d655b2523bcd65e34889725c73064feb17ceb796831c0e111ba1a552b0f31b3901";
const sender = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";
const patientId = Cl.bufferFromHex("ab".repeat(32));

const tx = await makeContractCall({
  contractAddress: deployer,
  contractName: "patient-consent",
  functionName: "register-patient",
  functionArgs: [patientId, Cl.none(), Cl.none()],
  senderKey,
  network,
});
const result = await broadcastTransaction({ transaction: tx, network });
if (result.error) {
  console.error(JSON.stringify(result));
  process.exit(2);
}
const txid = result.txid;
// Poll the Hiro-style status route until mined.
async function mined(txid) {
  let status;
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${baseUrl}/extended/v1/tx/0x${txid}`);
    status = await r.json();
    if (status.tx_status && status.tx_status !== "pending") break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return status;
}
const status = await mined(txid);
const read = await fetchCallReadOnlyFunction({
  contractAddress: deployer,
  contractName: "patient-consent",
  functionName: "get-history-length",
  functionArgs: [Cl.principal(sender)],
  senderAddress: sender,
  network,
});

// An STX transfer as a wallet sends it (the library's defaults).
const recipient = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG"; // wallet_2
const balance = async (who) => BigInt((await (await fetch(`${baseUrl}/v2/accounts/${who}?proof=0`)).json()).balance);
const before = await balance(recipient);
const transfer = await makeSTXTokenTransfer({ recipient, amount: 12345n, senderKey, network });
const sent = await broadcastTransaction({ transaction: transfer, network });
if (sent.error) {
  console.error(JSON.stringify(sent));
  process.exit(2);
}
const transferStatus = await mined(sent.txid);
const received = (await balance(recipient)) - before;

console.log(JSON.stringify({ txid, tx_status: status.tx_status, block_height: status.block_height,
  history_length: cvToJSON(read).value, fee: tx.auth.spendingCondition.fee.toString(),
  transfer_status: transferStatus.tx_status, transfer_mode: transfer.postConditionMode,
  received: received.toString() }));
