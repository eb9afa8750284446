#!/usr/bin/python3
"""Checks docs/head-card.schema.json against the head-card fixtures, with python3-jsonschema (Debian package; needed
only here, never when the tests run).

    /usr/bin/python3 tools/check_head_card_schema.py [--write-invalid]

- the schema is a valid draft 2020-12 schema;
- tests/data/head_card/card_*.json (written by the library: test_head_card with HEADLENS_UPDATE_HEAD_CARD_FIXTURES=1)
  validate;
- the invalid_*.json fixtures (rewritten from card_minimal.json with --write-invalid) are rejected by the schema,
  except invalid_duplicate_head.json, which only the library's reader rejects (uniqueness of (layer, head) is not a
  JSON Schema rule).
"""
import copy
import glob
import json
import os
import sys

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "head_card")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_invalid():
    card = load(os.path.join(DATA, "card_minimal.json"))
    missing = copy.deepcopy(card)
    del missing["heads"]
    duplicate = copy.deepcopy(card)
    duplicate["heads"].append(copy.deepcopy(duplicate["heads"][0]))
    version = copy.deepcopy(card)
    version["version"] = "2.0"
    for name, value in [("invalid_missing_heads.json", missing), ("invalid_duplicate_head.json", duplicate),
                        ("invalid_version.json", version)]:
        with open(os.path.join(DATA, name), "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, ensure_ascii=False)
            f.write("\n")


def main():
    if "--write-invalid" in sys.argv:
        write_invalid()
    schema = load(os.path.join(ROOT, "docs", "head-card.schema.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failures = 0
    valid = sorted(glob.glob(os.path.join(DATA, "card_*.json")))
    for path in valid:
        errors = list(validator.iter_errors(load(path)))
        for e in errors:
            print(f"{os.path.basename(path)}: INVALID at /{'/'.join(map(str, e.absolute_path))}: {e.message}")
        failures += bool(errors)
        if not errors:
            print(f"{os.path.basename(path)}: valid")
    for path in sorted(glob.glob(os.path.join(DATA, "invalid_*.json"))):
        name = os.path.basename(path)
        ok = validator.is_valid(load(path))
        expected = name == "invalid_duplicate_head.json"
        print(f"{name}: schema {'accepts' if ok else 'rejects'} it ({'as expected' if ok == expected else 'WRONG'})")
        failures += ok != expected
    if not valid:
        print("no card_*.json fixture")
        failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
