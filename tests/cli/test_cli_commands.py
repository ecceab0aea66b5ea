"""The ``linli`` command line as an operator uses it (interfaces.md §1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from linli.cli import app

DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dev.jsonl"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LINLI_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def test_classify_reads_jsonl_and_survives_bad_lines(runner: CliRunner) -> None:
    lines = "\n".join(
        [
            json.dumps({"id": "a", "text": "楼道的灯坏了好几天了"}, ensure_ascii=False),
            "this is not json",
            json.dumps({"id": "b", "text": "我家老人摔倒了起不来"}, ensure_ascii=False),
        ]
    )
    result = runner.invoke(app, ["classify", "--top", "3"], input=lines + "\n")
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["id"] == "a" and out[0]["category"] == "environment" and "candidates" in out[0]
    assert "error" in out[1]
    assert out[2]["emergency"] is True and set(out[2]) >= {
        "id",
        "category",
        "kind",
        "confidence",
        "matched",
    }


@pytest.mark.skipif(not DEV.exists(), reason=f"dev set not found at {DEV}")
def test_nlp_eval_prints_the_scores(runner: CliRunner) -> None:
    result = runner.invoke(app, ["nlp", "eval", str(DEV)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout.lower() and "emergency" in result.stdout.lower()


def test_migrate_demo_twice_and_staff_add(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "13 organizations created" in first.stdout and "org_wuye_my" in first.stdout
    second = runner.invoke(app, ["demo"])
    assert "0 organizations created" in second.stdout
    created = runner.invoke(
        app, ["staff", "add", "zhang", "--role", "staff", "--community", "桂花社区"]
    )
    assert created.exit_code == 0 and "one-time password" in created.stdout
    again = runner.invoke(app, ["staff", "add", "zhang", "--role", "staff"])
    assert again.exit_code != 0
    unknown = runner.invoke(
        app, ["staff", "add", "li", "--role", "staff", "--community", "不存在社区"]
    )
    assert unknown.exit_code != 0


HEADER = "name,type,categories,communities,notify\n"


def test_import_orgs_csv_all_or_nothing(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + "新希望助老社,社会组织,elderly,桂花社区,telegram:-1001\n"
        + "乱写组织,社会组织,cooking,桂花社区,\n"
        + "第三个,社会组织,health,不存在社区,fax:123\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", "orgs", str(bad)])
    assert result.exit_code == 1
    assert "line 3" in result.output and "cooking" in result.output and "line 4" in result.output
    assert "nothing imported" in result.output

    good = tmp_path / "good.csv"
    good.write_text(
        HEADER + "新希望助老社,社会组织,elderly|health,桂花社区|湖滨社区,telegram:-1001\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", "orgs", str(good)])
    assert result.exit_code == 0 and "imported 1" in result.output


def test_import_orgs_xlsx(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["name", "type", "categories", "communities", "notify"])
    sheet.append(["书香读书会", "社会组织", "culture", "*", "generic:bridge:club"])
    path = tmp_path / "orgs.xlsx"
    workbook.save(path)
    result = runner.invoke(app, ["import", "orgs", str(path)])
    assert result.exit_code == 0 and "imported 1" in result.output
    missing = tmp_path / "missing.csv"
    missing.write_text("name,type\nx,y\n", encoding="utf-8")
    result = runner.invoke(app, ["import", "orgs", str(missing)])
    assert result.exit_code == 2 and "missing columns" in result.output


def test_keywords_and_eval_from_db(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    empty = runner.invoke(app, ["nlp", "eval", "--from-db"])
    assert empty.exit_code == 0 and "no staff corrections" in empty.stdout
    added = runner.invoke(app, ["nlp", "keywords", "add", "safety", "蓝马甲巡逻"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["nlp", "keywords", "list"])
    assert "safety\tadd\t蓝马甲巡逻\tcli" in listed.stdout
    bad = runner.invoke(app, ["nlp", "keywords", "add", "cooking", "x"])
    assert bad.exit_code == 1 and "没有这个类别" in bad.output
    reset = runner.invoke(app, ["nlp", "keywords", "reset", "safety", "蓝马甲巡逻"])
    assert reset.exit_code == 0 and "ok" in reset.stdout
    assert "no staff changes" in runner.invoke(app, ["nlp", "keywords", "list"]).stdout
