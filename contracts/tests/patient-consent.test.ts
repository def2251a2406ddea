import { describe, expect, it } from "vitest";
import { Cl } from "@stacks/transactions";
import {
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
  uintField,
} from "./helpers";

const u = Cl.uint;

function grant(dataType: number, duration?: number, who = patient, to = provider) {
  return pub(
    PC,
    "grant-consent",
    [p(to), u(dataType), duration === undefined ? Cl.none() : Cl.some(u(duration))],
    who,
  );
}

function check(dataType: number, accessor = provider, who = patient) {
  return ro(PC, "check-consent", [p(who), p(accessor), u(dataType)]);
}

function authoriseResponder(who = responder, authorised = true) {
  const r = pub(PC, "set-emergency-responder", [p(who), Cl.bool(authorised)], deployer);
  expect(r.result).toBeOk(Cl.bool(true));
}

describe("register-patient", () => {
  it("registers once, keeps the commitment unique", () => {
    const r = registerPatient(patient, 1);
    const at = uintField(printEvent(r.events, PC, "patient-registered"), "at");

    expect(ro(PC, "get-patient", [p(patient)])).toBeSome(
      Cl.tuple({
        "patient-id": b32(1),
        "emergency-contact": Cl.none(),
        "primary-physician": Cl.none(),
        "emergency-mental-health": Cl.bool(false),
        "emergency-genetic": Cl.bool(false),
        deceased: Cl.bool(false),
        "registered-at": u(at),
        "updated-at": u(at),
        "history-len": u(1),
      }),
    );
    expect(ro(PC, "get-patient-by-id", [b32(1)])).toBeSome(p(patient));

    // Same principal again.
    expect(
      pub(PC, "register-patient", [b32(2), Cl.none(), Cl.none()], patient).result,
    ).toBeErr(u(102));
    // Same commitment, another principal.
    expect(
      pub(PC, "register-patient", [b32(1), Cl.none(), Cl.none()], provider).result,
    ).toBeErr(u(103));
    expect(ro(PC, "get-patient", [p(provider)])).toBeNone();
    expect(ro(PC, "get-patient-by-id", [b32(1)])).toBeSome(p(patient));
  });

  it("check-patient and check-consent of an unknown patient fail with u101", () => {
    expect(ro(PC, "check-patient", [p(patient)])).toBeErr(u(101));
    expect(check(1)).toBeErr(u(101));
    expect(grant(1).result).toBeErr(u(101));
    registerPatient(patient);
    expect(ro(PC, "check-patient", [p(patient)])).toBeOk(Cl.bool(true));
  });
});

describe("grant-consent / check-consent", () => {
  it("grants one data type", () => {
    registerPatient(patient);
    expect(check(1)).toBeErr(u(107));
    expect(ro(PC, "has-consent", [p(patient), p(provider), u(1)])).toBeBool(false);

    const r = grant(1);
    expect(r.result).toBeOk(u(1)); // history seq (u0 is the registration)
    const at = uintField(printEvent(r.events, PC, "consent-granted"), "at");

    expect(ro(PC, "has-consent", [p(patient), p(provider), u(1)])).toBeBool(true);
    expect(check(1)).toBeOk(u(1)); // ACCESS-CONSENT
    expect(check(2)).toBeErr(u(107));
    expect(check(1, outsider)).toBeErr(u(107));
    // The patient always has access to their own data.
    expect(check(5, patient)).toBeOk(u(0)); // ACCESS-SELF
    expect(ro(PC, "get-consent", [p(patient), p(provider), u(1)])).toBeSome(
      Cl.tuple({
        "granted-at": u(at),
        "expires-at": Cl.none(),
        "revoked-at": Cl.none(),
        seq: u(1),
      }),
    );
  });

  it("validates its arguments", () => {
    registerPatient(patient);
    expect(grant(9).result).toBeErr(u(104));
    expect(grant(1, 0).result).toBeErr(u(105));
    // At most 100 years (5,259,600 burn blocks); huge values fail cleanly
    // instead of overflowing burn-block-height + duration.
    expect(grant(1, 5259601).result).toBeErr(u(105));
    expect(
      pub(PC, "grant-consent", [p(provider), u(1), Cl.some(u(2n ** 128n - 1n))], patient).result,
    ).toBeErr(u(105));
    expect(grant(1, undefined, patient, patient).result).toBeErr(u(106));
    // check-consent only takes concrete data types (1-8).
    expect(check(0)).toBeErr(u(104));
    expect(check(9)).toBeErr(u(104));
    expect(ro(PC, "get-history-length", [p(patient)])).toBeUint(1);
    expect(grant(1, 5259600).result).toBeOk(u(1));
    expect(ro(PC, "get-history-length", [p(patient)])).toBeUint(2);
  });

  it("a broad grant (u0) covers standard types but not mental health (u5) or genetic (u6)", () => {
    registerPatient(patient);
    expect(grant(0).result).toBeOk(u(1));
    for (const dt of [1, 2, 3, 4, 7, 8]) {
      expect(check(dt), `data type ${dt}`).toBeOk(u(1));
    }
    expect(check(5)).toBeErr(u(107));
    expect(check(6)).toBeErr(u(107));
    expect(ro(PC, "has-consent", [p(patient), p(provider), u(5)])).toBeBool(false);

    // Enhanced types must be granted by name.
    expect(grant(5).result).toBeOk(u(2));
    expect(check(5)).toBeOk(u(1));
    expect(check(6)).toBeErr(u(107));
  });

  it("revoke-consent stops access with u109", () => {
    registerPatient(patient);
    const grantedAt = uintField(grant(1).events[0].data.value, "at");
    const r = pub(PC, "revoke-consent", [p(provider), u(1)], patient);
    expect(r.result).toBeOk(u(2));
    const at = uintField(printEvent(r.events, PC, "consent-revoked"), "at");

    expect(check(1)).toBeErr(u(109));
    expect(ro(PC, "has-consent", [p(patient), p(provider), u(1)])).toBeBool(false);
    expect(ro(PC, "get-consent", [p(patient), p(provider), u(1)])).toBeSome(
      Cl.tuple({
        "granted-at": u(grantedAt),
        "expires-at": Cl.none(),
        "revoked-at": Cl.some(u(at)),
        seq: u(1),
      }),
    );

    // Twice, or something never granted.
    expect(pub(PC, "revoke-consent", [p(provider), u(1)], patient).result).toBeErr(u(109));
    expect(pub(PC, "revoke-consent", [p(provider), u(2)], patient).result).toBeErr(u(107));

    // Granting again replaces the revoked entry.
    expect(grant(1).result).toBeOk(u(3));
    expect(check(1)).toBeOk(u(1));
  });

  it("reports the most specific reason between a specific and a broad grant", () => {
    registerPatient(patient);
    grant(0);
    // Broad revoked, no specific grant: the broad grant's reason.
    pub(PC, "revoke-consent", [p(provider), u(0)], patient);
    expect(check(2)).toBeErr(u(109));
    // Specific grant active: allowed.
    grant(2);
    expect(check(2)).toBeOk(u(1));
    // Specific revoked, broad re-granted: the broad grant still allows.
    pub(PC, "revoke-consent", [p(provider), u(2)], patient);
    expect(check(2)).toBeErr(u(109));
    grant(0);
    expect(check(2)).toBeOk(u(1));
  });

  it("a grant with a duration expires at granted burn height + duration (u108)", () => {
    registerPatient(patient);
    const r = grant(1, 10);
    expect(r.result).toBeOk(u(1));
    const ev = printEvent(r.events, PC, "consent-granted");
    const at = uintField(ev, "at");
    const expiresAt = uintField(ev, "expires-at");
    expect(expiresAt).toBe(at + 10);
    // Read-only calls right after the transaction see its burn height.
    expect(burnHeight()).toBe(at);
    expect(ro(PC, "get-consent", [p(patient), p(provider), u(1)])).toBeSome(
      Cl.tuple({
        "granted-at": u(at),
        "expires-at": Cl.some(u(expiresAt)),
        "revoked-at": Cl.none(),
        seq: u(1),
      }),
    );

    // Valid while burn-block-height < expires-at.
    mineToBurnHeight(expiresAt - 1);
    expect(check(1)).toBeOk(u(1));
    mineToBurnHeight(expiresAt);
    expect(check(1)).toBeErr(u(108));
    expect(ro(PC, "has-consent", [p(patient), p(provider), u(1)])).toBeBool(false);

    // Revocation reason wins over expiry.
    expect(pub(PC, "revoke-consent", [p(provider), u(1)], patient).result).toBeOk(u(2));
    expect(check(1)).toBeErr(u(109));
  });

  it("burn height advances with mineEmptyBurnBlocks too (epoch 2.4 simnet)", () => {
    registerPatient(patient);
    const r = grant(3, 5);
    const expiresAt = uintField(printEvent(r.events, PC, "consent-granted"), "expires-at");
    const before = burnHeight();
    simnet.mineEmptyBurnBlocks(expiresAt - before - 1);
    expect(burnHeight()).toBe(expiresAt - 1);
    expect(check(3)).toBeOk(u(1));
    simnet.mineEmptyBurnBlock();
    expect(burnHeight()).toBe(expiresAt);
    expect(check(3)).toBeErr(u(108));
  });
});

describe("emergency override", () => {
  it("only the owner credentials responders", () => {
    expect(
      pub(PC, "set-emergency-responder", [p(responder), Cl.bool(true)], outsider).result,
    ).toBeErr(u(100));
    expect(ro(PC, "is-emergency-responder", [p(responder)])).toBeBool(false);
    authoriseResponder();
    expect(ro(PC, "is-emergency-responder", [p(responder)])).toBeBool(true);
  });

  it("an uncredentialed provider gets u112", () => {
    registerPatient(patient);
    expect(pub(PC, "emergency-override", [p(patient), u(1)], outsider).result).toBeErr(u(112));
    authoriseResponder(outsider);
    authoriseResponder(outsider, false);
    expect(pub(PC, "emergency-override", [p(patient), u(1)], outsider).result).toBeErr(u(112));
    expect(check(1, outsider)).toBeErr(u(107));
  });

  it("validates patient, reason and self-override", () => {
    authoriseResponder();
    expect(pub(PC, "emergency-override", [p(patient), u(1)], responder).result).toBeErr(u(101));
    registerPatient(patient);
    expect(pub(PC, "emergency-override", [p(patient), u(0)], responder).result).toBeErr(u(118));
    expect(pub(PC, "emergency-override", [p(patient), u(256)], responder).result).toBeErr(u(118));
    registerPatient(responder, 3);
    expect(pub(PC, "emergency-override", [p(responder), u(1)], responder).result).toBeErr(u(106));
  });

  it("allows standard types for the timeout (432 burn blocks) and then expires (u115)", () => {
    registerPatient(patient);
    authoriseResponder();
    const r = pub(PC, "emergency-override", [p(patient), u(7)], responder);
    const ev = printEvent(r.events, PC, "emergency-override-started");
    const at = uintField(ev, "at");
    const expiresAt = at + 432;
    expect(r.result).toBeOk(u(expiresAt));
    expect(uintField(ev, "expires-at")).toBe(expiresAt);
    expect(ro(PC, "get-emergency-override", [p(patient), p(responder)])).toBeSome(
      Cl.tuple({ reason: u(7), "started-at": u(at), "expires-at": u(expiresAt), seq: u(1) }),
    );

    expect(check(2, responder)).toBeOk(u(2)); // ACCESS-EMERGENCY
    expect(check(8, responder)).toBeOk(u(2));
    // Enhanced types need the patient's emergency preferences.
    expect(check(5, responder)).toBeErr(u(116));
    expect(check(6, responder)).toBeErr(u(116));
    // One active override per (patient, provider).
    expect(pub(PC, "emergency-override", [p(patient), u(7)], responder).result).toBeErr(u(113));

    mineToBurnHeight(expiresAt - 1);
    expect(check(2, responder)).toBeOk(u(2));
    mineToBurnHeight(expiresAt);
    expect(check(2, responder)).toBeErr(u(115));
    expect(ro(PC, "has-consent", [p(patient), p(responder), u(2)])).toBeBool(false);

    // An expired override may be started again.
    const again = pub(PC, "emergency-override", [p(patient), u(7)], responder);
    expect(again.result).toBeOk(u(uintField(again.events[0].data.value, "at") + 432));
    expect(check(2, responder)).toBeOk(u(2));
  });

  it("honours enhanced-type preferences and the configured timeout", () => {
    registerPatient(patient);
    authoriseResponder();
    expect(
      pub(
        PC,
        "update-patient-preferences",
        [Cl.none(), Cl.none(), Cl.bool(true), Cl.bool(false)],
        patient,
      ).result,
    ).toBeOk(u(1));

    expect(pub(PC, "set-emergency-timeout", [u(6)], outsider).result).toBeErr(u(100));
    expect(pub(PC, "set-emergency-timeout", [u(0)], deployer).result).toBeErr(u(117));
    expect(pub(PC, "set-emergency-timeout", [u(4321)], deployer).result).toBeErr(u(117));
    expect(pub(PC, "set-emergency-timeout", [u(6)], deployer).result).toBeOk(Cl.bool(true));
    expect(ro(PC, "get-emergency-timeout", [])).toBeUint(6);

    const r = pub(PC, "emergency-override", [p(patient), u(1)], responder);
    const expiresAt = uintField(r.events[0].data.value, "at") + 6;
    expect(r.result).toBeOk(u(expiresAt));
    expect(check(5, responder)).toBeOk(u(2));
    expect(check(6, responder)).toBeErr(u(116));
    mineToBurnHeight(expiresAt);
    expect(check(5, responder)).toBeErr(u(115));
  });

  it("withdrawing the responder credential ends an active override at once (u115)", () => {
    registerPatient(patient);
    authoriseResponder();
    expect(pub(PC, "emergency-override", [p(patient), u(1)], responder).result).toBeOk(
      expect.anything(),
    );
    expect(check(1, responder)).toBeOk(u(2));
    authoriseResponder(responder, false);
    expect(check(1, responder)).toBeErr(u(115));
    // Re-credentialing revives the unexpired override.
    authoriseResponder(responder, true);
    expect(check(1, responder)).toBeOk(u(2));
  });

  it("direct consent is reported before an expired override", () => {
    registerPatient(patient);
    authoriseResponder();
    grant(1, undefined, patient, responder);
    pub(PC, "set-emergency-timeout", [u(1)], deployer);
    pub(PC, "emergency-override", [p(patient), u(1)], responder);
    simnet.mineEmptyBlocks(2);
    expect(check(1, responder)).toBeOk(u(1));
    expect(check(2, responder)).toBeErr(u(115));
  });

  it("end-emergency-override by the patient, provider or owner only", () => {
    registerPatient(patient);
    authoriseResponder();
    pub(PC, "emergency-override", [p(patient), u(1)], responder);
    expect(
      pub(PC, "end-emergency-override", [p(patient), p(responder)], outsider).result,
    ).toBeErr(u(100));
    const r = pub(PC, "end-emergency-override", [p(patient), p(responder)], patient);
    expect(r.result).toBeOk(u(2));
    expect(printEvent(r.events, PC, "emergency-override-ended")).toBeTuple({
      event: Cl.stringAscii("emergency-override-ended"),
      schema: u(1),
      patient: p(patient),
      provider: p(responder),
      "ended-by": p(patient),
      seq: u(2),
      at: expect.anything(),
    });
    expect(ro(PC, "get-emergency-override", [p(patient), p(responder)])).toBeNone();
    expect(check(1, responder)).toBeErr(u(107));
    expect(
      pub(PC, "end-emergency-override", [p(patient), p(responder)], deployer).result,
    ).toBeErr(u(114));
  });
});

describe("pause", () => {
  it("only the owner pauses; paused blocks grants but never revocations", () => {
    registerPatient(patient);
    grant(1);
    authoriseResponder();

    expect(pub(PC, "pause", [], outsider).result).toBeErr(u(100));
    const r = pub(PC, "pause", [], deployer);
    expect(r.result).toBeOk(Cl.bool(true));
    printEvent(r.events, PC, "paused-set");
    expect(ro(PC, "is-paused", [])).toBeBool(true);

    expect(grant(2).result).toBeErr(u(110));
    expect(
      pub(PC, "register-patient", [b32(9), Cl.none(), Cl.none()], outsider).result,
    ).toBeErr(u(110));
    expect(pub(PC, "emergency-override", [p(patient), u(1)], responder).result).toBeErr(u(110));
    expect(
      pub(PC, "update-patient-preferences", [Cl.none(), Cl.none(), Cl.bool(false), Cl.bool(false)], patient)
        .result,
    ).toBeErr(u(110));
    expect(check(1)).toBeErr(u(110));
    expect(ro(PC, "check-patient", [p(patient)])).toBeErr(u(110));

    // Withdrawing access is never blocked.
    expect(pub(PC, "revoke-consent", [p(provider), u(1)], patient).result).toBeOk(u(2));

    expect(pub(PC, "unpause", [], outsider).result).toBeErr(u(100));
    expect(pub(PC, "unpause", [], deployer).result).toBeOk(Cl.bool(true));
    expect(ro(PC, "is-paused", [])).toBeBool(false);
    expect(check(1)).toBeErr(u(109));
    expect(grant(2).result).toBeOk(u(3));
  });
});

describe("set-deceased", () => {
  it("stops access with u111; owner or primary physician only; revocation still works", () => {
    registerPatient(patient, 1, provider);
    grant(1, undefined, patient, outsider);

    expect(pub(PC, "set-deceased", [p(patient), Cl.bool(true)], outsider).result).toBeErr(u(100));
    expect(pub(PC, "set-deceased", [p(responder), Cl.bool(true)], deployer).result).toBeErr(
      u(101),
    );
    const r = pub(PC, "set-deceased", [p(patient), Cl.bool(true)], deployer);
    expect(r.result).toBeOk(u(2));
    printEvent(r.events, PC, "deceased-status-set");

    expect(check(1, outsider)).toBeErr(u(111));
    expect(check(1, patient)).toBeErr(u(111));
    expect(ro(PC, "check-patient", [p(patient)])).toBeErr(u(111));
    expect(grant(2, undefined, patient, outsider).result).toBeErr(u(111));
    expect(pub(PC, "revoke-consent", [p(outsider), u(1)], patient).result).toBeOk(u(3));

    // The primary physician may correct it.
    expect(pub(PC, "set-deceased", [p(patient), Cl.bool(false)], provider).result).toBeOk(u(4));
    expect(check(1, outsider)).toBeErr(u(109));
    expect(check(1, patient)).toBeOk(u(0));
  });
});

describe("consent history", () => {
  it("has one entry per action, in order", () => {
    authoriseResponder();
    const seqs = [
      registerPatient(patient, 1, provider).result,
      grant(1, 20).result,
      pub(PC, "revoke-consent", [p(provider), u(1)], patient).result,
      pub(
        PC,
        "update-patient-preferences",
        [Cl.some(p(outsider)), Cl.some(p(provider)), Cl.bool(true), Cl.bool(true)],
        patient,
      ).result,
      pub(PC, "emergency-override", [p(patient), u(3)], responder).result,
      pub(PC, "end-emergency-override", [p(patient), p(responder)], responder).result,
      pub(PC, "set-deceased", [p(patient), Cl.bool(true)], deployer).result,
    ];
    expect(seqs[0]).toBeOk(Cl.bool(true));
    seqs.slice(1).forEach((s, i) => {
      if (i === 3) return; // emergency-override returns its expiry
      expect(s).toBeOk(u(i + 1));
    });
    expect(ro(PC, "get-history-length", [p(patient)])).toBeUint(7);
    expect(ro(PC, "get-history-length", [p(outsider)])).toBeUint(0);

    const entry = (seq: number) => ro(PC, "get-history-entry", [p(patient), u(seq)]);
    const expected: [number, string, string | null, number | null, boolean][] = [
      // action, actor, provider, data-type, has expires-at
      [1, patient, null, null, false],
      [2, patient, provider, 1, true],
      [3, patient, provider, 1, false],
      [6, patient, null, null, false],
      [4, responder, responder, null, true],
      [5, responder, responder, null, false],
      [7, deployer, null, null, false],
    ];
    expected.forEach(([action, actor, prov, dt, hasExpiry], seq) => {
      const e = entry(seq);
      if (e.type !== "some" || e.value.type !== "tuple") throw new Error(`entry ${seq}`);
      const t = e.value.value;
      expect(t.action, `action of ${seq}`).toStrictEqual(u(action));
      expect(t.actor).toStrictEqual(p(actor));
      expect(t.provider).toStrictEqual(prov ? Cl.some(p(prov)) : Cl.none());
      expect(t["data-type"]).toStrictEqual(dt === null ? Cl.none() : Cl.some(u(dt)));
      expect(t["expires-at"].type).toBe(hasExpiry ? "some" : "none");
    });
    expect(entry(7)).toBeNone();

    // The profile carries the preferences and the deceased flag.
    expect(ro(PC, "get-patient", [p(patient)])).toBeSome(
      expect.toBeTuple({
        "patient-id": b32(1),
        "emergency-contact": Cl.some(p(outsider)),
        "primary-physician": Cl.some(p(provider)),
        "emergency-mental-health": Cl.bool(true),
        "emergency-genetic": Cl.bool(true),
        deceased: Cl.bool(true),
        "registered-at": expect.anything(),
        "updated-at": expect.anything(),
        "history-len": u(7),
      }),
    );
  });
});

describe("ownership", () => {
  it("moves in two steps", () => {
    expect(pub(PC, "propose-owner", [p(outsider)], provider).result).toBeErr(u(100));
    expect(pub(PC, "propose-owner", [p(outsider)], deployer).result).toBeOk(Cl.bool(true));
    expect(ro(PC, "get-pending-owner", [])).toBeSome(p(outsider));
    expect(pub(PC, "accept-ownership", [], provider).result).toBeErr(u(119));
    expect(pub(PC, "accept-ownership", [], outsider).result).toBeOk(Cl.bool(true));
    expect(ro(PC, "get-contract-owner", [])).toBePrincipal(outsider);
    expect(ro(PC, "get-pending-owner", [])).toBeNone();
    expect(pub(PC, "pause", [], deployer).result).toBeErr(u(100));
    expect(pub(PC, "pause", [], outsider).result).toBeOk(Cl.bool(true));
  });
});

describe("print events", () => {
  it("register-patient prints the documented tuple", () => {
    const r = registerPatient(patient, 1);
    expect(r.events).toHaveLength(1);
    expect(r.events[0].event).toBe("print_event");
    expect(r.events[0].data.value).toBeTuple({
      event: Cl.stringAscii("patient-registered"),
      schema: u(1),
      patient: p(patient),
      "patient-id": b32(1),
      "emergency-contact": Cl.none(),
      "primary-physician": Cl.none(),
      seq: u(0),
      at: u(burnHeight()),
    });
    expect(Cl.prettyPrint(r.events[0].data.value!)).toContain('event: "patient-registered"');
  });

  it("grant, revoke, preferences, emergency, deceased, admin calls print event + schema u1", () => {
    registerPatient(patient, 1, provider);
    const g = grant(4, 30);
    const gv = printEvent(g.events, PC, "consent-granted");
    expect(gv).toBeTuple({
      event: Cl.stringAscii("consent-granted"),
      schema: u(1),
      patient: p(patient),
      provider: p(provider),
      "data-type": u(4),
      "expires-at": Cl.some(u(uintField(gv, "at") + 30)),
      seq: u(1),
      at: expect.anything(),
    });
    printEvent(pub(PC, "revoke-consent", [p(provider), u(4)], patient).events, PC, "consent-revoked");
    printEvent(
      pub(
        PC,
        "update-patient-preferences",
        [Cl.none(), Cl.some(p(provider)), Cl.bool(false), Cl.bool(true)],
        patient,
      )
        .events,
      PC,
      "preferences-updated",
    );
    printEvent(
      pub(PC, "set-emergency-responder", [p(responder), Cl.bool(true)], deployer).events,
      PC,
      "emergency-responder-set",
    );
    printEvent(
      pub(PC, "emergency-override", [p(patient), u(2)], responder).events,
      PC,
      "emergency-override-started",
    );
    printEvent(
      pub(PC, "set-emergency-timeout", [u(144)], deployer).events,
      PC,
      "emergency-timeout-set",
    );
    printEvent(
      pub(PC, "set-deceased", [p(patient), Cl.bool(true)], provider).events,
      PC,
      "deceased-status-set",
    );
    printEvent(pub(PC, "propose-owner", [p(outsider)], deployer).events, PC, "owner-proposed");
    printEvent(pub(PC, "accept-ownership", [], outsider).events, PC, "owner-changed");
    // Failed calls print nothing.
    expect(grant(4).events).toHaveLength(0);
  });
});
