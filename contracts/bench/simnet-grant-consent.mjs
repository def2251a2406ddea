// The Clarinet simnet baseline of `medanchor bench devnet`: the same
// workload (each patient registers, then grant-consent calls spread over
// the same principals) through @stacks/clarinet-sdk's simnet, timed here.
//
// Input (stdin, JSON): { "patients": [address…], "patient_ids": [hex…], "providers": [address…],
//                        "grants": [[patientIndex, providerIndex, dataType, duration]…] }
// Output (stdout, one JSON line): { "calls": N, "seconds": S, "calls_per_sec": R, "failed": F }
import { readFileSync } from "node:fs";
import { initSimnet } from "@stacks/clarinet-sdk";
import { Cl } from "@stacks/transactions";

const input = JSON.parse(readFileSync(0, "utf8"));
// The SDK logs every print event to the console; keep stdout for the result.
const log = console.log;
console.log = () => {};
const simnet = await initSimnet(new URL("../Clarinet.toml", import.meta.url).pathname);

let failed = 0;
for (const [i, patient] of input.patients.entries()) {
  const id = Cl.bufferFromHex(input.patient_ids[i]);
  const r = simnet.callPublicFn("patient-consent", "register-patient", [id, Cl.none(), Cl.none()], patient);
  if (r.result.type !== "ok") failed++;
}
const calls = input.grants.map(([p, v, type, duration]) => [
  input.patients[p],
  [Cl.principal(input.providers[v]), Cl.uint(type), duration === null ? Cl.none() : Cl.some(Cl.uint(duration))],
]);
const start = process.hrtime.bigint();
for (const [sender, args] of calls) {
  const r = simnet.callPublicFn("patient-consent", "grant-consent", args, sender);
  if (r.result.type !== "ok") failed++;
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
log(JSON.stringify({ calls: calls.length, seconds, calls_per_sec: calls.length / seconds, failed }));
