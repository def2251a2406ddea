"""Validates FHIR R4 Bundle JSON files with fhir.resources 6.4.0 (PyPI, the
R4 4.0.1 models; pinned in scripts/fhir-requirements.txt and installed into
.venv/fhir by `ensure_fhir_validator` in scripts/lib.sh). Parsing a Bundle
validates every entry's resource as its own type: unknown elements,
missing required ones, cardinality and primitive formats.

    .venv/fhir/bin/python3 scripts/fhir/validate.py BUNDLE.json...

Prints the errors; exits 1 when a file is not valid, 2 on bad usage.
"""

import sys

from fhir.resources.bundle import Bundle
from pydantic import ValidationError


def main(paths):
    if not paths:
        print("usage: validate.py BUNDLE.json...", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        try:
            bundle = Bundle.parse_file(path)
        except ValidationError as e:
            print(f"{path}: INVALID (fhir.resources)\n{e}")
            failed = True
            continue
        print(f"{path}: valid (fhir.resources, Bundle, {len(bundle.entry or [])} entries)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
