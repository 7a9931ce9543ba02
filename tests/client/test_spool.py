"""The spool on its own: order, durability across processes, what the server refuses."""

from __future__ import annotations

import json
import multiprocessing

from clawdbot_client.spool import Outcome, Sent, Spool


def _item(n: int) -> dict:
    return {"key": f"k-{n}", "body": {"event": {"n": n}}}


def test_drain_sends_in_order_and_empties_the_spool(tmp_path):
    spool = Spool(tmp_path / "s.jsonl")
    for n in range(5):
        spool.append(_item(n))
    sent = []
    result = spool.drain(lambda item: sent.append(item["key"]) or Sent(Outcome.DONE))
    assert sent == [f"k-{n}" for n in range(5)]
    assert (result.done, result.left) == (5, 0)
    assert spool.path.stat().st_size == 0


def test_a_later_answer_stops_the_drain_and_keeps_the_item_first(tmp_path):
    spool = Spool(tmp_path / "s.jsonl")
    for n in range(3):
        spool.append(_item(n))
    answers = iter([Sent(Outcome.DONE), Sent(Outcome.LATER, retry_after_s=7)])
    result = spool.drain(lambda item: next(answers))
    assert (result.done, result.left, result.retry_after_s) == (1, 2, 7)
    assert [i["key"] for i in Spool(spool.path).items()] == ["k-1", "k-2"]


def test_a_refused_item_is_set_aside_with_the_answer_and_the_rest_goes_on(tmp_path):
    spool = Spool(tmp_path / "s.jsonl")
    for n in range(3):
        spool.append(_item(n))
    sent = []

    def send(item):
        sent.append(item["key"])
        return Sent(Outcome.REFUSED, "HTTP 409: used") if item["key"] == "k-1" \
            else Sent(Outcome.DONE)

    assert spool.drain(send).left == 0
    assert sent == ["k-0", "k-1", "k-2"]
    refused, = [json.loads(x) for x in spool.rejected_path.read_text().splitlines()]
    assert (refused["key"], refused["refusal"]) == ("k-1", "HTTP 409: used")


def test_a_line_torn_by_a_killed_writer_does_not_swallow_the_next_item(tmp_path):
    spool = Spool(tmp_path / "s.jsonl")
    spool.append(_item(0))
    with open(spool.path, "ab") as file:
        file.write(b'{"key": "k-torn", "bo')  # a writer killed mid-line
    spool.append(_item(1))
    sent = []
    spool.drain(lambda item: sent.append(item["key"]) or Sent(Outcome.DONE))
    assert sent == ["k-0", "k-1"]
    assert "unreadable" in spool.rejected_path.read_text()


def test_only_one_drainer_at_a_time(tmp_path):
    spool = Spool(tmp_path / "s.jsonl")
    spool.append(_item(0))
    inner = []

    def send(item):
        inner.append(Spool(spool.path).drain(lambda i: Sent(Outcome.DONE)))
        return Sent(Outcome.DONE)

    spool.drain(send)
    assert inner[0].busy and inner[0].done == 0


def _append_many(path: str, start: int) -> None:
    spool = Spool(path)
    for n in range(start, start + 200):
        spool.append(_item(n))


def test_processes_appending_at_once_lose_and_mangle_nothing(tmp_path):
    path = str(tmp_path / "s.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, i * 1000)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    keys = [i["key"] for i in Spool(path).items()]
    assert sorted(keys) == sorted(f"k-{i * 1000 + n}" for i in range(4) for n in range(200))
    for i in range(4):  # each writer's own items stay in its order
        mine = [k for k in keys if int(k[2:]) // 1000 == i]
        assert mine == sorted(mine, key=lambda k: int(k[2:]))
