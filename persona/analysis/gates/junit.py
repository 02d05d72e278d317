"""JUnit XML for ``persona gate --junit FILE``: one test case per gate."""

from __future__ import annotations

import os
import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from persona.analysis.gates.report import GateReport
from persona.analysis.gates.verdict import GateResult
from persona.atomic import write_text

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _details(r: GateResult) -> str:
    lines = [r.describe()]
    lines += [f"worst {w.describe(r.gate, 200)}" for w in r.worst]
    return "\n".join(lines)


def junit_xml(report: GateReport, suite: str = "persona-gates") -> str:
    """The report as a JUnit XML document (flaky verdicts passed by policy stay passes)."""
    results = report.results
    failures = sum(not r.passed for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)), failures=str(failures))
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time="0",
        timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(ts, "properties")
    for name, value in (
        ("base", report.base),
        ("confidence", f"{report.confidence:g}"),
        ("flaky_policy", report.flaky_policy),
    ):
        ET.SubElement(props, "property", name=name, value=_clean(value))
    for r in results:
        case = ET.SubElement(
            ts,
            "testcase",
            classname=_clean(f"persona.analysis.gates.{r.trait}"),
            name=_clean(f"{r.key}[{r.checkpoint}]"),
            time="0",
        )
        if not r.passed:
            kind = "FlakyZone" if r.verdict == "flaky" else "GateFailed"
            failure = ET.SubElement(case, "failure", message=_clean(r.describe()), type=kind)
            failure.text = _clean(_details(r))
        else:
            ET.SubElement(case, "system-out").text = _clean(_details(r))
    if report.warnings:
        ET.SubElement(ts, "system-err").text = _clean("\n".join(report.warnings))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: GateReport, path: str | os.PathLike[str]) -> None:
    """Write :func:`junit_xml` atomically."""
    write_text(path, junit_xml(report))
