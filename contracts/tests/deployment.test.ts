import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Cl } from "@stacks/transactions";
import { deployer, PC, RM, ro } from "./helpers";

describe("deployment", () => {
  it("runs in epoch 2.4", () => {
    expect(simnet.currentEpoch).toBe("2.4");
  });

  it("deploys both contracts from Clarinet.toml as Clarity 2 / epoch 2.4", () => {
    const interfaces = simnet.getContractsInterfaces();
    for (const name of [PC, RM]) {
      const id = `${deployer}.${name}`;
      expect(interfaces.has(id), `${id} deployed`).toBe(true);
      const iface = interfaces.get(id)!;
      expect(iface.clarity_version).toBe("Clarity2");
      expect(iface.epoch).toBe("Epoch24");
      // What is deployed is exactly the source in the repository.
      expect(simnet.getContractSource(id)).toBe(
        readFileSync(`contracts/${name}.clar`, "utf8"),
      );
    }
  });

  it("exposes the documented public and read-only functions", () => {
    const interfaces = simnet.getContractsInterfaces();
    const fns = (name: string, access: string) =>
      interfaces
        .get(`${deployer}.${name}`)!
        .functions.filter((f) => f.access === access)
        .map((f) => f.name)
        .sort();
    expect(fns(PC, "public")).toEqual(
      [
        "accept-ownership",
        "emergency-override",
        "end-emergency-override",
        "grant-consent",
        "pause",
        "propose-owner",
        "register-patient",
        "revoke-consent",
        "set-deceased",
        "set-emergency-responder",
        "set-emergency-timeout",
        "unpause",
        "update-patient-preferences",
      ].sort(),
    );
    expect(fns(PC, "read_only")).toContain("check-consent");
    expect(fns(RM, "public")).toEqual(
      [
        "accept-ownership",
        "anchor-audit-root",
        "anchor-batch",
        "archive-record",
        "create-record",
        "finalize-record",
        "get-record",
        "grant-provider-access",
        "propose-owner",
        "purge-record",
        "register-provider",
        "revoke-provider-access",
        "rollback-record",
        "set-anchor-operator",
        "set-provider-active",
        "set-provider-credential",
        "set-retention-period",
        "unlock-record",
        "update-record",
      ].sort(),
    );
  });

  it("initialises owners and defaults from the deployer", () => {
    expect(ro(PC, "get-contract-owner", [])).toBePrincipal(deployer);
    expect(ro(RM, "get-contract-owner", [])).toBePrincipal(deployer);
    expect(ro(PC, "is-paused", [])).toBeBool(false);
    expect(ro(PC, "get-emergency-timeout", [])).toBeUint(432);
    expect(ro(RM, "get-retention-period", [])).toBeUint(1577880);
    expect(ro(PC, "get-pending-owner", [])).toBeNone();
  });

  it("maps record types 1-13 to consent data types", () => {
    const expected = [1, 2, 2, 4, 3, 3, 2, 2, 2, 5, 6, 7, 8];
    expected.forEach((dataType, i) => {
      expect(ro(RM, "get-data-type", [Cl.uint(i + 1)])).toBeSome(Cl.uint(dataType));
    });
    expect(ro(RM, "get-data-type", [Cl.uint(0)])).toBeNone();
    expect(ro(RM, "get-data-type", [Cl.uint(14)])).toBeNone();
  });
});
