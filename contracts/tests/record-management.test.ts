import { describe, expect, it } from "vitest";
import { Cl } from "@stacks/transactions";
import {
  b16,
  b32,
  burnHeight,
  deployer,
  mineToBurnHeight,
  outsider,
  p,
  patient,
  PC,
  printEvent,
  provider,
  pub,
  registerPatient,
  responder,
  ro,
  RM,
  uintField,
} from "./helpers";

const u = Cl.uint;
const LEVEL_READ = 0;
const LEVEL_WRITE = 1;
const LEVEL_ADMIN = 2;
const RECORD_VITALS = 2; // data type 2 (medical history)
const RECORD_MENTAL_HEALTH = 10; // data type 5 (enhanced)
const RECORD_GENETIC = 11; // data type 6 (enhanced)

function registerProvider(who: string, credByte = 0xaa) {
  const r = pub(RM, "register-provider", [p(who), b32(credByte)], deployer);
  expect(r.result).toBeOk(Cl.bool(true));
  return r;
}

function grantConsent(to: string, dataType: number, duration?: number) {
  const r = pub(
    PC,
    "grant-consent",
    [p(to), u(dataType), duration === undefined ? Cl.none() : Cl.some(u(duration))],
    patient,
  );
  expect(r.result).toBeOk(expect.anything());
  return r;
}

function grantAccess(to: string, level: number, duration?: number) {
  return pub(
    RM,
    "grant-provider-access",
    [p(to), u(level), duration === undefined ? Cl.none() : Cl.some(u(duration))],
    patient,
  );
}

/** Registered provider with a broad consent and WRITE access to the patient. */
function setup(level = LEVEL_WRITE) {
  registerProvider(provider);
  registerPatient(patient);
  grantConsent(provider, 0);
  expect(grantAccess(provider, level).result).toBeOk(Cl.bool(true));
}

function create(id: number, hash: number, recordType = RECORD_VITALS, sender = provider) {
  return pub(
    RM,
    "create-record",
    [b16(id), p(patient), u(recordType), b32(hash), Cl.none(), u(1)],
    sender,
  );
}

function update(id: number, expectedVersion: number, hash: number, sender = provider) {
  return pub(
    RM,
    "update-record",
    [b16(id), u(expectedVersion), b32(hash), Cl.some(b32(0xee))],
    sender,
  );
}

const recordFn = (fn: string, id: number, sender = provider) =>
  pub(RM, fn, [b16(id)], sender).result;

function recordInfo(id: number) {
  const r = ro(RM, "get-record-info", [b16(id)]);
  if (r.type !== "some" || r.value.type !== "tuple") throw new Error("no record");
  return r.value.value;
}

describe("providers and provider access", () => {
  it("only the owner registers providers, once", () => {
    expect(pub(RM, "register-provider", [p(provider), b32(1)], outsider).result).toBeErr(u(200));
    const r = registerProvider(provider, 1);
    const at = uintField(printEvent(r.events, RM, "provider-registered"), "at");
    expect(pub(RM, "register-provider", [p(provider), b32(2)], deployer).result).toBeErr(u(202));
    expect(ro(RM, "get-provider", [p(provider)])).toBeSome(
      Cl.tuple({ "credential-hash": b32(1), active: Cl.bool(true), "registered-at": u(at) }),
    );
  });

  it("only the owner replaces a registered provider's credential commitment", () => {
    expect(pub(RM, "set-provider-credential", [p(provider), b32(2)], deployer).result).toBeErr(u(201));
    const r = registerProvider(provider, 1);
    const at = uintField(printEvent(r.events, RM, "provider-registered"), "at");
    expect(pub(RM, "set-provider-credential", [p(provider), b32(2)], provider).result).toBeErr(u(200));
    expect(pub(RM, "set-provider-credential", [p(provider), b32(2)], outsider).result).toBeErr(u(200));
    pub(RM, "set-provider-active", [p(provider), Cl.bool(false)], deployer);
    const s = pub(RM, "set-provider-credential", [p(provider), b32(3)], deployer);
    expect(s.result).toBeOk(Cl.bool(true));
    const e = printEvent(s.events, RM, "provider-credential-set");
    if (e.type !== "tuple") throw new Error("unreachable");
    expect(e.value["credential-hash"]).toStrictEqual(b32(3));
    expect(e.value.provider).toStrictEqual(p(provider));
    // Only the commitment changes: the active flag and registration height stay.
    expect(ro(RM, "get-provider", [p(provider)])).toBeSome(
      Cl.tuple({ "credential-hash": b32(3), active: Cl.bool(false), "registered-at": u(at) }),
    );
  });

  it("grant-provider-access validates patient, level, duration and provider", () => {
    expect(grantAccess(provider, LEVEL_WRITE).result).toBeErr(u(101));
    registerPatient(patient);
    expect(grantAccess(provider, LEVEL_WRITE).result).toBeErr(u(201));
    registerProvider(provider);
    expect(grantAccess(provider, 3).result).toBeErr(u(204)); // EMERGENCY is never granted
    expect(grantAccess(provider, LEVEL_WRITE, 0).result).toBeErr(u(220));
    expect(grantAccess(provider, LEVEL_WRITE, 5259601).result).toBeErr(u(220)); // > 100 years
    expect(
      pub(RM, "grant-provider-access", [p(provider), u(1), Cl.some(u(2n ** 128n - 1n))], patient)
        .result,
    ).toBeErr(u(220));
    expect(grantAccess(patient, LEVEL_WRITE).result).toBeErr(u(221));
    expect(pub(RM, "set-provider-active", [p(provider), Cl.bool(false)], outsider).result).toBeErr(
      u(200),
    );
    expect(pub(RM, "set-provider-active", [p(outsider), Cl.bool(false)], outsider).result).toBeErr(
      u(200),
    );
    expect(pub(RM, "set-provider-active", [p(outsider), Cl.bool(false)], deployer).result).toBeErr(
      u(201),
    );
    expect(pub(RM, "set-provider-active", [p(provider), Cl.bool(false)], deployer).result).toBeOk(
      Cl.bool(true),
    );
    expect(grantAccess(provider, LEVEL_WRITE).result).toBeErr(u(203));
    pub(RM, "set-provider-active", [p(provider), Cl.bool(true)], deployer);

    const r = grantAccess(provider, LEVEL_ADMIN, 50);
    expect(r.result).toBeOk(Cl.bool(true));
    const at = uintField(printEvent(r.events, RM, "provider-access-granted"), "at");
    expect(ro(RM, "get-provider-access", [p(patient), p(provider)])).toBeSome(
      Cl.tuple({ "access-level": u(2), "granted-at": u(at), "expires-at": Cl.some(u(at + 50)) }),
    );

    // Paused: grants fail with patient-consent's code; revocation still works.
    expect(pub(PC, "pause", [], deployer).result).toBeOk(Cl.bool(true));
    expect(grantAccess(provider, LEVEL_READ).result).toBeErr(u(110));
    expect(pub(RM, "revoke-provider-access", [p(provider)], patient).result).toBeOk(Cl.bool(true));
    expect(pub(RM, "revoke-provider-access", [p(provider)], patient).result).toBeErr(u(205));
    expect(ro(RM, "get-provider-access", [p(patient), p(provider)])).toBeNone();
  });
});

describe("create-record", () => {
  it("creates version 1 and anchors its hash", () => {
    setup();
    const r = create(1, 0x11);
    expect(r.result).toBeOk(u(1));
    const at = uintField(printEvent(r.events, RM, "record-created"), "at");

    expect(ro(RM, "get-record-info", [b16(1)])).toBeSome(
      Cl.tuple({
        patient: p(patient),
        "record-type": u(RECORD_VITALS),
        "data-hash": b32(0x11),
        "encryption-key-id": Cl.none(),
        confidentiality: u(1),
        "created-by": p(provider),
        "created-at": u(at),
        version: u(1),
        "updated-by": p(provider),
        "updated-at": u(at),
        change: u(1),
        status: u(1),
        finalized: Cl.bool(false),
        "retention-until": u(at + 1577880),
      }),
    );
    expect(ro(RM, "get-anchor", [b32(0x11)])).toBeSome(
      Cl.tuple({ "record-id": b16(1), version: u(1) }),
    );
    expect(ro(RM, "get-record-version", [b16(1), u(1)])).toBeSome(
      Cl.tuple({
        "data-hash": b32(0x11),
        "encryption-key-id": Cl.none(),
        author: p(provider),
        at: u(at),
        change: u(1),
      }),
    );
    expect(ro(RM, "get-record-version", [b16(1), u(2)])).toBeNone();
    expect(ro(RM, "get-record-version", [b16(9), u(1)])).toBeNone();
  });

  it("rejects a duplicate id (u210) and a duplicate hash (u211)", () => {
    setup();
    expect(create(1, 0x11).result).toBeOk(u(1));
    expect(create(1, 0x12).result).toBeErr(u(210));
    expect(create(2, 0x11).result).toBeErr(u(211));
    expect(ro(RM, "get-record-info", [b16(2)])).toBeNone();
    expect(create(2, 0x12).result).toBeOk(u(1));
  });

  it("validates record type and confidentiality", () => {
    setup();
    expect(create(1, 0x11, 0).result).toBeErr(u(208));
    expect(create(1, 0x11, 14).result).toBeErr(u(208));
    expect(
      pub(RM, "create-record", [b16(1), p(patient), u(2), b32(0x11), Cl.none(), u(4)], provider)
        .result,
    ).toBeErr(u(218));
  });

  it("needs consent, a registered active provider and WRITE access", () => {
    registerPatient(patient);
    // No consent at all: patient-consent's code passes through.
    expect(create(1, 0x11).result).toBeErr(u(107));
    grantConsent(provider, 0);
    expect(create(1, 0x11).result).toBeErr(u(201)); // consented, but not a provider
    registerProvider(provider);
    expect(create(1, 0x11).result).toBeErr(u(205)); // no provider access
    expect(grantAccess(provider, LEVEL_READ).result).toBeOk(Cl.bool(true));
    expect(create(1, 0x11).result).toBeErr(u(207)); // READ < WRITE
    const g = grantAccess(provider, LEVEL_WRITE, 3);
    const expiresAt = uintField(g.events[0].data.value, "expires-at");
    expect(create(1, 0x11).result).toBeOk(u(1));
    mineToBurnHeight(expiresAt - 1); // the next transaction runs at expires-at
    expect(create(2, 0x12).result).toBeErr(u(206));
    grantAccess(provider, LEVEL_WRITE);
    pub(RM, "set-provider-active", [p(provider), Cl.bool(false)], deployer);
    expect(create(2, 0x12).result).toBeErr(u(203));
    // A patient reads but never writes their own records.
    expect(create(3, 0x13, RECORD_VITALS, patient).result).toBeErr(u(200));
  });

  it("consent failures keep patient-consent's codes (revoked u109, expired u108, paused u110, deceased u111)", () => {
    registerProvider(provider);
    registerPatient(patient);
    grantAccess(provider, LEVEL_WRITE);
    grantConsent(provider, 2);
    pub(PC, "revoke-consent", [p(provider), u(2)], patient);
    expect(create(1, 0x11).result).toBeErr(u(109));
    const g = grantConsent(provider, 2, 2);
    mineToBurnHeight(uintField(g.events[0].data.value, "expires-at") - 1);
    expect(create(1, 0x11).result).toBeErr(u(108));
    grantConsent(provider, 2);
    pub(PC, "pause", [], deployer);
    expect(create(1, 0x11).result).toBeErr(u(110));
    pub(PC, "unpause", [], deployer);
    pub(PC, "set-deceased", [p(patient), Cl.bool(true)], deployer);
    expect(create(1, 0x11).result).toBeErr(u(111));
  });

  it("a broad consent does not cover a mental-health record (u107); a named grant does", () => {
    setup();
    expect(create(1, 0x11, RECORD_MENTAL_HEALTH).result).toBeErr(u(107));
    expect(create(1, 0x11, RECORD_GENETIC).result).toBeErr(u(107));
    grantConsent(provider, 5);
    expect(create(1, 0x11, RECORD_MENTAL_HEALTH).result).toBeOk(u(1));
    expect(create(2, 0x12, RECORD_GENETIC).result).toBeErr(u(107));
  });
});

describe("versions", () => {
  it("update-record with optimistic concurrency", () => {
    setup();
    const c = create(1, 0x11);
    const createdAt = uintField(c.events[0].data.value, "at");
    const r = update(1, 1, 0x21);
    expect(r.result).toBeOk(u(2));
    const updatedAt = uintField(printEvent(r.events, RM, "record-updated"), "at");
    expect(update(1, 1, 0x22).result).toBeErr(u(212)); // stale
    expect(update(1, 3, 0x22).result).toBeErr(u(212));
    expect(update(9, 1, 0x22).result).toBeErr(u(209));
    expect(update(1, 2, 0x11).result).toBeErr(u(211)); // hash already anchored

    expect(ro(RM, "get-record-version", [b16(1), u(1)])).toBeSome(
      Cl.tuple({
        "data-hash": b32(0x11),
        "encryption-key-id": Cl.none(),
        author: p(provider),
        at: u(createdAt),
        change: u(1),
      }),
    );
    expect(ro(RM, "get-record-version", [b16(1), u(2)])).toBeSome(
      Cl.tuple({
        "data-hash": b32(0x21),
        "encryption-key-id": Cl.some(b32(0xee)),
        author: p(provider),
        at: u(updatedAt),
        change: u(2),
      }),
    );
    expect(ro(RM, "get-anchor", [b32(0x21)])).toBeSome(
      Cl.tuple({ "record-id": b16(1), version: u(2) }),
    );
    const info = recordInfo(1);
    expect(info.version).toStrictEqual(u(2));
    expect(info["created-at"]).toStrictEqual(u(createdAt));
    expect(info["updated-at"]).toStrictEqual(u(updatedAt));
  });

  it("finalize locks; unlock needs ADMIN (u207 with WRITE)", () => {
    setup();
    create(1, 0x11);
    update(1, 1, 0x21);
    const f = pub(RM, "finalize-record", [b16(1)], provider);
    expect(f.result).toBeOk(Cl.bool(true));
    printEvent(f.events, RM, "record-finalized");
    expect(recordInfo(1).finalized).toStrictEqual(Cl.bool(true));

    expect(update(1, 2, 0x22).result).toBeErr(u(213));
    expect(
      pub(RM, "rollback-record", [b16(1), u(2), u(1)], provider).result,
    ).toBeErr(u(213));
    expect(recordFn("finalize-record", 1)).toBeErr(u(213));
    expect(recordFn("unlock-record", 1)).toBeErr(u(207));

    expect(grantAccess(provider, LEVEL_ADMIN).result).toBeOk(Cl.bool(true));
    const ul = pub(RM, "unlock-record", [b16(1)], provider);
    expect(ul.result).toBeOk(Cl.bool(true));
    printEvent(ul.events, RM, "record-unlocked");
    expect(recordFn("unlock-record", 1)).toBeErr(u(214));
    expect(update(1, 2, 0x22).result).toBeOk(u(3));
  });

  it("rollback-record makes an old hash current as a new version", () => {
    setup();
    create(1, 0x11);
    update(1, 1, 0x21);
    expect(pub(RM, "rollback-record", [b16(1), u(2), u(2)], provider).result).toBeErr(u(219));
    expect(pub(RM, "rollback-record", [b16(1), u(2), u(7)], provider).result).toBeErr(u(219));
    expect(pub(RM, "rollback-record", [b16(1), u(1), u(1)], provider).result).toBeErr(u(212));

    const r = pub(RM, "rollback-record", [b16(1), u(2), u(1)], provider);
    expect(r.result).toBeOk(u(3));
    const ev = printEvent(r.events, RM, "record-rolled-back");
    expect(ev).toBeTuple({
      event: Cl.stringAscii("record-rolled-back"),
      schema: u(1),
      "record-id": b16(1),
      patient: p(patient),
      version: u(3),
      "target-version": u(1),
      "data-hash": b32(0x11),
      "encryption-key-id": Cl.none(),
      "updated-by": p(provider),
      at: expect.anything(),
    });

    const info = recordInfo(1);
    expect(info["data-hash"]).toStrictEqual(b32(0x11));
    expect(info.version).toStrictEqual(u(3));
    expect(info.change).toStrictEqual(u(3));
    expect(ro(RM, "get-record-version", [b16(1), u(3)])).toBeSome(
      expect.toBeTuple({
        "data-hash": b32(0x11),
        "encryption-key-id": Cl.none(),
        author: p(provider),
        at: u(uintField(ev, "at")),
        change: u(3),
      }),
    );
    expect(ro(RM, "get-record-version", [b16(1), u(2)])).toBeSome(
      expect.toBeTuple({
        "data-hash": b32(0x21),
        "encryption-key-id": Cl.some(b32(0xee)),
        author: p(provider),
        at: expect.anything(),
        change: u(2),
      }),
    );
    // The hash keeps its original anchor entry.
    expect(ro(RM, "get-anchor", [b32(0x11)])).toBeSome(
      Cl.tuple({ "record-id": b16(1), version: u(1) }),
    );
    // History only grows: roll forward to v2's hash as v4.
    expect(pub(RM, "rollback-record", [b16(1), u(3), u(2)], provider).result).toBeOk(u(4));
    expect(recordInfo(1)["data-hash"]).toStrictEqual(b32(0x21));
  });

  it("archive needs ADMIN; archived records refuse writes; purge after retention", () => {
    expect(pub(RM, "set-retention-period", [u(0)], deployer).result).toBeErr(u(226));
    expect(pub(RM, "set-retention-period", [u(5259601)], deployer).result).toBeErr(u(226));
    expect(pub(RM, "set-retention-period", [u(50)], outsider).result).toBeErr(u(200));
    expect(pub(RM, "set-retention-period", [u(50)], deployer).result).toBeOk(Cl.bool(true));
    expect(ro(RM, "get-retention-period", [])).toBeUint(50);
    setup();
    const c = create(1, 0x11);
    const retentionUntil = uintField(c.events[0].data.value, "retention-until");
    expect(retentionUntil).toBe(uintField(c.events[0].data.value, "at") + 50);

    expect(recordFn("archive-record", 1)).toBeErr(u(207));
    expect(recordFn("purge-record", 1, deployer)).toBeErr(u(228));
    grantAccess(provider, LEVEL_ADMIN);
    expect(recordFn("finalize-record", 1)).toBeOk(Cl.bool(true));
    const a = pub(RM, "archive-record", [b16(1)], provider);
    expect(a.result).toBeOk(Cl.bool(true));
    printEvent(a.events, RM, "record-archived");
    expect(recordInfo(1).status).toStrictEqual(u(2));
    expect(recordInfo(1).finalized).toStrictEqual(Cl.bool(true));
    expect(recordFn("archive-record", 1)).toBeErr(u(215));
    expect(update(1, 1, 0x21).result).toBeErr(u(215));
    expect(recordFn("finalize-record", 1)).toBeErr(u(215));
    // Unlocking an archived record would not make it writable: refused.
    expect(recordFn("unlock-record", 1)).toBeErr(u(215));

    expect(recordFn("purge-record", 1, provider)).toBeErr(u(200));
    // Public calls run one burn block after what read-only calls see.
    mineToBurnHeight(retentionUntil - 2);
    expect(recordFn("purge-record", 1, deployer)).toBeErr(u(216));
    const pg = pub(RM, "purge-record", [b16(1)], deployer);
    expect(pg.result).toBeOk(Cl.bool(true));
    printEvent(pg.events, RM, "record-purged");
    expect(recordInfo(1).status).toStrictEqual(u(3));
    // The anchor stays as proof.
    expect(ro(RM, "get-anchor", [b32(0x11)])).toBeSome(
      Cl.tuple({ "record-id": b16(1), version: u(1) }),
    );
  });

  it("get-record leaves an access trace; the patient may read", () => {
    setup();
    create(1, 0x11);
    const r = pub(RM, "get-record", [b16(1)], patient);
    expect(r.result).toBeOk(expect.toBeTuple({ ...recordInfo(1) }));
    expect(printEvent(r.events, RM, "record-accessed")).toBeTuple({
      event: Cl.stringAscii("record-accessed"),
      schema: u(1),
      "record-id": b16(1),
      patient: p(patient),
      accessor: p(patient),
      access: u(0),
      version: u(1),
      at: expect.anything(),
    });
    expect(recordFn("get-record", 1, outsider)).toBeErr(u(107));
    expect(recordFn("get-record", 9, outsider)).toBeErr(u(209));
    // A patient can never write their own record.
    expect(update(1, 1, 0x21, patient).result).toBeErr(u(200));
  });
});

describe("emergency path", () => {
  function emergencySetup() {
    registerPatient(patient);
    expect(
      pub(PC, "set-emergency-responder", [p(responder), Cl.bool(true)], deployer).result,
    ).toBeOk(Cl.bool(true));
    expect(pub(PC, "emergency-override", [p(patient), u(1)], responder).result).toBeOk(
      expect.anything(),
    );
  }

  it("an unregistered responder cannot create records (u201)", () => {
    emergencySetup();
    expect(create(1, 0x11, RECORD_VITALS, responder).result).toBeErr(u(201));
  });

  it("a registered responder with an active override may create and read, never update (u217)", () => {
    emergencySetup();
    registerProvider(responder);
    // No provider-access grant: the emergency override is enough to create.
    const r = create(1, 0x11, RECORD_VITALS, responder);
    expect(r.result).toBeOk(u(1));
    const ev = printEvent(r.events, RM, "record-created");
    if (ev.type !== "tuple") throw new Error("tuple");
    expect(ev.value.access).toStrictEqual(u(2)); // ACCESS-EMERGENCY
    expect(ev.value["created-by"]).toStrictEqual(p(responder));

    const g = pub(RM, "get-record", [b16(1)], responder);
    expect(g.result).toBeOk(expect.anything());
    if (g.events[0].data.value?.type !== "tuple") throw new Error("tuple");
    expect(g.events[0].data.value.value.access).toStrictEqual(u(2));

    expect(update(1, 1, 0x21, responder).result).toBeErr(u(217));
    expect(pub(RM, "rollback-record", [b16(1), u(1), u(1)], responder).result).toBeErr(u(217));
    expect(recordFn("finalize-record", 1, responder)).toBeErr(u(217));
    expect(recordFn("archive-record", 1, responder)).toBeErr(u(217));
    // Enhanced types stay closed unless the patient's preferences allow them.
    expect(create(2, 0x12, RECORD_MENTAL_HEALTH, responder).result).toBeErr(u(116));

    // After the override ends, the responder has nothing.
    expect(
      pub(PC, "end-emergency-override", [p(patient), p(responder)], patient).result,
    ).toBeOk(expect.anything());
    expect(create(3, 0x13, RECORD_VITALS, responder).result).toBeErr(u(107));
  });
});

describe("anchors", () => {
  it("anchor-batch by a provider or an anchor operator", () => {
    registerProvider(provider);
    expect(pub(RM, "anchor-batch", [b32(0x51), u(0)], provider).result).toBeErr(u(223));
    const r = pub(RM, "anchor-batch", [b32(0x51), u(8)], provider);
    expect(r.result).toBeOk(Cl.bool(true));
    const at = uintField(printEvent(r.events, RM, "batch-anchored"), "at");
    expect(ro(RM, "get-batch", [b32(0x51)])).toBeSome(
      Cl.tuple({ submitter: p(provider), "leaf-count": u(8), at: u(at) }),
    );
    expect(pub(RM, "anchor-batch", [b32(0x51), u(3)], provider).result).toBeErr(u(222));
    // Leaf counts fit in 64 bits.
    expect(pub(RM, "anchor-batch", [b32(0x54), u(2n ** 64n)], provider).result).toBeErr(u(223));
    expect(pub(RM, "anchor-batch", [b32(0x54), u(2n ** 64n - 1n)], provider).result).toBeOk(
      Cl.bool(true),
    );

    expect(pub(RM, "anchor-batch", [b32(0x52), u(1)], outsider).result).toBeErr(u(225));
    expect(
      pub(RM, "set-anchor-operator", [p(outsider), Cl.bool(true)], provider).result,
    ).toBeErr(u(200));
    const op = pub(RM, "set-anchor-operator", [p(outsider), Cl.bool(true)], deployer);
    expect(op.result).toBeOk(Cl.bool(true));
    printEvent(op.events, RM, "anchor-operator-set");
    expect(ro(RM, "is-anchor-operator", [p(outsider)])).toBeBool(true);
    expect(pub(RM, "anchor-batch", [b32(0x52), u(1)], outsider).result).toBeOk(Cl.bool(true));

    // An inactive provider is no longer a submitter; pause stops everyone.
    pub(RM, "set-provider-active", [p(provider), Cl.bool(false)], deployer);
    expect(pub(RM, "anchor-batch", [b32(0x53), u(1)], provider).result).toBeErr(u(225));
    pub(PC, "pause", [], deployer);
    expect(pub(RM, "anchor-batch", [b32(0x53), u(1)], outsider).result).toBeErr(u(110));
  });

  it("anchor-audit-root sizes only grow (u224 on a stale size), per log", () => {
    registerProvider(provider);
    expect(pub(RM, "anchor-audit-root", [u(10), b32(0x61)], outsider).result).toBeErr(u(225));
    expect(pub(RM, "anchor-audit-root", [u(0), b32(0x60)], provider).result).toBeErr(u(224));
    const r = pub(RM, "anchor-audit-root", [u(10), b32(0x61)], provider);
    expect(r.result).toBeOk(Cl.bool(true));
    const at = uintField(printEvent(r.events, RM, "audit-root-anchored"), "at");
    expect(pub(RM, "anchor-audit-root", [u(10), b32(0x62)], provider).result).toBeErr(u(224));
    expect(pub(RM, "anchor-audit-root", [u(9), b32(0x62)], provider).result).toBeErr(u(224));
    const r2 = pub(RM, "anchor-audit-root", [u(11), b32(0x63)], provider);
    expect(r2.result).toBeOk(Cl.bool(true));
    const at2 = uintField(r2.events[0].data.value, "at");
    // Tree sizes fit in 64 bits.
    expect(pub(RM, "anchor-audit-root", [u(2n ** 64n), b32(0x64)], provider).result).toBeErr(
      u(223),
    );

    expect(ro(RM, "get-audit-head", [p(provider)])).toBeSome(
      Cl.tuple({ "tree-size": u(11), root: b32(0x63), at: u(at2) }),
    );
    expect(ro(RM, "get-audit-checkpoint", [p(provider), u(10)])).toBeSome(
      Cl.tuple({ root: b32(0x61), at: u(at) }),
    );
    expect(ro(RM, "get-audit-checkpoint", [p(provider), u(9)])).toBeNone();

    // Another submitter has its own log.
    pub(RM, "set-anchor-operator", [p(outsider), Cl.bool(true)], deployer);
    expect(pub(RM, "anchor-audit-root", [u(1), b32(0x71)], outsider).result).toBeOk(
      Cl.bool(true),
    );
    expect(ro(RM, "get-audit-head", [p(outsider)])).toBeSome(
      expect.toBeTuple({ "tree-size": u(1), root: b32(0x71), at: expect.anything() }),
    );
  });
});

describe("ownership", () => {
  it("moves in two steps", () => {
    expect(pub(RM, "propose-owner", [p(outsider)], provider).result).toBeErr(u(200));
    expect(pub(RM, "propose-owner", [p(outsider)], deployer).result).toBeOk(Cl.bool(true));
    expect(pub(RM, "accept-ownership", [], provider).result).toBeErr(u(227));
    const r = pub(RM, "accept-ownership", [], outsider);
    expect(r.result).toBeOk(Cl.bool(true));
    printEvent(r.events, RM, "owner-changed");
    expect(ro(RM, "get-contract-owner", [])).toBePrincipal(outsider);
    expect(pub(RM, "register-provider", [p(provider), b32(1)], deployer).result).toBeErr(u(200));
    expect(pub(RM, "register-provider", [p(provider), b32(1)], outsider).result).toBeOk(
      Cl.bool(true),
    );
  });
});

describe("print events", () => {
  it("create-record prints the documented tuple", () => {
    setup();
    const r = create(1, 0x11);
    expect(r.events).toHaveLength(1);
    expect(r.events[0].event).toBe("print_event");
    expect(r.events[0].data.value).toBeTuple({
      event: Cl.stringAscii("record-created"),
      schema: u(1),
      "record-id": b16(1),
      patient: p(patient),
      "record-type": u(RECORD_VITALS),
      "data-type": u(2),
      "data-hash": b32(0x11),
      "encryption-key-id": Cl.none(),
      confidentiality: u(1),
      "created-by": p(provider),
      access: u(1),
      "retention-until": u(burnHeight() + 1577880),
      at: u(burnHeight()),
    });
  });

  it("each state-changing call prints one { event, schema: u1, ... } tuple", () => {
    printEvent(registerProvider(provider).events, RM, "provider-registered");
    registerPatient(patient);
    grantConsent(provider, 0);
    printEvent(grantAccess(provider, LEVEL_ADMIN).events, RM, "provider-access-granted");
    printEvent(create(1, 0x11).events, RM, "record-created");
    printEvent(update(1, 1, 0x21).events, RM, "record-updated");
    printEvent(pub(RM, "get-record", [b16(1)], provider).events, RM, "record-accessed");
    printEvent(
      pub(RM, "rollback-record", [b16(1), u(2), u(1)], provider).events,
      RM,
      "record-rolled-back",
    );
    printEvent(pub(RM, "finalize-record", [b16(1)], provider).events, RM, "record-finalized");
    printEvent(pub(RM, "unlock-record", [b16(1)], provider).events, RM, "record-unlocked");
    printEvent(pub(RM, "archive-record", [b16(1)], provider).events, RM, "record-archived");
    printEvent(
      pub(RM, "revoke-provider-access", [p(provider)], patient).events,
      RM,
      "provider-access-revoked",
    );
    printEvent(pub(RM, "anchor-batch", [b32(0x51), u(2)], provider).events, RM, "batch-anchored");
    printEvent(
      pub(RM, "anchor-audit-root", [u(1), b32(0x61)], provider).events,
      RM,
      "audit-root-anchored",
    );
    printEvent(
      pub(RM, "set-provider-active", [p(provider), Cl.bool(false)], deployer).events,
      RM,
      "provider-status-set",
    );
    printEvent(
      pub(RM, "set-retention-period", [u(144)], deployer).events,
      RM,
      "retention-period-set",
    );
    printEvent(pub(RM, "propose-owner", [p(outsider)], deployer).events, RM, "owner-proposed");
    // A failed call prints nothing.
    expect(create(1, 0x12).events).toHaveLength(0);
  });
});
