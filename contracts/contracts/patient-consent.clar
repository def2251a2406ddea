;; patient-consent - who may see which kind of a patient's data, and until when.
;;
;; The source of truth for consent in medanchor. The indexer mirrors the
;; `print` events below (documented in EVENTS.md); record-management calls
;; `check-consent` before every record operation.
;;
;; No PHI on-chain: a patient is a principal plus an opaque 32-byte
;; commitment (`patient-id`); everything else here is flags, principals and
;; heights. Demographics live off-chain, encrypted.
;;
;; Time: every height is a `burn-block-height` (one Bitcoin block, ~10 min on
;; mainnet), which means the same on a devnet, on Stacks 2.x and under
;; Nakamoto. Conversions used throughout: 1 h = 6, 1 day = 144,
;; 72 h = 432 burn blocks.

;; ---------------------------------------------------------------- constants

(define-constant EVENT-SCHEMA u1)

;; Data types. DATA-TYPE-ALL-STANDARD is a "broad grant": it covers every
;; type except the enhanced-protection ones (mental health, genetic), which
;; must always be granted by name.
(define-constant DATA-TYPE-ALL-STANDARD u0)
(define-constant DATA-TYPE-BASIC-INFO u1)
(define-constant DATA-TYPE-MEDICAL-HISTORY u2)
(define-constant DATA-TYPE-LAB-RESULTS u3)
(define-constant DATA-TYPE-TREATMENT-PLANS u4)
(define-constant DATA-TYPE-MENTAL-HEALTH u5)
(define-constant DATA-TYPE-GENETIC u6)
(define-constant DATA-TYPE-FINANCIAL u7)
(define-constant DATA-TYPE-EMERGENCY-CONTACTS u8)

;; How an access was allowed (the `ok` value of check-consent).
(define-constant ACCESS-SELF u0)
(define-constant ACCESS-CONSENT u1)
(define-constant ACCESS-EMERGENCY u2)

;; Consent-history actions (one per-patient sequence, never overwritten).
(define-constant ACTION-REGISTERED u1)
(define-constant ACTION-GRANTED u2)
(define-constant ACTION-REVOKED u3)
(define-constant ACTION-EMERGENCY-STARTED u4)
(define-constant ACTION-EMERGENCY-ENDED u5)
(define-constant ACTION-PREFERENCES-UPDATED u6)
(define-constant ACTION-DECEASED-SET u7)

(define-constant DEFAULT-EMERGENCY-TIMEOUT u432) ;; 72 h
(define-constant MAX-EMERGENCY-TIMEOUT u4320) ;; 30 days
(define-constant MAX-EMERGENCY-REASON u255)
;; Longest consent duration: 100 years (keeps every height far below 2^64).
(define-constant MAX-DURATION u5259600)

;; Errors (u100-u199; record-management uses u200-u299).
(define-constant ERR-UNAUTHORIZED (err u100))
(define-constant ERR-PATIENT-NOT-FOUND (err u101))
(define-constant ERR-ALREADY-REGISTERED (err u102))
(define-constant ERR-PATIENT-ID-TAKEN (err u103))
(define-constant ERR-INVALID-DATA-TYPE (err u104))
(define-constant ERR-INVALID-DURATION (err u105))
(define-constant ERR-INVALID-PRINCIPAL (err u106))
(define-constant ERR-NO-CONSENT (err u107))
(define-constant ERR-CONSENT-EXPIRED (err u108))
(define-constant ERR-CONSENT-REVOKED (err u109))
(define-constant ERR-PAUSED (err u110))
(define-constant ERR-PATIENT-DECEASED (err u111))
(define-constant ERR-EMERGENCY-NOT-AUTHORIZED (err u112))
(define-constant ERR-EMERGENCY-ALREADY-ACTIVE (err u113))
(define-constant ERR-NO-EMERGENCY-OVERRIDE (err u114))
(define-constant ERR-EMERGENCY-EXPIRED (err u115))
(define-constant ERR-ENHANCED-PROTECTION (err u116))
(define-constant ERR-INVALID-TIMEOUT (err u117))
(define-constant ERR-INVALID-REASON (err u118))
(define-constant ERR-NOT-PENDING-OWNER (err u119))

;; -------------------------------------------------------------------- state

(define-data-var contract-owner principal tx-sender)
(define-data-var pending-owner (optional principal) none)
(define-data-var paused bool false)
(define-data-var emergency-timeout uint DEFAULT-EMERGENCY-TIMEOUT)

;; A patient. `history-len` is the length of the patient's consent history
;; (the next sequence number); it lives here because every action that
;; appends to the history reads the profile anyway.
(define-map patients
  principal
  {
    patient-id: (buff 32),
    emergency-contact: (optional principal),
    primary-physician: (optional principal),
    emergency-mental-health: bool,
    emergency-genetic: bool,
    deceased: bool,
    registered-at: uint,
    updated-at: uint,
    history-len: uint,
  }
)

;; patient-id commitment -> principal, so one commitment names one patient.
(define-map patient-ids (buff 32) principal)

;; Current consent per (patient, provider, data type). Valid while
;; granted-at <= burn-block-height < expires-at and not revoked.
(define-map consents
  { patient: principal, provider: principal, data-type: uint }
  {
    granted-at: uint,
    expires-at: (optional uint),
    revoked-at: (optional uint),
    seq: uint,
  }
)

;; Append-only consent history: (patient, seq) for seq in [0, history-len).
(define-map consent-history
  { patient: principal, seq: uint }
  {
    action: uint,
    actor: principal,
    provider: (optional principal),
    data-type: (optional uint),
    at: uint,
    expires-at: (optional uint),
  }
)

;; Principals the contract owner has credentialed for break-glass access.
(define-map emergency-responders principal bool)

;; Active (or expired, not yet ended) emergency overrides.
(define-map emergency-overrides
  { patient: principal, provider: principal }
  { reason: uint, started-at: uint, expires-at: uint, seq: uint }
)

;; ------------------------------------------------------------------ helpers

(define-private (is-owner)
  (is-eq contract-caller (var-get contract-owner))
)

(define-private (is-enhanced (data-type uint))
  (or (is-eq data-type DATA-TYPE-MENTAL-HEALTH) (is-eq data-type DATA-TYPE-GENETIC))
)

;; A concrete data type (1-8); the broad grant (0) is only valid in grants.
(define-private (is-data-type (data-type uint))
  (and (>= data-type DATA-TYPE-BASIC-INFO) (<= data-type DATA-TYPE-EMERGENCY-CONTACTS))
)

(define-private (expiry-after (duration (optional uint)))
  (match duration blocks (some (+ burn-block-height blocks)) none)
)

(define-private (valid-duration (duration (optional uint)))
  (match duration blocks (and (> blocks u0) (<= blocks MAX-DURATION)) true)
)

;; Appends one entry to the patient's history and returns the new profile.
(define-private (append-history
    (patient principal)
    (profile {
      patient-id: (buff 32),
      emergency-contact: (optional principal),
      primary-physician: (optional principal),
      emergency-mental-health: bool,
      emergency-genetic: bool,
      deceased: bool,
      registered-at: uint,
      updated-at: uint,
      history-len: uint,
    })
    (action uint)
    (provider (optional principal))
    (data-type (optional uint))
    (expires-at (optional uint))
  )
  (let ((seq (get history-len profile)))
    (map-set consent-history { patient: patient, seq: seq } {
      action: action,
      actor: contract-caller,
      provider: provider,
      data-type: data-type,
      at: burn-block-height,
      expires-at: expires-at,
    })
    (merge profile { history-len: (+ seq u1), updated-at: burn-block-height })
  )
)

;; The state of one consent entry as a check result.
(define-private (entry-status (entry (optional {
    granted-at: uint,
    expires-at: (optional uint),
    revoked-at: (optional uint),
    seq: uint,
  })))
  (match entry
    c (if (is-some (get revoked-at c))
      ERR-CONSENT-REVOKED
      (if (match (get expires-at c) h (>= burn-block-height h) false)
        ERR-CONSENT-EXPIRED
        (ok ACCESS-CONSENT)
      )
    )
    ERR-NO-CONSENT
  )
)

;; Direct consent: the grant for this data type, or for a standard type the
;; broad grant. When neither allows, the most specific reason is returned.
(define-private (consent-status (patient principal) (provider principal) (data-type uint))
  (let ((specific (entry-status (map-get? consents { patient: patient, provider: provider, data-type: data-type }))))
    (if (or (is-ok specific) (is-enhanced data-type))
      specific
      (let ((broad (entry-status (map-get? consents { patient: patient, provider: provider, data-type: DATA-TYPE-ALL-STANDARD }))))
        (if (or (is-ok broad) (is-eq specific ERR-NO-CONSENT)) broad specific)
      )
    )
  )
)

;; Emergency access when there is no direct consent. An override counts
;; only until it expires and while its provider is still a credentialed
;; responder (withdrawing the credential ends it at once). Enhanced types
;; only when the patient's preferences allow them; with no override,
;; `fallback` (the reason direct consent failed) is returned.
(define-private (emergency-status
    (patient principal)
    (provider principal)
    (data-type uint)
    (allow-mental-health bool)
    (allow-genetic bool)
    (fallback (response uint uint))
  )
  (match (map-get? emergency-overrides { patient: patient, provider: provider })
    o (if (or (>= burn-block-height (get expires-at o)) (not (is-emergency-responder provider)))
      ERR-EMERGENCY-EXPIRED
      (if (or
          (not (is-enhanced data-type))
          (and (is-eq data-type DATA-TYPE-MENTAL-HEALTH) allow-mental-health)
          (and (is-eq data-type DATA-TYPE-GENETIC) allow-genetic)
        )
        (ok ACCESS-EMERGENCY)
        ERR-ENHANCED-PROTECTION
      )
    )
    fallback
  )
)

;; ---------------------------------------------------------- read-only: core

;; Why `accessor` may (ok method) or may not (err reason) read `data-type`
;; of `patient` right now. record-management calls this before every record
;; operation; the API uses it to explain a 403.
(define-read-only (check-consent (patient principal) (accessor principal) (data-type uint))
  (let ((profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND)))
    (asserts! (is-data-type data-type) ERR-INVALID-DATA-TYPE)
    (asserts! (not (var-get paused)) ERR-PAUSED)
    (asserts! (not (get deceased profile)) ERR-PATIENT-DECEASED)
    (if (is-eq patient accessor)
      (ok ACCESS-SELF)
      (let ((direct (consent-status patient accessor data-type)))
        (if (is-ok direct)
          direct
          (emergency-status patient accessor data-type
            (get emergency-mental-health profile) (get emergency-genetic profile) direct)
        )
      )
    )
  )
)

(define-read-only (has-consent (patient principal) (provider principal) (data-type uint))
  (is-ok (check-consent patient provider data-type))
)

;; (ok true) when the patient exists, is alive and the contract is running:
;; the precondition of every patient-driven action in record-management.
(define-read-only (check-patient (patient principal))
  (let ((profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND)))
    (asserts! (not (var-get paused)) ERR-PAUSED)
    (asserts! (not (get deceased profile)) ERR-PATIENT-DECEASED)
    (ok true)
  )
)

;; ------------------------------------------------------ read-only: state

(define-read-only (get-patient (patient principal))
  (map-get? patients patient)
)

(define-read-only (get-patient-by-id (patient-id (buff 32)))
  (map-get? patient-ids patient-id)
)

(define-read-only (get-consent (patient principal) (provider principal) (data-type uint))
  (map-get? consents { patient: patient, provider: provider, data-type: data-type })
)

(define-read-only (get-history-length (patient principal))
  (match (map-get? patients patient) p (get history-len p) u0)
)

(define-read-only (get-history-entry (patient principal) (seq uint))
  (map-get? consent-history { patient: patient, seq: seq })
)

(define-read-only (get-emergency-override (patient principal) (provider principal))
  (map-get? emergency-overrides { patient: patient, provider: provider })
)

(define-read-only (is-emergency-responder (provider principal))
  (default-to false (map-get? emergency-responders provider))
)

(define-read-only (is-paused)
  (var-get paused)
)

(define-read-only (get-emergency-timeout)
  (var-get emergency-timeout)
)

(define-read-only (get-contract-owner)
  (var-get contract-owner)
)

(define-read-only (get-pending-owner)
  (var-get pending-owner)
)

;; ------------------------------------------------------------ patient actions

(define-public (register-patient
    (patient-id (buff 32))
    (emergency-contact (optional principal))
    (primary-physician (optional principal))
  )
  (let (
      (patient contract-caller)
      (profile {
        patient-id: patient-id,
        emergency-contact: emergency-contact,
        primary-physician: primary-physician,
        emergency-mental-health: false,
        emergency-genetic: false,
        deceased: false,
        registered-at: burn-block-height,
        updated-at: burn-block-height,
        history-len: u0,
      })
    )
    (asserts! (not (var-get paused)) ERR-PAUSED)
    (asserts! (is-none (map-get? patients patient)) ERR-ALREADY-REGISTERED)
    (asserts! (map-insert patient-ids patient-id patient) ERR-PATIENT-ID-TAKEN)
    (map-set patients patient
      (append-history patient profile ACTION-REGISTERED none none none))
    (print {
      event: "patient-registered",
      schema: EVENT-SCHEMA,
      patient: patient,
      patient-id: patient-id,
      emergency-contact: emergency-contact,
      primary-physician: primary-physician,
      seq: u0,
      at: burn-block-height,
    })
    (ok true)
  )
)

;; Grants `provider` access to `data-type` (0 = all standard types) for
;; `duration` burn blocks, or until revoked when `duration` is none.
;; Re-granting replaces the current entry; the history keeps both.
(define-public (grant-consent (provider principal) (data-type uint) (duration (optional uint)))
  (let (
      (patient contract-caller)
      (profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND))
      (seq (get history-len profile))
      ;; Validated before use: an invalid duration never reaches the sum.
      (expires-at (if (valid-duration duration) (expiry-after duration) none))
    )
    (asserts! (not (var-get paused)) ERR-PAUSED)
    (asserts! (not (get deceased profile)) ERR-PATIENT-DECEASED)
    (asserts! (<= data-type DATA-TYPE-EMERGENCY-CONTACTS) ERR-INVALID-DATA-TYPE)
    (asserts! (valid-duration duration) ERR-INVALID-DURATION)
    (asserts! (not (is-eq provider patient)) ERR-INVALID-PRINCIPAL)
    (map-set consents { patient: patient, provider: provider, data-type: data-type } {
      granted-at: burn-block-height,
      expires-at: expires-at,
      revoked-at: none,
      seq: seq,
    })
    (map-set patients patient
      (append-history patient profile ACTION-GRANTED (some provider) (some data-type) expires-at))
    (print {
      event: "consent-granted",
      schema: EVENT-SCHEMA,
      patient: patient,
      provider: provider,
      data-type: data-type,
      expires-at: expires-at,
      seq: seq,
      at: burn-block-height,
    })
    (ok seq)
  )
)

;; Revocation works even while the contract is paused or the patient is
;; marked deceased: withdrawing access must never be blocked.
(define-public (revoke-consent (provider principal) (data-type uint))
  (let (
      (patient contract-caller)
      (profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND))
      (seq (get history-len profile))
      (key { patient: patient, provider: provider, data-type: data-type })
      (entry (unwrap! (map-get? consents key) ERR-NO-CONSENT))
    )
    (asserts! (is-none (get revoked-at entry)) ERR-CONSENT-REVOKED)
    (map-set consents key (merge entry { revoked-at: (some burn-block-height) }))
    (map-set patients patient
      (append-history patient profile ACTION-REVOKED (some provider) (some data-type) none))
    (print {
      event: "consent-revoked",
      schema: EVENT-SCHEMA,
      patient: patient,
      provider: provider,
      data-type: data-type,
      seq: seq,
      at: burn-block-height,
    })
    (ok seq)
  )
)

(define-public (update-patient-preferences
    (emergency-contact (optional principal))
    (primary-physician (optional principal))
    (emergency-mental-health bool)
    (emergency-genetic bool)
  )
  (let (
      (patient contract-caller)
      (profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND))
      (seq (get history-len profile))
    )
    (asserts! (not (var-get paused)) ERR-PAUSED)
    (asserts! (not (get deceased profile)) ERR-PATIENT-DECEASED)
    (map-set patients patient
      (append-history patient
        (merge profile {
          emergency-contact: emergency-contact,
          primary-physician: primary-physician,
          emergency-mental-health: emergency-mental-health,
          emergency-genetic: emergency-genetic,
        })
        ACTION-PREFERENCES-UPDATED none none none))
    (print {
      event: "preferences-updated",
      schema: EVENT-SCHEMA,
      patient: patient,
      emergency-contact: emergency-contact,
      primary-physician: primary-physician,
      emergency-mental-health: emergency-mental-health,
      emergency-genetic: emergency-genetic,
      seq: seq,
      at: burn-block-height,
    })
    (ok seq)
  )
)

;; ---------------------------------------------------------------- emergency

;; Break-glass access by a credentialed responder, for the configured
;; timeout. Grants read and create access to standard data types, and to
;; enhanced types only where the patient's preferences allow.
(define-public (emergency-override (patient principal) (reason uint))
  (let (
      (provider contract-caller)
      (profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND))
      (seq (get history-len profile))
      (expires-at (+ burn-block-height (var-get emergency-timeout)))
      (key { patient: patient, provider: provider })
    )
    (asserts! (not (var-get paused)) ERR-PAUSED)
    (asserts! (is-emergency-responder provider) ERR-EMERGENCY-NOT-AUTHORIZED)
    (asserts! (not (is-eq provider patient)) ERR-INVALID-PRINCIPAL)
    (asserts! (not (get deceased profile)) ERR-PATIENT-DECEASED)
    (asserts! (and (> reason u0) (<= reason MAX-EMERGENCY-REASON)) ERR-INVALID-REASON)
    (asserts!
      (match (map-get? emergency-overrides key) o (>= burn-block-height (get expires-at o)) true)
      ERR-EMERGENCY-ALREADY-ACTIVE)
    (map-set emergency-overrides key
      { reason: reason, started-at: burn-block-height, expires-at: expires-at, seq: seq })
    (map-set patients patient
      (append-history patient profile ACTION-EMERGENCY-STARTED (some provider) none (some expires-at)))
    (print {
      event: "emergency-override-started",
      schema: EVENT-SCHEMA,
      patient: patient,
      provider: provider,
      reason: reason,
      expires-at: expires-at,
      seq: seq,
      at: burn-block-height,
    })
    (ok expires-at)
  )
)

;; Ends an override early (the patient, the provider or the owner), or
;; clears an expired one.
(define-public (end-emergency-override (patient principal) (provider principal))
  (let (
      (profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND))
      (seq (get history-len profile))
      (key { patient: patient, provider: provider })
    )
    (asserts! (or (is-eq contract-caller patient) (is-eq contract-caller provider) (is-owner))
      ERR-UNAUTHORIZED)
    (asserts! (map-delete emergency-overrides key) ERR-NO-EMERGENCY-OVERRIDE)
    (map-set patients patient
      (append-history patient profile ACTION-EMERGENCY-ENDED (some provider) none none))
    (print {
      event: "emergency-override-ended",
      schema: EVENT-SCHEMA,
      patient: patient,
      provider: provider,
      ended-by: contract-caller,
      seq: seq,
      at: burn-block-height,
    })
    (ok seq)
  )
)

;; ------------------------------------------------------------ administration

;; Deceased status is set by the contract owner (e.g. from a death registry)
;; or by the patient's primary physician. A deceased patient's consents stop
;; allowing access; existing history is kept.
(define-public (set-deceased (patient principal) (deceased bool))
  (let (
      (profile (unwrap! (map-get? patients patient) ERR-PATIENT-NOT-FOUND))
      (seq (get history-len profile))
    )
    (asserts!
      (or (is-owner) (is-eq (some contract-caller) (get primary-physician profile)))
      ERR-UNAUTHORIZED)
    (map-set patients patient
      (append-history patient (merge profile { deceased: deceased })
        ACTION-DECEASED-SET none none none))
    (print {
      event: "deceased-status-set",
      schema: EVENT-SCHEMA,
      patient: patient,
      deceased: deceased,
      set-by: contract-caller,
      seq: seq,
      at: burn-block-height,
    })
    (ok seq)
  )
)

(define-public (set-emergency-responder (provider principal) (authorized bool))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (map-set emergency-responders provider authorized)
    (print {
      event: "emergency-responder-set",
      schema: EVENT-SCHEMA,
      provider: provider,
      authorized: authorized,
      at: burn-block-height,
    })
    (ok true)
  )
)

(define-public (set-emergency-timeout (blocks uint))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (asserts! (and (> blocks u0) (<= blocks MAX-EMERGENCY-TIMEOUT)) ERR-INVALID-TIMEOUT)
    (var-set emergency-timeout blocks)
    (print {
      event: "emergency-timeout-set",
      schema: EVENT-SCHEMA,
      blocks: blocks,
      at: burn-block-height,
    })
    (ok true)
  )
)

(define-private (set-paused (state bool))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (var-set paused state)
    (print {
      event: "paused-set",
      schema: EVENT-SCHEMA,
      paused: state,
      at: burn-block-height,
    })
    (ok true)
  )
)

(define-public (pause)
  (set-paused true)
)

(define-public (unpause)
  (set-paused false)
)

;; Ownership moves in two steps so a typo cannot lock the contract.
(define-public (propose-owner (new-owner principal))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (var-set pending-owner (some new-owner))
    (print {
      event: "owner-proposed",
      schema: EVENT-SCHEMA,
      proposed: new-owner,
      at: burn-block-height,
    })
    (ok true)
  )
)

(define-public (accept-ownership)
  (begin
    (asserts! (is-eq (some contract-caller) (var-get pending-owner)) ERR-NOT-PENDING-OWNER)
    (var-set contract-owner contract-caller)
    (var-set pending-owner none)
    (print {
      event: "owner-changed",
      schema: EVENT-SCHEMA,
      owner: contract-caller,
      at: burn-block-height,
    })
    (ok true)
  )
)
