#!/usr/bin/env python3
"""critest_gate.py: compare a critest JUnit report with the known-failures list.

  critest_gate.py JUNIT --doc docs/CONFORMANCE.md [--no-gate] [--update] [--update-known]
                        [--label TEXT] [--skipped-known]
  critest_gate.py --patterns --doc docs/CONFORMANCE.md   (the listed --ginkgo.skip patterns)

The known-failures list is the markdown table between the lines
`<!-- known-failures:begin -->` and `<!-- known-failures:end -->` of the doc: one row per spec,
columns `spec | reason | --ginkgo.skip pattern`, the spec name in backticks exactly as the
JUnit report names it without the leading "[It] ".

Exit status: 0 when every failed spec is listed and every listed spec that ran failed;
1 otherwise (or when the report is missing or empty); with --no-gate, 0 whenever the report
could be read. --update rewrites the observed-counts block (`<!-- counts:begin -->` ..
`<!-- counts:end -->`); --update-known also rewrites the table from this run's failures,
keeping the reasons and patterns of rows that stay.
"""
import argparse
import re
import sys
import xml.etree.ElementTree as ET

KF_BEGIN, KF_END = "<!-- known-failures:begin -->", "<!-- known-failures:end -->"
CT_BEGIN, CT_END = "<!-- counts:begin -->", "<!-- counts:end -->"
FAILED = {"failed", "panicked", "timedout", "interrupted", "aborted"}


def spec_name(case):
    name = case.get("name", "")
    return re.sub(r"^\[It\]\s+", "", name).strip()


def read_report(path):
    """Returns ({spec: status}, {suite node: status}); specs are the "[It] ..." test cases,
    suite nodes the others ([BeforeSuite], [AfterSuite], ...)."""
    root = ET.parse(path).getroot()
    specs, nodes = {}, {}
    for case in root.iter("testcase"):
        status = case.get("status")
        if status is None:  # plain JUnit: infer from children
            if case.find("failure") is not None or case.find("error") is not None:
                status = "failed"
            elif case.find("skipped") is not None:
                status = "skipped"
            else:
                status = "passed"
        if case.get("name", "").startswith("[It]"):
            specs[spec_name(case)] = status
        else:
            nodes[case.get("name", "")] = status
    return specs, nodes


def read_known(doc_text):
    """Returns [(spec, reason, pattern)] from the marked table."""
    if KF_BEGIN not in doc_text or KF_END not in doc_text:
        raise SystemExit("critest_gate: %s / %s markers not found" % (KF_BEGIN, KF_END))
    body = doc_text.split(KF_BEGIN, 1)[1].split(KF_END, 1)[0]
    rows = []
    for line in body.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 1 or re.fullmatch(r":?-+:?", cells[0]) or cells[0].lower() in ("spec", "spec name"):
            continue
        spec = cells[0].strip("`").strip()
        if not spec:
            continue
        reason = cells[1] if len(cells) > 1 else ""
        pattern = cells[2].strip("`").strip() if len(cells) > 2 else ""
        rows.append((spec, reason, pattern))
    return rows


def skip_pattern(spec):
    """A Go regexp for --ginkgo.skip matching this spec only. Ginkgo matches the spec's texts;
    the JUnit name also carries decorators (" [Serial]") that the texts do not have."""
    text = re.sub(r"( \[(Serial|Ordered|Flaky)\])+$", "", spec)
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def replace_block(text, begin, end, body):
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        return head + begin + "\n" + body + end + tail
    return text.rstrip("\n") + "\n\n" + begin + "\n" + body + end + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("junit", nargs="?")
    ap.add_argument("--patterns", action="store_true", help="print the listed skip patterns and exit")
    ap.add_argument("--doc", required=True)
    ap.add_argument("--no-gate", action="store_true")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--update-known", action="store_true")
    ap.add_argument("--label", default="")
    ap.add_argument("--skipped-known", action="store_true",
                    help="known failures were skipped with their patterns: not running is fine")
    args = ap.parse_args()
    if args.patterns:
        for _, _, pattern in read_known(open(args.doc).read()):
            if pattern:
                print(pattern)
        return 0
    if not args.junit:
        ap.error("the JUnit report is required")

    try:
        specs, suite_nodes = read_report(args.junit)
    except (OSError, ET.ParseError) as e:
        print("critest_gate: cannot read the JUnit report %s: %s" % (args.junit, e))
        return 1
    doc_text = open(args.doc).read()
    known = read_known(doc_text)
    known_names = {k[0] for k in known}

    ran = {n: s for n, s in specs.items() if s not in ("skipped", "pending")}
    passed = sorted(n for n, s in ran.items() if s == "passed")
    failed = sorted(n for n, s in ran.items() if s in FAILED)
    skipped = len(specs) - len(ran)
    node_failures = sorted(n for n, s in suite_nodes.items() if s in FAILED)

    unexpected = [n for n in failed if n not in known_names]
    known_failing = [n for n in failed if n in known_names]
    now_passing = [n for n in passed if n in known_names]
    not_run = [k[0] for k in known if k[0] not in ran]

    print("critest results %s: %d specs ran, %d passed, %d failed (%d listed as known), %d skipped"
          % (args.label, len(ran), len(passed), len(failed), len(known_failing), skipped))
    for n in node_failures:
        print("  SUITE NODE FAILED: %s" % n)
    for n in known_failing:
        print("  known failure:     %s" % n)
    for n in unexpected:
        print("  NEW FAILURE:       %s" % n)
    for n in now_passing:
        print("  NOW PASSES (remove it from docs/CONFORMANCE.md): %s" % n)
    if not_run and not args.skipped_known:
        for n in not_run:
            print("  listed but not run (renamed or skipped?): %s" % n)

    if args.update or args.update_known:
        counts = ("| critest | specs run | passed | failed | known failures | skipped |\n"
                  "|---|---|---|---|---|---|\n"
                  "| %s | %d | %d | %d | %d | %d |\n"
                  % (args.label or "?", len(ran), len(passed), len(failed),
                     len(failed) if args.update_known else len(known_failing), skipped))
        doc_text = replace_block(doc_text, CT_BEGIN, CT_END, counts)
        if args.update_known:
            old = {k[0]: k for k in known}
            rows = ["| Spec | Reason | `--ginkgo.skip` pattern |", "|---|---|---|"]
            for n in failed:
                _, reason, pattern = old.get(n, (n, "TODO: why it fails", skip_pattern(n)))
                rows.append("| `%s` | %s | `%s` |" % (n, reason, pattern))
            doc_text = replace_block(doc_text, KF_BEGIN, KF_END, "\n".join(rows) + "\n")
        with open(args.doc, "w") as f:
            f.write(doc_text)
        print("critest_gate: updated %s" % args.doc)

    if not ran:
        print("critest_gate: FAIL: no spec ran")
        return 1
    if args.no_gate:
        return 0
    bad = bool(unexpected or now_passing or node_failures or (not_run and not args.skipped_known))
    print("critest_gate: %s" % ("FAIL" if bad else "PASS (failures match docs/CONFORMANCE.md)"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
