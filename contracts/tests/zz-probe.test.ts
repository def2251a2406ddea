import { it } from "vitest";
import { Cl } from "@stacks/transactions";
import { burnHeight, patient, provider, registerPatient, pub, ro, PC, p, uintField } from "./helpers";
for (let k = 0; k < 20; k++) it("probe " + k, () => {
  registerPatient(patient);
  const log: string[] = [];
  const st = () => `tip(b=${simnet.blockHeight},burn=${simnet.burnBlockHeight}) exec.burn=${burnHeight()} ro.burn=${Cl.prettyPrint(simnet.callReadOnlyFn(PC, "get-patient", [p(patient)], patient).result).match(/updated-at: (u\d+)/)?.[1]}`;
  const g = pub(PC, "grant-consent", [p(provider), Cl.uint(1), Cl.some(Cl.uint(10))], patient);
  const at = uintField(g.events[0].data.value, "at");
  log.push(`grant at=${at} ` + st());
  simnet.mineEmptyBlocks(8);
  log.push(`mined8 ${st()} check=${Cl.prettyPrint(ro(PC, "check-consent", [p(patient), p(provider), Cl.uint(1)]))}`);
  simnet.mineEmptyBlocks(1);
  log.push(`mined1 ${st()} check=${Cl.prettyPrint(ro(PC, "check-consent", [p(patient), p(provider), Cl.uint(1)]))}`);
  simnet.mineEmptyBlocks(1);
  log.push(`mined1 ${st()} check=${Cl.prettyPrint(ro(PC, "check-consent", [p(patient), p(provider), Cl.uint(1)]))}`);
  console.log(log.join("\n"));
});
