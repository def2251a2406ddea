// Compatibility check: a transaction built and signed by @stacks/transactions
// v7 against our devnet's RPC, with fee and nonce left for the library to
// fetch, is accepted, mined, and its result is readable with
// fetchCallReadOnlyFunction. Run by the Rust test
// `tests/it/stacks_js.rs` with BASE_URL pointing at a devnet on loopback.
import {
  makeContractCall,
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
let status;
for (let i = 0; i < 100; i++) {
  const r = await fetch(`${baseUrl}/extended/v1/tx/0x${txid}`);
  status = await r.json();
  if (status.tx_status && status.tx_status !== "pending") break;
  await new Promise((res) => setTimeout(res, 100));
}
const read = await fetchCallReadOnlyFunction({
  contractAddress: deployer,
  contractName: "patient-consent",
  functionName: "get-history-length",
  functionArgs: [Cl.principal(sender)],
  senderAddress: sender,
  network,
});
console.log(JSON.stringify({ txid, tx_status: status.tx_status, block_height: status.block_height,
  history_length: cvToJSON(read).value, fee: tx.auth.spendingCondition.fee.toString() }));
