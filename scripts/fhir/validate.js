// Validates FHIR R4 JSON files with FHIR.js (npm `fhir`, pinned in
// tests/js/package.json and installed there by `ensure_node_modules` in
// scripts/lib.sh): the resource types, cardinalities, primitive formats and
// required code lists of the R4 (4.0.1) StructureDefinitions it ships.
// Unknown properties are errors, not warnings, so a misspelt element fails.
//
//   node scripts/fhir/validate.js BUNDLE.json…
//
// Prints every message; exits 1 when a file is not valid, 2 on bad usage.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

// The package lives in tests/js/node_modules, not beside this script.
const requireFromTests = createRequire(path.join(__dirname, '..', '..', 'tests', 'js', 'package.json'));
const { Fhir } = requireFromTests('fhir');

const files = process.argv.slice(2);
if (files.length === 0) {
    console.error('usage: node scripts/fhir/validate.js BUNDLE.json…');
    process.exit(2);
}

const fhir = new Fhir();
let failed = false;
for (const file of files) {
    const resource = JSON.parse(fs.readFileSync(file, 'utf8'));
    const result = fhir.validate(resource, { errorOnUnexpected: true });
    for (const m of result.messages) {
        console.log(`${file}: ${m.severity}: ${m.location || ''}: ${m.message}`);
    }
    const entries = Array.isArray(resource.entry) ? resource.entry.length : 0;
    console.log(`${file}: ${result.valid ? 'valid' : 'INVALID'} (FHIR.js, ${resource.resourceType}, ${entries} entries)`);
    failed = failed || !result.valid;
}
process.exit(failed ? 1 : 0);
