import json

import pytest

from spar.records import Instruction, JsonlAppender, Pair, RecordError, Response, read_jsonl, write_jsonl


def test_roundtrip_and_atomic_write(tmp_path):
    path = tmp_path / "a" / "instructions.jsonl"
    no_comma = [{"id": "punctuation:no_comma", "kwargs": {}}]
    recs = [Instruction(id=str(i), prompt=f"p{i}", constraints=no_comma) for i in range(3)]
    write_jsonl(path, recs)
    assert read_jsonl(path, Instruction) == recs
    assert not path.with_name(path.name + ".tmp").exists()


def test_torn_tail_is_dropped_and_repaired_on_append(tmp_path):
    """A crash mid-write leaves a partial last line: readers drop it, the appender cuts it off."""
    path = tmp_path / "r.jsonl"
    with JsonlAppender(path) as w:
        w.write(Response("i1", 0, "hello"))
    with open(path, "a") as f:
        f.write('{"instruction_id": "i1", "ind')
    assert [r.index for r in read_jsonl(path, Response)] == [0]
    with JsonlAppender(path) as w:
        w.write(Response("i1", 1, "again"))
    assert [r.index for r in read_jsonl(path, Response)] == [0, 1]


def test_whole_last_line_without_newline_is_kept(tmp_path):
    """A complete record lacking only its newline (hand-written file) is not thrown away."""
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"instruction_id": "a", "index": 0, "text": "t"}))
    with JsonlAppender(path) as w:
        w.write(Response("a", 1, "u"))
    assert [r.index for r in read_jsonl(path, Response)] == [0, 1]


def test_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "1", "prompt": "x"}\nnot json\n{"id": "3", "prompt": "z"}\n')
    with pytest.raises(RecordError, match=r"bad.jsonl:2"):
        read_jsonl(path, Instruction)
    path.write_text('{"id": "1"}\n')
    with pytest.raises(RecordError, match=r"bad.jsonl:1.*missing.*prompt"):
        read_jsonl(path, Instruction)


def test_pair_trl_format():
    p = Pair("i", [{"role": "user", "content": "q"}], "good", "bad", edit_distance=1)
    d = p.to_trl()
    assert d["chosen"] == [{"role": "assistant", "content": "good"}]
    assert d["prompt"][0]["content"] == "q"
