"""The reader's limits and per-row decoding (metrics.io.readers): bombs, wide headers, huge cells, bad bytes.

Every big or hostile input is built here, at test time (nothing large is committed). Each limit is
tested at its edge (the limit loads, one more is refused) and with the error the user sees: the
file or archive member, the row and column where that means something, the limit, and how to raise
it. Bombs are also timed: they must be refused while cheap, not after the work they guard.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
import zlib

import pytest

from conftest import ROOT
from metrics.cli import add_load_options, load_from_args
from metrics.errors import ValidationError
from metrics.io.loaders import load_bytes
from metrics.io.readers import configured_max_expanded_bytes  # noqa: E402
from metrics.io.readers import (DEFAULT_MAX_COLUMNS, DEFAULT_MAX_EXPANDED_BYTES, DEFAULT_MAX_FIELD_BYTES,
                             DEFAULT_MAX_MEMBERS, MAX_ARCHIVE_DEPTH, MAX_JSON_DEPTH, MAX_ZIP_ENTRIES, LimitError,
                             read_table)

CST = b"conversation_id,speaker,text\n"


def _zip(members: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buf.getvalue()


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _refused(call, *args, **kwargs) -> LimitError:
    with pytest.raises(LimitError) as info:
        call(*args, **kwargs)
    assert info.value.total == 1 and info.value.problems[0].fix, "one problem, saying how to fix it"
    return info.value


def test_the_defaults_are_the_documented_ones():
    import metrics.io.readers as readers

    assert (DEFAULT_MAX_EXPANDED_BYTES, DEFAULT_MAX_COLUMNS, DEFAULT_MAX_MEMBERS, DEFAULT_MAX_FIELD_BYTES) == (
        1_000_000_000, 2_000, 1_000, 1_048_576)
    assert (MAX_ARCHIVE_DEPTH, MAX_ZIP_ENTRIES, MAX_JSON_DEPTH) == (3, 10_000, 100)
    for text in ("1,000,000,000 bytes", "2,000", "1,000", "1 MiB", "10,000", "3 levels", "100 levels"):
        assert text in readers.__doc__, text


# --------------------------------------------------------------------------- one expanded-size budget

def _ten_gzip_members(each: int) -> bytes:
    part = _gz(CST + b"c1,user,hi there\n" * (each // 17))
    return _zip({f"part{i}.csv.gz": part for i in range(10)})


def test_a_zip_of_gzips_shares_one_budget_across_members_and_levels():
    """Each member expands to ~3 MB, well under the 20 MB budget; the ten together do not fit."""
    data = _ten_gzip_members(3_000_000)
    assert len(data) < 100_000
    one = _zip({"part0.csv.gz": zipfile.ZipFile(io.BytesIO(data)).read("part0.csv.gz")})
    assert len(read_table(one, "one.zip", max_expanded_bytes=20_000_000).frame) == 3_000_000 // 17  # alone: fits
    started = time.perf_counter()
    err = _refused(read_table, data, "ten.zip", max_expanded_bytes=20_000_000)
    assert time.perf_counter() - started < 10
    problem = err.problems[0]
    assert problem.file == "ten.zip:part6.csv.gz"  # parts 0-5 fit (18 MB); the 7th runs past 20 MB
    assert (problem.row, problem.column) == (None, None)
    assert problem.message.startswith("the gzip file takes the upload past 20,000,000 unpacked bytes (")
    assert "the limit counts every file and level of an archive together" in problem.message
    assert problem.fix == ("split the export into smaller files, or raise the expanded-size limit "
                           "(now 20,000,000 bytes)")
    assert (err.option, err.limit) == ("max_expanded_bytes", 20_000_000)
    with pytest.raises(LimitError):  # the loader passes its limit down (and reads generic files with it)
        load_bytes(data, "ten.zip", max_expanded_bytes=20_000_000)


def test_every_level_counts_and_the_limit_is_exact():
    """Unpacked bytes at every level count: the zip's member (the .gz) and what the .gz expands to."""
    inner = CST + b"c1,user,hi\n" * 1000
    member = _gz(inner)
    data = _zip({"a.csv.gz": member})
    total = len(member) + len(inner)
    assert read_table(data, "a.zip", max_expanded_bytes=total).frame.shape == (1000, 3)
    err = _refused(read_table, data, "a.zip", max_expanded_bytes=total - 1)
    assert err.problems[0].file == "a.zip:a.csv.gz"
    assert err.problems[0].message.startswith(f"the gzip file takes the upload past {total - 1:,} unpacked bytes")


def test_a_gzip_bomb_is_stopped_when_the_budget_runs_out_not_after():
    packer, zeros = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(500)) + packer.flush()  # 500 MiB of zeros in 0.5 MB
    assert len(bomb) < 1_000_000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        err = _refused(read_table, bomb, "bomb.csv.gz", max_expanded_bytes=10_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2
    assert peak < 40_000_000, f"{peak:,} bytes traced: the bomb was expanded beyond the budget"
    assert err.problems[0].message == "the gzip file expands to more than 10,000,000 bytes"


# --------------------------------------------------------------------------- nesting

def _nested_gzip(levels: int) -> bytes:
    data = CST + b"c1,user,hi\n"
    for _ in range(levels):
        data = gzip.compress(data, compresslevel=1, mtime=0)
    return data


def _nested_zip(levels: int) -> bytes:
    data = _zip({"a.csv": CST + b"c1,user,hi\n"})
    for _ in range(levels - 1):
        data = _zip({"a.csv": data}, compression=zipfile.ZIP_STORED)
    return data


@pytest.mark.parametrize("name,build,levels", [("deep.csv.gz", _nested_gzip, 1000), ("deep.zip", _nested_zip, 600)])
def test_deeply_nested_archives_are_a_clear_error_not_a_recursion_error(name, build, levels):
    data = build(levels)
    started = time.perf_counter()
    with pytest.raises(ValidationError) as info:  # before the fix: RecursionError
        load_bytes(data, name)
    assert time.perf_counter() - started < 2
    assert isinstance(info.value, LimitError) and info.value.option is None
    problem = info.value.problems[0]
    assert problem.file.startswith(name.split(".")[0])
    assert problem.message.startswith("archives are nested more than 3 levels deep")
    assert problem.fix == "unpack the archive and upload the export inside it"
    assert not isinstance(info.value.__context__, RecursionError)


def test_three_levels_of_archives_load_and_four_do_not():
    three = _zip({"a.csv.gz": _gz(_gz(CST + b"c1,user,three\n"))})  # zip > gzip > gzip > csv
    table = read_table(three, "three.zip")
    assert table.frame["text"].tolist() == ["three"] and table.format == "csv+gz+gz+zip"
    err = _refused(read_table, _zip({"a.csv.gz": _gz(_gz(_gz(CST + b"c1,user,four\n")))}), "four.zip")
    assert err.problems[0].message.startswith("archives are nested more than 3 levels deep")
    assert _nested_gzip(3) and read_table(_nested_gzip(3), "g.csv.gz").frame["text"].tolist() == ["hi"]
    _refused(read_table, _nested_gzip(4), "g.csv.gz")


# --------------------------------------------------------------------------- archive members

@pytest.fixture(scope="module")
def fifty_thousand_members() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for i in range(50_000):
            archive.writestr(f"m{i}.csv", "conversation_id,speaker,text\nc1,user,hi\n")
    return buf.getvalue()


def test_a_zip_of_fifty_thousand_members_is_refused_at_once(fifty_thousand_members):
    started = time.perf_counter()
    err = _refused(read_table, fifty_thousand_members, "many.zip")
    # the generic loader goes straight to the reader (the adapters' detection reads the zip first: see the report)
    _refused(load_bytes, fifty_thousand_members, "many.zip", platform="generic")
    assert time.perf_counter() - started < 5
    problem = err.problems[0]
    assert (problem.file, problem.row, problem.column) == ("many.zip", None, None)
    assert problem.message == "the zip has 50,000 entries; at most 10,000 are examined"


def test_table_members_above_the_limit_are_refused_before_any_is_read():
    members = {f"part{i}.csv": CST + f"c{i},user,hi\n".encode() for i in range(4)}
    assert len(read_table(_zip(members), "four.zip", max_members=4).frame) == 4
    err = _refused(read_table, _zip(members), "four.zip", max_members=3)
    assert err.problems[0].message == "the zip holds 4 table files, more than the 3 allowed"
    assert (err.option, err.limit) == ("max_members", 3)
    # junk entries (not tables) count towards the entries examined, not towards the members
    junk = {f"img{i}.png": b"x" for i in range(20)} | {"a.csv": CST + b"c1,user,hi\n"}
    assert read_table(_zip(junk), "junk.zip", max_members=1).frame["text"].tolist() == ["hi"]


def test_problems_in_later_members_are_numbered_across_the_archive():
    """The loader drops skipped rows by number: a problem in the 2nd file must not name a row of the 1st."""
    first = CST + b"".join(f"c1,user,first {i}\n".encode() for i in range(5))
    second = CST + b"c2,user,ok\nc2,user,too,many\nc2,bot,fine\n"
    result = load_bytes(_zip({"a.csv": first, "b.csv": second}), "two.zip", on_error="skip")
    assert result.skipped["row"].tolist() == [7]  # the 2nd record of b.csv, after the 5 of a.csv
    assert result.frame["text"].tolist() == [f"first {i}" for i in range(5)] + ["ok", "fine"]


# --------------------------------------------------------------------------- columns

def _peak_in_child(setup: str) -> dict:
    """Run read_table(data, name) in a fresh interpreter: its time, peak RSS growth (MB) and outcome."""
    script = textwrap.dedent("""
        import json, os, resource, sys, time
        sys.path.insert(0, {root!r})
        from metrics.io.readers import LimitError, read_table

        def rss_kb():
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

        {setup}
        before = rss_kb()
        started = time.perf_counter()
        try:
            read_table(data, name)
            outcome = "loaded"
        except LimitError as exc:
            outcome = exc.problems[0].message
        seconds = time.perf_counter() - started
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from a forked parent (a big pytest process)
        with open("/proc/self/status") as fh:
            peak_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
        growth = (peak_kb - before) / 1024
        print(json.dumps({{"seconds": seconds, "growth_mb": growth, "outcome": outcome}}))
    """).format(root=str(ROOT), setup=setup)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_header_of_half_a_million_columns_is_refused_quickly_and_cheaply():
    figures = _peak_in_child(
        'header = ",".join(f"c{i}" for i in range(500_000)).encode()\n'
        'data = header + b"\\n" + b",".join(b"1" for _ in range(500_000)) + b"\\n"\n'
        'name = "wide.csv"')
    assert figures["outcome"] == "the header has 500,000 columns, more than the 2,000 allowed"
    assert figures["seconds"] < 2, figures
    assert figures["growth_mb"] < 300, figures  # before the fix: about 2 GB


def test_the_column_limit_is_exact_and_quoted_separators_do_not_count():
    names = [f"col{i}" for i in range(DEFAULT_MAX_COLUMNS - 3)]
    wide = ("conversation_id,speaker,text," + ",".join(names) + "\nc1,user,hi," + ",".join("0" * len(names))
            + "\n").encode()
    result = load_bytes(wide, "wide.csv")  # 2,000 columns: loads, the extra ones listed briefly
    assert result.frame["text"].tolist() == ["hi"] and len(result.ignored_columns) == DEFAULT_MAX_COLUMNS - 3
    one_more = wide.replace(b"text,", b"text,extra,", 1).replace(b"hi,", b"hi,x,", 1)
    err = _refused(read_table, one_more, "wider.csv")
    assert err.problems[0].message == "the header has 2,001 columns, more than the 2,000 allowed"
    assert (err.option, err.limit) == ("max_columns", 2_000)
    quoted = b'"a,b",text\n1,hi\n'  # two columns, although the line holds two commas
    assert list(read_table(quoted, "q.csv", max_columns=2).frame.columns) == ["a,b", "text"]
    # a missing text column in a wide file lists the first 20 columns, not all of them
    no_text = (",".join(names) + "\n" + ",".join("0" * len(names)) + "\n").encode()
    with pytest.raises(ValidationError) as info:
        load_bytes(no_text, "no_text.csv")
    assert info.value.problems[0].message.endswith("columns are: " + ", ".join(f"col{i}" for i in range(20)))


def test_json_records_with_too_many_distinct_keys_are_refused_before_the_frame_is_built():
    records = [{"conversation_id": "c1", "speaker": "user", "text": "hi", f"k{i}": 1} for i in range(60)]
    data = json.dumps(records).encode()
    assert read_table(data, "keys.json", max_columns=63).frame.shape == (60, 63)
    err = _refused(read_table, data, "keys.json", max_columns=62)
    assert err.problems[0].message == "the records hold more than 63 columns, more than the 62 allowed"


# --------------------------------------------------------------------------- cells

def test_a_cell_over_the_size_limit_names_its_row_and_column():
    limit = DEFAULT_MAX_FIELD_BYTES
    fits = CST + b"c1,user,ok\nc1,bot," + b"x" * limit + b"\n"
    assert len(read_table(fits, "fits.csv").frame["text"].iloc[1]) == limit
    err = _refused(read_table, fits.replace(b"x" * limit, b"x" * (limit + 1)), "big.csv")
    problem = err.problems[0]
    assert (problem.file, problem.row, problem.column) == ("big.csv", 2, "text")
    assert problem.message == f"a cell holds {limit + 1:,} bytes, more than the {limit:,} allowed"
    assert (err.option, err.limit) == ("max_field_bytes", limit)
    # bytes, not characters: 300,000 four-byte emoji are 1.2 MB
    emoji = CST + "c1,user,".encode() + "😀".encode() * 300_000 + b"\n"
    assert _refused(read_table, emoji, "emoji.csv").problems[0].message.startswith("a cell holds 1,200,000 bytes")
    assert len(read_table(emoji, "emoji.csv", max_field_bytes=1_200_000).frame) == 1


def test_an_unclosed_quote_that_swallows_the_file_is_refused_at_its_row():
    rows = b"".join(b"c1,user,message %d\n" % i for i in range(60_000))  # 1.2 MB of rows after the quote
    data = CST + b"c1,user,fine\nc1,bot,\"this quote is never closed\n" + rows + b'"\n'
    err = _refused(read_table, data, "runaway.csv")
    assert (err.problems[0].row, err.problems[0].column) == (2, "text")
    assert "quote that is opened in this cell and never closed" in err.problems[0].fix


def test_json_cells_are_measured_too():
    big = json.dumps([{"conversation_id": "c1", "speaker": "user", "text": "y" * 200}] * 3).encode()
    err = _refused(read_table, big, "t.json", max_field_bytes=199)
    assert (err.problems[0].row, err.problems[0].column) == (1, "text")


# --------------------------------------------------------------------------- JSON nesting

def _nested_json(levels: int) -> bytes:
    """An array of one message whose ``meta`` nests arrays so that the whole document is ``levels`` deep."""
    inner = "[" * (levels - 2) + "]" * (levels - 2)
    return f'[{{"conversation_id": "c1", "speaker": "user", "text": "x", "meta": {inner}}}]'.encode()


def test_json_nesting_is_limited_exactly_and_strings_do_not_count():
    assert read_table(_nested_json(MAX_JSON_DEPTH), "ok.json").frame["text"].tolist() == ["x"]
    err = _refused(read_table, _nested_json(MAX_JSON_DEPTH + 1), "deep.json")
    assert err.problems[0].message == "the JSON is nested too deeply to read"
    assert "at most 100 levels of nesting are read" in err.problems[0].fix
    brackets = json.dumps([{"conversation_id": "c1", "speaker": "user", "text": "[{" * 5000 + '\\"]'}]).encode()
    assert read_table(brackets, "b.json").frame["text"].iloc[0].startswith("[{[{")
    line = _nested_json(MAX_JSON_DEPTH + 2)[1:-1]  # one object: 101 levels
    jsonl = b'{"conversation_id": "c1", "speaker": "user", "text": "ok"}\n\n' + line + b"\n"
    err = _refused(read_table, jsonl, "deep.jsonl")
    assert (err.problems[0].row, err.problems[0].message) == (3, "line 3 is nested too deeply to read")


# --------------------------------------------------------------------------- text encodings

def _utf8_rows(n: int) -> list[bytes]:
    return [f"c{i // 4},{'user' if i % 2 else 'bot'},café ☕ naïve message {i}\n".encode() for i in range(n)]


def test_one_bad_byte_in_a_utf8_file_is_a_problem_on_its_row_only():
    rows = _utf8_rows(1000)
    rows[499] = rows[499].replace(b"message", b"mess\xffage")  # data row 500
    data = CST + b"".join(rows)
    offset = data.index(b"\xff")
    table = read_table(data, "one_bad.csv")
    assert table.notices == []  # read as UTF-8, not as cp1252
    (problem,) = table.problems
    assert (problem.file, problem.row, problem.column) == ("one_bad.csv", 500, "text")
    assert problem.message == f"byte 0xff at offset {offset:,} is not valid UTF-8, unlike the rest of the file"
    assert problem.value == "café ☕ naïve mess\ufffdage 499"
    # every other row is there, intact (no mojibake) and numbered as in the file
    expected = [f"café ☕ naïve message {i}" for i in range(1000) if i != 499]
    assert table.frame["text"].tolist() == expected
    assert table.rows.tolist() == [r for r in range(1, 1001) if r != 500]
    skipped = load_bytes(data, "one_bad.csv", on_error="skip")
    assert skipped.skipped_rows == 1 and skipped.skipped["row"].tolist() == [500]
    assert sorted(skipped.frame["text"]) == sorted(expected) and skipped.source_rows == 1000
    with pytest.raises(ValidationError) as info:  # refused by default, naming the row and the offset
        load_bytes(data, "one_bad.csv")
    assert info.value.total == 1 and info.value.problems[0].row == 500
    assert f"offset {offset:,}" in str(info.value)


def test_bad_bytes_are_located_in_every_text_format_and_under_a_byte_order_mark():
    rows = _utf8_rows(300)
    rows[9] = rows[9].replace(b"message", b"message \xc3\x28")  # data row 10, an invalid 2-byte sequence
    csv_bytes = CST + b"".join(rows)
    bom = read_table(b"\xef\xbb\xbf" + csv_bytes, "bom.csv")  # before: the whole file was refused
    assert [(p.row, p.column) for p in bom.problems] == [(10, "text")]
    offset = csv_bytes.index(b"\xc3\x28") + 3  # offsets count the byte-order mark
    assert f"byte 0xc3 at offset {offset:,} is not valid UTF-8" in bom.problems[0].message
    lines = [json.dumps({"conversation_id": "c1", "speaker": "user", "text": f"héllo {i}"}, ensure_ascii=False)
             for i in range(300)]
    jsonl = "\n".join(lines).encode().replace("héllo 41".encode(), b"h\xe9llo 41")
    table = read_table(jsonl, "x.jsonl")
    assert [(p.row, p.column) for p in table.problems] == [(42, "text")] and len(table.frame) == 299
    gzipped = read_table(_gz(csv_bytes), "x.csv.gz")  # and inside an archive
    assert [p.row for p in gzipped.problems] == [10]
    header = read_table(b"conversation_id,speaker,te\xffxt\n" + csv_bytes.split(b"\n", 1)[1], "h.csv")
    assert list(header.frame.columns)[-1] == "te\ufffdxt"
    assert any("the header holds 1 byte(s) that are not UTF-8 (the first at byte offset 26)" in n
               for n in header.notices)


def test_a_cp1252_file_is_still_read_as_cp1252_with_a_notice():
    text = "".join(f"c{i},user,“Don’t” – it costs €5… café {i}\n" for i in range(500))
    data = (CST.decode() + text).encode("cp1252")
    table = read_table(data, "win.csv")
    assert table.frame["text"].iloc[7] == "“Don’t” – it costs €5… café 7"
    assert table.problems == []
    (notice,) = table.notices
    assert notice.startswith("win.csv: not valid UTF-8; read as Windows-1252 (cp1252). Check accented characters "
                             "(3,500 byte sequence(s) are not UTF-8, the first at byte offset 37")  # 7 a line
    # a file that is ASCII apart from its one bad byte reads the same either way: cp1252, not a refusal
    ascii_file = CST + b"".join(b"c1,user,plain %d\n" % i for i in range(500)) + b"c1,user,caf\xe9\n"
    assert read_table(ascii_file, "a.csv").frame["text"].iloc[-1] == "café"


def test_a_mixed_file_is_read_as_what_most_of_it_is():
    """Rule: UTF-8 when the file has more valid multi-byte characters than invalid sequences, else cp1252."""
    utf8 = "c1,user,naïve\n".encode()  # 1 valid multi-byte character per line
    win = "c1,user,naïve\n".encode("cp1252")  # 1 invalid sequence per line
    mostly_utf8 = CST + utf8 * 30 + win * 29
    table = read_table(mostly_utf8, "m.csv")
    assert table.notices == [] and [p.row for p in table.problems] == list(range(31, 60))
    mostly_win = CST + utf8 * 29 + win * 30
    table = read_table(mostly_win, "w.csv")
    assert "read as Windows-1252" in table.notices[0] and table.frame["text"].iloc[0] == "naÃ¯ve"


def test_utf16_files_keep_working():
    for data, encoding in ((b"\xff\xfe" + (CST.decode() + "c1,user,Grüße\n").encode("utf-16-le"), "UTF-16"),
                           ((CST.decode() + "c1,user,Grüße\n").encode("utf-16-le"), "UTF-16-LE")):
        table = read_table(data, "u.csv")
        assert table.frame["text"].tolist() == ["Grüße"] and table.notices == [f"u.csv: read as {encoding}."]


def test_a_clean_file_is_never_decoded_in_python(monkeypatch):
    """The fast path lets pyarrow validate UTF-8; only a failure locates the bad bytes."""
    import metrics.io.readers as readers

    def forbidden(*args, **kwargs):
        raise AssertionError("a clean UTF-8 file was decoded in Python")

    monkeypatch.setattr(readers, "_decode", forbidden)
    monkeypatch.setattr(readers, "_locate_invalid", forbidden)
    assert len(read_table(CST + b"".join(_utf8_rows(100)), "clean.csv").frame) == 100


# --------------------------------------------------------------------------- records

def test_a_first_record_wider_than_the_header_is_a_problem_not_a_shifted_table():
    """pandas took the extra leading fields for an index: every value moved one column, silently."""
    data = CST + b"c1,user,hi,extra\nc2,bot,yo\nc3,user,a,b\n"
    table = read_table(data, "wide_row.csv")
    assert table.frame.values.tolist() == [["c2", "bot", "yo"]] and table.rows.tolist() == [2]
    assert [(p.row, p.message) for p in table.problems] == [(1, "line 2 has 4 fields but the header has 3"),
                                                           (3, "line 4 has 4 fields but the header has 3")]
    started = time.perf_counter()
    with pytest.raises(ValidationError, match="line 2 has 100003 fields but the header has 3"):
        read_table(CST + b"c1,user,hi" + b"," * 100_000 + b"\n", "commas.csv")  # before: about a minute
    assert time.perf_counter() - started < 2


def test_a_record_the_reader_repaired_is_a_notice_and_the_file_loads():
    header = b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
    data = (header + b"1,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare my text\n"
            + b"continues here,2,\n"  # an unquoted line break: the twcs reader joins the two lines back
            + b"2,sprintcare,False,Tue Oct 31 22:11:47 +0000 2017,@115712 sure,,1\n")
    result = load_bytes(data, "twcs.csv")
    assert result.frame["text"].tolist() == ["@sprintcare my text\ncontinues here", "@115712 sure"]
    assert any("row 1" in n and "joined back" in n for n in result.notices)


# --------------------------------------------------------------------------- the command line

def test_the_cli_passes_the_expanded_size_limit_and_says_how_to_raise_it(tmp_path):
    path = tmp_path / "small.csv.gz"
    path.write_bytes(_gz(CST + b"c1,user,hi\n" * 1000))
    parser = argparse.ArgumentParser()
    add_load_options(parser)
    assert parser.parse_args([str(path)]).max_expanded_bytes is None  # then CHATLENS_MAX_EXPANDED_BYTES or the default
    assert configured_max_expanded_bytes() == DEFAULT_MAX_EXPANDED_BYTES
    with pytest.raises(LimitError) as info:
        load_from_args(parser.parse_args([str(path), "--max-expanded-bytes", "5000"]))
    assert info.value.problems[0].fix.endswith(
        "raise the expanded-size limit (now 5,000 bytes); on the command line: --max-expanded-bytes N")
    result = load_from_args(parser.parse_args([str(path), "--max-expanded-bytes", "50000"]))
    assert len(result.frame) == 1000 and result.frame["text"].unique().tolist() == ["hi"]
