;; record-management - anchors of encrypted medical records, who may write
;; them, and their versions.
;;
;; A record on-chain is an opaque 16-byte id chosen by the writer, the
;; SHA-256 of its off-chain ciphertext, flags, principals and heights - no
;; title or other free text. Every record operation checks the patient's
;; consent inside the contract (patient-consent `check-consent`) and the
;; provider's access level here.
;;
;; Heights are `burn-block-height` (see patient-consent for conversions).
;; Retention defaults to 30 years = 30 x 365.25 x 144 = 1,577,880 blocks.

;; ---------------------------------------------------------------- constants

(define-constant EVENT-SCHEMA u1)

;; Access levels a patient grants a provider. EMERGENCY is never granted: it
;; is the level a provider acts at under an active emergency override (read
;; and create, nothing more).
(define-constant LEVEL-READ u0)
(define-constant LEVEL-WRITE u1)
(define-constant LEVEL-ADMIN u2)
(define-constant LEVEL-EMERGENCY u3)

;; From patient-consent `check-consent`.
(define-constant ACCESS-SELF u0)
(define-constant ACCESS-CONSENT u1)
(define-constant ACCESS-EMERGENCY u2)

;; Record types 1-13 and the consent data type each falls under
;; (patient-consent: 1 basic info, 2 medical history, 3 lab results,
;; 4 treatment plans, 5 mental health, 6 genetic, 7 financial,
;; 8 emergency contacts). Element i is the data type of record type i+1:
;;   1 basic-info -> 1      6 imaging -> 3        11 genetic-data -> 6
;;   2 vitals -> 2          7 procedures -> 2     12 insurance -> 7
;;   3 diagnosis -> 2       8 allergies -> 2      13 emergency-contacts -> 8
;;   4 medications -> 4     9 immunizations -> 2
;;   5 lab-results -> 3    10 mental-health -> 5
(define-constant RECORD-TYPE-DATA-TYPES (list u1 u2 u2 u4 u3 u3 u2 u2 u2 u5 u6 u7 u8))

(define-constant STATUS-ACTIVE u1)
(define-constant STATUS-ARCHIVED u2)
(define-constant STATUS-PURGED u3)

;; How a version came to be.
(define-constant CHANGE-CREATED u1)
(define-constant CHANGE-UPDATED u2)
(define-constant CHANGE-ROLLED-BACK u3)

(define-constant MAX-CONFIDENTIALITY u3)
(define-constant DEFAULT-RETENTION u1577880) ;; 30 years
;; Longest duration or retention: 100 years (keeps heights far below 2^64).
(define-constant MAX-DURATION u5259600)
;; Batch leaf counts and audit tree sizes fit in 64 bits.
(define-constant MAX-COUNT u18446744073709551615)

;; Errors (u200-u299). Consent failures come back from patient-consent with
;; its own codes (u100-u199), unchanged.
(define-constant ERR-UNAUTHORIZED (err u200))
(define-constant ERR-PROVIDER-NOT-FOUND (err u201))
(define-constant ERR-PROVIDER-EXISTS (err u202))
(define-constant ERR-PROVIDER-INACTIVE (err u203))
(define-constant ERR-INVALID-ACCESS-LEVEL (err u204))
(define-constant ERR-NO-PROVIDER-ACCESS (err u205))
(define-constant ERR-PROVIDER-ACCESS-EXPIRED (err u206))
(define-constant ERR-INSUFFICIENT-ACCESS (err u207))
(define-constant ERR-INVALID-RECORD-TYPE (err u208))
(define-constant ERR-RECORD-NOT-FOUND (err u209))
(define-constant ERR-RECORD-EXISTS (err u210))
(define-constant ERR-DUPLICATE-HASH (err u211))
(define-constant ERR-VERSION-CONFLICT (err u212))
(define-constant ERR-RECORD-FINALIZED (err u213))
(define-constant ERR-RECORD-NOT-FINALIZED (err u214))
(define-constant ERR-RECORD-NOT-ACTIVE (err u215))
(define-constant ERR-RETENTION-ACTIVE (err u216))
(define-constant ERR-EMERGENCY-VIOLATION (err u217))
(define-constant ERR-INVALID-CONFIDENTIALITY (err u218))
(define-constant ERR-INVALID-VERSION (err u219))
(define-constant ERR-INVALID-DURATION (err u220))
(define-constant ERR-INVALID-PRINCIPAL (err u221))
(define-constant ERR-BATCH-EXISTS (err u222))
(define-constant ERR-INVALID-BATCH (err u223))
(define-constant ERR-STALE-CHECKPOINT (err u224))
(define-constant ERR-NOT-ANCHOR-SUBMITTER (err u225))
(define-constant ERR-INVALID-RETENTION (err u226))
(define-constant ERR-NOT-PENDING-OWNER (err u227))
(define-constant ERR-RECORD-NOT-ARCHIVED (err u228))
;; Shared with patient-consent: the same condition reports the same code.
(define-constant ERR-PAUSED (err u110))

;; -------------------------------------------------------------------- state

(define-data-var contract-owner principal tx-sender)
(define-data-var pending-owner (optional principal) none)
(define-data-var retention-period uint DEFAULT-RETENTION)

;; Providers registered by the contract owner. `credential-hash` commits to
;; the off-chain credential (licence, NPI) without revealing it.
(define-map providers
  principal
  { credential-hash: (buff 32), active: bool, registered-at: uint }
)

;; Node operators allowed to anchor batches and audit-log checkpoints.
(define-map anchor-operators principal bool)

;; Access a patient gave a provider; valid while burn-block-height < expires-at.
(define-map provider-access
  { patient: principal, provider: principal }
  { access-level: uint, granted-at: uint, expires-at: (optional uint) }
)

;; The current version of each record. Versions before the current one are
;; in `record-versions`.
(define-map records
  (buff 16)
  {
    patient: principal,
    record-type: uint,
    data-hash: (buff 32),
    encryption-key-id: (optional (buff 32)),
    confidentiality: uint,
    created-by: principal,
    created-at: uint,
    version: uint,
    updated-by: principal,
    updated-at: uint,
    change: uint,
    status: uint,
    finalized: bool,
    retention-until: uint,
  }
)

;; Superseded versions, written when a version stops being current, so
;; creating a record costs one record write instead of two.
(define-map record-versions
  { record-id: (buff 16), version: uint }
  {
    data-hash: (buff 32),
    encryption-key-id: (optional (buff 32)),
    author: principal,
    at: uint,
    change: uint,
  }
)

;; Every anchored data hash -> the record version that anchored it, so an
;; auditor holding a ciphertext can find its anchor from the chain alone.
(define-map anchors (buff 32) { record-id: (buff 16), version: uint })

;; Merkle roots of batches of off-chain hashes.
(define-map batches (buff 32) { submitter: principal, leaf-count: uint, at: uint })

;; Audit-log checkpoints per log (the submitting principal): every
;; checkpoint, and the latest one.
(define-map audit-checkpoints
  { log: principal, tree-size: uint }
  { root: (buff 32), at: uint }
)
(define-map audit-heads principal { tree-size: uint, root: (buff 32), at: uint })

;; ------------------------------------------------------------------ helpers

(define-private (is-owner)
  (is-eq contract-caller (var-get contract-owner))
)

(define-private (valid-duration (duration (optional uint)))
  (match duration blocks (and (> blocks u0) (<= blocks MAX-DURATION)) true)
)

(define-private (data-type-of (record-type uint))
  (if (> record-type u0) (element-at? RECORD-TYPE-DATA-TYPES (- record-type u1)) none)
)

(define-private (check-active-provider (provider principal))
  (let ((p (unwrap! (map-get? providers provider) ERR-PROVIDER-NOT-FOUND)))
    (asserts! (get active p) ERR-PROVIDER-INACTIVE)
    (ok true)
  )
)

;; The access level `provider` holds for `patient` right now.
(define-private (access-level-of (patient principal) (provider principal))
  (let ((a (unwrap! (map-get? provider-access { patient: patient, provider: provider })
             ERR-NO-PROVIDER-ACCESS)))
    (asserts! (match (get expires-at a) h (< burn-block-height h) true)
      ERR-PROVIDER-ACCESS-EXPIRED)
    (ok (get access-level a))
  )
)

;; May `actor` act on `patient`'s data of `data-type` at `min-level`?
;; Consent first (patient-consent), then the provider's standing here.
;; Returns how access was allowed (ACCESS-SELF / -CONSENT / -EMERGENCY).
;; A patient may read their own records but never write them; an emergency
;; override allows only what `emergency-ok` says.
(define-private (authorize
    (patient principal)
    (actor principal)
    (data-type uint)
    (min-level uint)
    (emergency-ok bool)
  )
  (let ((method (try! (contract-call? .patient-consent check-consent patient actor data-type))))
    (if (is-eq method ACCESS-SELF)
      (if (is-eq min-level LEVEL-READ) (ok method) ERR-UNAUTHORIZED)
      (begin
        (try! (check-active-provider actor))
        (if (is-eq method ACCESS-EMERGENCY)
          (if emergency-ok (ok method) ERR-EMERGENCY-VIOLATION)
          (begin
            (asserts! (>= (try! (access-level-of patient actor)) min-level) ERR-INSUFFICIENT-ACCESS)
            (ok method)
          )
        )
      )
    )
  )
)

;; Authorizes `actor` on an existing record; returns the record.
(define-private (authorize-record (record-id (buff 16)) (min-level uint) (emergency-ok bool))
  (let (
      (record (unwrap! (map-get? records record-id) ERR-RECORD-NOT-FOUND))
      (data-type (unwrap! (data-type-of (get record-type record)) ERR-INVALID-RECORD-TYPE))
    )
    (try! (authorize (get patient record) contract-caller data-type min-level emergency-ok))
    (ok record)
  )
)

;; Makes `data-hash` the new current version of an active, unlocked record
;; whose current version is `expected-version`; archives the old version.
(define-private (write-version
    (record-id (buff 16))
    (record {
      patient: principal,
      record-type: uint,
      data-hash: (buff 32),
      encryption-key-id: (optional (buff 32)),
      confidentiality: uint,
      created-by: principal,
      created-at: uint,
      version: uint,
      updated-by: principal,
      updated-at: uint,
      change: uint,
      status: uint,
      finalized: bool,
      retention-until: uint,
    })
    (expected-version uint)
    (data-hash (buff 32))
    (encryption-key-id (optional (buff 32)))
    (change uint)
  )
  (let ((version (+ (get version record) u1)))
    (asserts! (is-eq (get status record) STATUS-ACTIVE) ERR-RECORD-NOT-ACTIVE)
    (asserts! (not (get finalized record)) ERR-RECORD-FINALIZED)
    (asserts! (is-eq expected-version (get version record)) ERR-VERSION-CONFLICT)
    (map-set record-versions { record-id: record-id, version: (get version record) } {
      data-hash: (get data-hash record),
      encryption-key-id: (get encryption-key-id record),
      author: (get updated-by record),
      at: (get updated-at record),
      change: (get change record),
    })
    (map-set records record-id (merge record {
      data-hash: data-hash,
      encryption-key-id: encryption-key-id,
      version: version,
      updated-by: contract-caller,
      updated-at: burn-block-height,
      change: change,
    }))
    (ok version)
  )
)

(define-private (set-status (record-id (buff 16)) (record {
      patient: principal,
      record-type: uint,
      data-hash: (buff 32),
      encryption-key-id: (optional (buff 32)),
      confidentiality: uint,
      created-by: principal,
      created-at: uint,
      version: uint,
      updated-by: principal,
      updated-at: uint,
      change: uint,
      status: uint,
      finalized: bool,
      retention-until: uint,
    })
    (status uint)
    (finalized bool)
    (event (string-ascii 32))
  )
  (begin
    (map-set records record-id (merge record { status: status, finalized: finalized }))
    (print {
      event: event,
      schema: EVENT-SCHEMA,
      record-id: record-id,
      patient: (get patient record),
      version: (get version record),
      by: contract-caller,
      at: burn-block-height,
    })
    (ok true)
  )
)

(define-private (check-anchor-submitter (submitter principal))
  (begin
    (asserts! (not (contract-call? .patient-consent is-paused)) ERR-PAUSED)
    (asserts!
      (or
        (default-to false (map-get? anchor-operators submitter))
        (is-ok (check-active-provider submitter))
      )
      ERR-NOT-ANCHOR-SUBMITTER)
    (ok true)
  )
)

;; ------------------------------------------------------------------ records

(define-public (create-record
    (record-id (buff 16))
    (patient principal)
    (record-type uint)
    (data-hash (buff 32))
    (encryption-key-id (optional (buff 32)))
    (confidentiality uint)
  )
  (let (
      (data-type (unwrap! (data-type-of record-type) ERR-INVALID-RECORD-TYPE))
      (retention-until (+ burn-block-height (var-get retention-period)))
    )
    (asserts! (<= confidentiality MAX-CONFIDENTIALITY) ERR-INVALID-CONFIDENTIALITY)
    (asserts! (is-none (map-get? records record-id)) ERR-RECORD-EXISTS)
    (let ((method (try! (authorize patient contract-caller data-type LEVEL-WRITE true))))
      (asserts! (map-insert anchors data-hash { record-id: record-id, version: u1 }) ERR-DUPLICATE-HASH)
      (map-set records record-id {
        patient: patient,
        record-type: record-type,
        data-hash: data-hash,
        encryption-key-id: encryption-key-id,
        confidentiality: confidentiality,
        created-by: contract-caller,
        created-at: burn-block-height,
        version: u1,
        updated-by: contract-caller,
        updated-at: burn-block-height,
        change: CHANGE-CREATED,
        status: STATUS-ACTIVE,
        finalized: false,
        retention-until: retention-until,
      })
      (print {
        event: "record-created",
        schema: EVENT-SCHEMA,
        record-id: record-id,
        patient: patient,
        record-type: record-type,
        data-type: data-type,
        data-hash: data-hash,
        encryption-key-id: encryption-key-id,
        confidentiality: confidentiality,
        created-by: contract-caller,
        access: method,
        retention-until: retention-until,
        at: burn-block-height,
      })
      (ok u1)
    )
  )
)

;; Reads a record and leaves an on-chain trace of the access. Free reads
;; without a trace are `get-record-info` (read-only).
(define-public (get-record (record-id (buff 16)))
  (let (
      (record (unwrap! (map-get? records record-id) ERR-RECORD-NOT-FOUND))
      (data-type (unwrap! (data-type-of (get record-type record)) ERR-INVALID-RECORD-TYPE))
      (method (try! (authorize (get patient record) contract-caller data-type LEVEL-READ true)))
    )
    (print {
      event: "record-accessed",
      schema: EVENT-SCHEMA,
      record-id: record-id,
      patient: (get patient record),
      accessor: contract-caller,
      access: method,
      version: (get version record),
      at: burn-block-height,
    })
    (ok record)
  )
)

;; Optimistic concurrency: `expected-version` is the version the writer last
;; read; a stale one fails with ERR-VERSION-CONFLICT (no last-write-wins).
(define-public (update-record
    (record-id (buff 16))
    (expected-version uint)
    (data-hash (buff 32))
    (encryption-key-id (optional (buff 32)))
  )
  (let (
      (record (try! (authorize-record record-id LEVEL-WRITE false)))
      (version (try! (write-version record-id record expected-version data-hash encryption-key-id CHANGE-UPDATED)))
    )
    (asserts! (map-insert anchors data-hash { record-id: record-id, version: version }) ERR-DUPLICATE-HASH)
    (print {
      event: "record-updated",
      schema: EVENT-SCHEMA,
      record-id: record-id,
      patient: (get patient record),
      version: version,
      data-hash: data-hash,
      encryption-key-id: encryption-key-id,
      updated-by: contract-caller,
      at: burn-block-height,
    })
    (ok version)
  )
)

;; Makes an earlier version's hash current again, as a new version: history
;; only grows. The hash keeps its original anchor entry.
(define-public (rollback-record (record-id (buff 16)) (expected-version uint) (target-version uint))
  (let (
      (record (try! (authorize-record record-id LEVEL-WRITE false)))
      (target (unwrap! (map-get? record-versions { record-id: record-id, version: target-version })
                ERR-INVALID-VERSION))
      (version (try! (write-version record-id record expected-version
                   (get data-hash target) (get encryption-key-id target) CHANGE-ROLLED-BACK)))
    )
    (print {
      event: "record-rolled-back",
      schema: EVENT-SCHEMA,
      record-id: record-id,
      patient: (get patient record),
      version: version,
      target-version: target-version,
      data-hash: (get data-hash target),
      encryption-key-id: (get encryption-key-id target),
      updated-by: contract-caller,
      at: burn-block-height,
    })
    (ok version)
  )
)

;; A finalized record refuses updates and rollbacks until an ADMIN unlocks it.
(define-public (finalize-record (record-id (buff 16)))
  (let ((record (try! (authorize-record record-id LEVEL-WRITE false))))
    (asserts! (is-eq (get status record) STATUS-ACTIVE) ERR-RECORD-NOT-ACTIVE)
    (asserts! (not (get finalized record)) ERR-RECORD-FINALIZED)
    (set-status record-id record STATUS-ACTIVE true "record-finalized")
  )
)

(define-public (unlock-record (record-id (buff 16)))
  (let ((record (try! (authorize-record record-id LEVEL-ADMIN false))))
    (asserts! (is-eq (get status record) STATUS-ACTIVE) ERR-RECORD-NOT-ACTIVE)
    (asserts! (get finalized record) ERR-RECORD-NOT-FINALIZED)
    (set-status record-id record STATUS-ACTIVE false "record-unlocked")
  )
)

(define-public (archive-record (record-id (buff 16)))
  (let ((record (try! (authorize-record record-id LEVEL-ADMIN false))))
    (asserts! (is-eq (get status record) STATUS-ACTIVE) ERR-RECORD-NOT-ACTIVE)
    (set-status record-id record STATUS-ARCHIVED (get finalized record) "record-archived")
  )
)

;; After its retention period an archived record may be purged: the
;; off-chain ciphertext may then be deleted. The anchor stays, as proof.
(define-public (purge-record (record-id (buff 16)))
  (let ((record (unwrap! (map-get? records record-id) ERR-RECORD-NOT-FOUND)))
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (asserts! (is-eq (get status record) STATUS-ARCHIVED) ERR-RECORD-NOT-ARCHIVED)
    (asserts! (>= burn-block-height (get retention-until record)) ERR-RETENTION-ACTIVE)
    (set-status record-id record STATUS-PURGED (get finalized record) "record-purged")
  )
)

;; ----------------------------------------------------------- provider access

;; A patient gives a registered provider an access level (READ, WRITE or
;; ADMIN) for `duration` burn blocks, or until revoked.
(define-public (grant-provider-access (provider principal) (access-level uint) (duration (optional uint)))
  (let (
      (patient contract-caller)
      ;; Validated before use: an invalid duration never reaches the sum.
      (expires-at (match duration blocks
        (if (valid-duration duration) (some (+ burn-block-height blocks)) none) none))
    )
    (try! (contract-call? .patient-consent check-patient patient))
    (asserts! (not (is-eq provider patient)) ERR-INVALID-PRINCIPAL)
    (asserts! (<= access-level LEVEL-ADMIN) ERR-INVALID-ACCESS-LEVEL)
    (asserts! (valid-duration duration) ERR-INVALID-DURATION)
    (try! (check-active-provider provider))
    (map-set provider-access { patient: patient, provider: provider }
      { access-level: access-level, granted-at: burn-block-height, expires-at: expires-at })
    (print {
      event: "provider-access-granted",
      schema: EVENT-SCHEMA,
      patient: patient,
      provider: provider,
      access-level: access-level,
      expires-at: expires-at,
      at: burn-block-height,
    })
    (ok true)
  )
)

;; Always allowed, even while paused.
(define-public (revoke-provider-access (provider principal))
  (let ((patient contract-caller))
    (asserts! (map-delete provider-access { patient: patient, provider: provider }) ERR-NO-PROVIDER-ACCESS)
    (print {
      event: "provider-access-revoked",
      schema: EVENT-SCHEMA,
      patient: patient,
      provider: provider,
      at: burn-block-height,
    })
    (ok true)
  )
)

;; ------------------------------------------------------------------ anchors

;; One Merkle root for many off-chain hashes (records, exports, backups).
(define-public (anchor-batch (root (buff 32)) (leaf-count uint))
  (begin
    (try! (check-anchor-submitter contract-caller))
    (asserts! (and (> leaf-count u0) (<= leaf-count MAX-COUNT)) ERR-INVALID-BATCH)
    (asserts! (map-insert batches root { submitter: contract-caller, leaf-count: leaf-count, at: burn-block-height })
      ERR-BATCH-EXISTS)
    (print {
      event: "batch-anchored",
      schema: EVENT-SCHEMA,
      root: root,
      leaf-count: leaf-count,
      submitter: contract-caller,
      at: burn-block-height,
    })
    (ok true)
  )
)

;; A checkpoint (tree size, RFC 6962 root) of the submitter's off-chain
;; audit log. Sizes only grow: a log cannot be anchored shorter.
(define-public (anchor-audit-root (tree-size uint) (root (buff 32)))
  (begin
    (try! (check-anchor-submitter contract-caller))
    (asserts! (> tree-size (match (map-get? audit-heads contract-caller) h (get tree-size h) u0))
      ERR-STALE-CHECKPOINT)
    (asserts! (<= tree-size MAX-COUNT) ERR-INVALID-BATCH)
    (map-set audit-checkpoints { log: contract-caller, tree-size: tree-size } { root: root, at: burn-block-height })
    (map-set audit-heads contract-caller { tree-size: tree-size, root: root, at: burn-block-height })
    (print {
      event: "audit-root-anchored",
      schema: EVENT-SCHEMA,
      log: contract-caller,
      tree-size: tree-size,
      root: root,
      at: burn-block-height,
    })
    (ok true)
  )
)

;; ----------------------------------------------------------- administration

(define-public (register-provider (provider principal) (credential-hash (buff 32)))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (asserts!
      (map-insert providers provider
        { credential-hash: credential-hash, active: true, registered-at: burn-block-height })
      ERR-PROVIDER-EXISTS)
    (print {
      event: "provider-registered",
      schema: EVENT-SCHEMA,
      provider: provider,
      credential-hash: credential-hash,
      at: burn-block-height,
    })
    (ok true)
  )
)

;; A new credential commitment for a registered provider: the owner
;; verified a new version of the provider's credential document. Whoever
;; holds the document can check it against this hash.
(define-public (set-provider-credential (provider principal) (credential-hash (buff 32)))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (map-set providers provider
      (merge (unwrap! (map-get? providers provider) ERR-PROVIDER-NOT-FOUND) { credential-hash: credential-hash }))
    (print {
      event: "provider-credential-set",
      schema: EVENT-SCHEMA,
      provider: provider,
      credential-hash: credential-hash,
      at: burn-block-height,
    })
    (ok true)
  )
)

(define-public (set-provider-active (provider principal) (active bool))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (map-set providers provider
      (merge (unwrap! (map-get? providers provider) ERR-PROVIDER-NOT-FOUND) { active: active }))
    (print {
      event: "provider-status-set",
      schema: EVENT-SCHEMA,
      provider: provider,
      active: active,
      at: burn-block-height,
    })
    (ok true)
  )
)

(define-public (set-anchor-operator (operator principal) (authorized bool))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (map-set anchor-operators operator authorized)
    (print {
      event: "anchor-operator-set",
      schema: EVENT-SCHEMA,
      operator: operator,
      authorized: authorized,
      at: burn-block-height,
    })
    (ok true)
  )
)

;; Applies to records created afterwards; existing records keep the
;; retention they were created with.
(define-public (set-retention-period (blocks uint))
  (begin
    (asserts! (is-owner) ERR-UNAUTHORIZED)
    (asserts! (and (> blocks u0) (<= blocks MAX-DURATION)) ERR-INVALID-RETENTION)
    (var-set retention-period blocks)
    (print {
      event: "retention-period-set",
      schema: EVENT-SCHEMA,
      blocks: blocks,
      at: burn-block-height,
    })
    (ok true)
  )
)

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

;; ---------------------------------------------------------------- read-only

;; The record without an access trace. Anchors are public by design: the
;; hash of a ciphertext reveals nothing, and auditors must read it freely.
(define-read-only (get-record-info (record-id (buff 16)))
  (map-get? records record-id)
)

;; Any version, the current one included.
(define-read-only (get-record-version (record-id (buff 16)) (version uint))
  (match (map-get? records record-id)
    r (if (is-eq version (get version r))
      (some {
        data-hash: (get data-hash r),
        encryption-key-id: (get encryption-key-id r),
        author: (get updated-by r),
        at: (get updated-at r),
        change: (get change r),
      })
      (map-get? record-versions { record-id: record-id, version: version })
    )
    none
  )
)

(define-read-only (get-anchor (data-hash (buff 32)))
  (map-get? anchors data-hash)
)

(define-read-only (get-batch (root (buff 32)))
  (map-get? batches root)
)

(define-read-only (get-audit-checkpoint (log principal) (tree-size uint))
  (map-get? audit-checkpoints { log: log, tree-size: tree-size })
)

(define-read-only (get-audit-head (log principal))
  (map-get? audit-heads log)
)

(define-read-only (get-provider (provider principal))
  (map-get? providers provider)
)

(define-read-only (get-provider-access (patient principal) (provider principal))
  (map-get? provider-access { patient: patient, provider: provider })
)

(define-read-only (is-anchor-operator (operator principal))
  (default-to false (map-get? anchor-operators operator))
)

(define-read-only (get-data-type (record-type uint))
  (data-type-of record-type)
)

(define-read-only (get-retention-period)
  (var-get retention-period)
)

(define-read-only (get-contract-owner)
  (var-get contract-owner)
)

(define-read-only (get-pending-owner)
  (var-get pending-owner)
)
