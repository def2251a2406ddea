// Shared fixtures for the simnet tests. `simnet` is the global set up by
// vitest-environment-clarinet (see vitest.config.mjs); it is re-initialised
// before every test, so each test starts from the deployed contracts only.
import { expect } from "vitest";
import { Cl, ClarityType, type ClarityValue } from "@stacks/transactions";
import type { ClarityEvent } from "@stacks/clarinet-sdk";

const accounts = simnet.getAccounts();

export const deployer = accounts.get("deployer")!;
export const patient = accounts.get("wallet_1")!;
export const provider = accounts.get("wallet_2")!;
export const responder = accounts.get("wallet_3")!;
export const outsider = accounts.get("faucet")!;

export const PC = "patient-consent";
export const RM = "record-management";

/** A buffer of `len` bytes, all `byte` (ids, hashes, commitments). */
export function buf(len: number, byte: number): ClarityValue {
  return Cl.buffer(new Uint8Array(len).fill(byte));
}

/** A 32-byte patient-id commitment / data hash / root. */
export const b32 = (byte: number) => buf(32, byte);
/** A 16-byte record id. */
export const b16 = (byte: number) => buf(16, byte);

export const p = (address: string) => Cl.principal(address);

export function pub(contract: string, fn: string, args: ClarityValue[], sender: string) {
  return simnet.callPublicFn(contract, fn, args, sender);
}

export function ro(contract: string, fn: string, args: ClarityValue[], sender: string = deployer) {
  return simnet.callReadOnlyFn(contract, fn, args, sender).result;
}

/** `burn-block-height` as read-only functions (check-consent) see it now. */
export function burnHeight(): number {
  const v = simnet.execute("burn-block-height").result;
  if (v.type !== "uint") throw new Error(`unexpected burn-block-height ${Cl.prettyPrint(v)}`);
  return Number(v.value);
}

/** Mines empty blocks until read-only calls see `burn-block-height` = `target`. */
export function mineToBurnHeight(target: number) {
  const now = burnHeight();
  if (target < now) throw new Error(`burn height ${now} already past ${target}`);
  if (target > now) simnet.mineEmptyBlocks(target - now);
  expect(burnHeight()).toBe(target);
}

/** Reads a uint field of a print event tuple (e.g. `at`, `expires-at`). */
export function uintField(value: ClarityValue | undefined, field: string): number {
  if (!value || value.type !== "tuple") throw new Error("not a tuple");
  const f = value.value[field];
  if (f.type === "uint") return Number(f.value);
  if (f.type === "some" && f.value.type === "uint") return Number(f.value.value);
  throw new Error(`field ${field} is ${Cl.prettyPrint(f)}`);
}

/** The single print event of a call, checked for the contract, `event` name and `schema: u1`. */
export function printEvent(events: ClarityEvent[], contract: string, name: string): ClarityValue {
  const prints = events.filter((e) => e.event === "print_event");
  expect(prints).toHaveLength(1);
  const ev = prints[0];
  expect(ev.data.contract_identifier).toBe(`${deployer}.${contract}`);
  const value = ev.data.value!;
  expect(value).toHaveClarityType(ClarityType.Tuple);
  if (value.type !== "tuple") throw new Error("unreachable");
  expect(value.value.event).toStrictEqual(Cl.stringAscii(name));
  expect(value.value.schema).toStrictEqual(Cl.uint(1));
  return value;
}

/** Registers `who` as a patient with a distinct commitment. */
export function registerPatient(who: string, idByte = 1, physician?: string) {
  const r = pub(
    PC,
    "register-patient",
    [b32(idByte), Cl.none(), physician ? Cl.some(p(physician)) : Cl.none()],
    who,
  );
  expect(r.result).toBeOk(Cl.bool(true));
  return r;
}
