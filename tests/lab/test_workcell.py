"""Workcell files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import SpecError
from lab.workcell import (
    DEFAULT_LEASE_TTL_S,
    dump_workcell,
    lease_ttl,
    load_workcell,
    parse_workcell,
)

EXAMPLE = """
devices:
  pump_a:   {kind: ne1000,    url: /dev/pts/7, address: 0}
  hotplate: {kind: ika_namur, url: /dev/pts/8}
  balance:  {kind: mt_sics,   url: /dev/pts/9}
  gantry:   {kind: grbl,      url: /dev/pts/10}
  lcr:      {kind: scpi_lcr,  url: socket://127.0.0.1:5025}
"""


def test_issue_example_parses(tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text(EXAMPLE)
    wc = load_workcell(p)
    assert wc.devices["lcr"].url == "socket://127.0.0.1:5025"
    assert set(wc.of_kind("ne1000")) == {"pump_a"}
    dump_workcell(wc, tmp_path / "copy.yaml")
    assert load_workcell(tmp_path / "copy.yaml") == wc


def test_extra_keys_kept_and_roles() -> None:
    wc = parse_workcell(
        {
            "devices": {
                "p": {
                    "kind": "ne1000",
                    "url": "loop://",
                    "role": "solvent",
                    "faults": {"rate": 0.1},
                }
            }
        }
    )
    assert wc.pump_for_role("solvent") == "p"
    assert wc.devices["p"].model_extra == {"faults": {"rate": 0.1}}
    with pytest.raises(SpecError, match="no ne1000 pump with role 'precursor'"):
        wc.pump_for_role("precursor")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"devices": {"x": {"kind": "Toaster!", "url": "loop://"}}}, "devices.x.kind"),
        ({"devices": {"x": {"kind": "ne1000"}}}, "devices.x.url: required key is missing"),
        (
            {"devices": {"x": {"kind": "ne1000", "url": "loop://", "address": 100}}},
            "devices.x.address",
        ),
        ({"devices": {}}, "devices:"),
        ({"devices": {"x": {"kind": "ne1000", "url": "loop://"}}, "lease_ttl_s": 0}, "lease_ttl_s"),
        ({"device": {}}, "device: unknown key"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_workcells(data: object, expected: str) -> None:
    with pytest.raises(SpecError, match=expected.replace(".", r"\.")):
        parse_workcell(data, "w.yaml")


def test_lease_ttl_from_the_workcell_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAB_LEASE_TTL_S", raising=False)
    p = tmp_path / "w.yaml"
    p.write_text(EXAMPLE)
    assert load_workcell(p).lease_ttl() == DEFAULT_LEASE_TTL_S == lease_ttl() == 30.0
    p.write_text(EXAMPLE + "lease_ttl_s: 2.5\n")
    wc = load_workcell(p)
    assert wc.lease_ttl() == 2.5
    dump_workcell(wc, tmp_path / "copy.yaml")
    assert load_workcell(tmp_path / "copy.yaml").lease_ttl() == 2.5
    monkeypatch.setenv("LAB_LEASE_TTL_S", " 0.75 ")  # overrides the file
    assert wc.lease_ttl() == 0.75 == lease_ttl()


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf", "1e9"])
def test_bad_lease_ttl_in_the_environment(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_LEASE_TTL_S", value)
    with pytest.raises(SpecError, match=f"LAB_LEASE_TTL_S='{value}': give the instrument lease"):
        parse_workcell({"devices": {"x": {"kind": "ne1000", "url": "loop://"}}}).lease_ttl()


def test_an_unregistered_instrument_kind_is_refused_by_name() -> None:
    from lab.instruments import check_kinds

    wc = parse_workcell({"devices": {"x": {"kind": "toaster", "url": "loop://"}}}, "w.yaml")
    with pytest.raises(
        SpecError, match="devices.x.kind: unknown instrument kind 'toaster'; registered: grbl"
    ):
        check_kinds(wc, "w.yaml")
