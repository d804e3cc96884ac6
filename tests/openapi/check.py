"""Checks docs/openapi.yaml against itself and against fiscald's replies.

  check.py routes SPEC            -> JSON list of {method, path, body}: every
                                     documented operation, with its request
                                     example (if any), for the Rust test to call
  check.py validate SPEC REPLIES  -> every example validates against its
                                     schema; every reply (from the live daemon)
                                     shows its route exists, has a documented
                                     status, and validates against it
  check.py replies SPEC REPLIES   -> only the replies given (a test that
                                     drives one feature, e.g. the billing
                                     check against a simulated billing), with
                                     no claim that every route was called
Exit 0 when all holds; otherwise every problem on stderr, exit 1.
"""
import json
import re
import sys

import jsonschema
import yaml

METHODS = ("get", "post", "put", "delete", "patch")


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def validator(spec, schema):
    # "#/components/..." resolves inside this document: carry the components.
    root = dict(schema)
    root["components"] = spec.get("components", {})
    return jsonschema.Draft202012Validator(root)


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def check_examples(spec, problems):
    count = 0
    for path, method, op in operations(spec):
        bodies = []
        rb = resolve(spec, op.get("requestBody", {}))
        for ctype, media in rb.get("content", {}).items():
            bodies.append((f"{method.upper()} {path} request {ctype}", media))
        for status, resp in op.get("responses", {}).items():
            resp = resolve(spec, resp)
            for ctype, media in resp.get("content", {}).items():
                bodies.append((f"{method.upper()} {path} {status} {ctype}", media))
        for where, media in bodies:
            if "example" not in media or "schema" not in media:
                continue
            count += 1
            for e in validator(spec, media["schema"]).iter_errors(media["example"]):
                problems.append(f"example of {where}: {e.message} at {list(e.absolute_path)}")
    if count < 10:
        problems.append(f"only {count} examples found: the check is not looking at the spec")
    return count


def template_regex(path):
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


def check_replies(spec, replies, problems, coverage=True):
    documented = {(m, p) for p, m, _ in operations(spec)}
    seen = set()
    for r in replies:
        method, path, status, body = r["method"].lower(), r["path"], str(r["status"]), r["body"]
        match = [(p, op) for p, m, op in operations(spec) if m == method and template_regex(p).match(path)]
        if not match:
            problems.append(f"{method.upper()} {path}: not in the spec")
            continue
        template, op = match[0]
        seen.add((method, template))
        if status == "405" or (status == "404" and "no such endpoint" in json.dumps(body)):
            problems.append(f"{method.upper()} {template}: documented but not served ({status})")
            continue
        resp = op.get("responses", {}).get(status)
        if resp is None:
            problems.append(f"{method.upper()} {template}: status {status} is not documented: {str(body)[:200]}")
            continue
        resp = resolve(spec, resp)
        media = resp.get("content", {}).get("application/json")
        if media and "schema" in media:
            for e in validator(spec, media["schema"]).iter_errors(body):
                problems.append(f"{method.upper()} {path} {status} reply: {e.message} at {list(e.absolute_path)}")
    for m, p in sorted(documented - seen if coverage else ()):
        problems.append(f"{m.upper()} {p}: documented but never called by the test")


def main():
    mode, spec_path = sys.argv[1], sys.argv[2]
    spec = load(spec_path)
    if mode == "routes":
        out = []
        for path, method, op in operations(spec):
            rb = resolve(spec, op.get("requestBody", {}))
            body = rb.get("content", {}).get("application/json", {}).get("example")
            out.append({"method": method.upper(), "path": path, "body": body})
        print(json.dumps(out, ensure_ascii=False))
        return 0
    if mode not in ("validate", "replies"):
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    problems = []
    n = check_examples(spec, problems)
    with open(sys.argv[3], encoding="utf-8") as f:
        replies = json.load(f)
    if not replies:
        problems.append("no replies given")
    check_replies(spec, replies, problems, coverage=(mode == "validate"))
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{n} examples, {len(replies)} replies checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
