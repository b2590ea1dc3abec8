"""0 untranslated strings in Korean: every page rendered in Korean for every role, with a job whose reason
and events carry every kind of reason the scheduler, the lifecycle and the executors write, has no English
words left once the data on it (ids, names, types, vendors, commands, logs) is taken out."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert, update
from tests.web.world import NOW

from accelpool.core.types import WaitReason
from accelpool.storage import tables as T
from accelpool.web import i18n, reasons

# one sentence of each form core.reasons.explain writes (the code, the need, then the facts)
WAIT_SENTENCES = (
    "capacity: needs 8 x h100; every one is in use",
    "capacity: needs 8 x h100; every one is in use; preemptible jobs on h100 may yield at the lease boundary "
    "at 14:06 UTC",
    "fair-share: needs 1 x rngd; waits for its fair share: jobs that have run less go first, at a lease "
    "boundary; preemptible jobs on rngd may yield at the lease boundary at 09:00 UTC",
    "gang: needs 6 x h100 at once; free devices are spread over too many nodes",
    "quota: needs 2 x a100; its tenant's quota or cap on a100 is in use",
    "quota: needs 2 x a100; its tenant's cap on a100 under its program is in use",
    "quota: needs 2 x a100; the a100 devices it could use are guaranteed to other tenants (their quota)",
    "fair-share: needs 1 x rngd; waits for its fair share: jobs that have run less go first, at a lease boundary",
    "priority: needs 4 x h100; jobs with a higher priority hold the devices",
    "budget: needs 2 x h100; grant g1 has 5000 KRW left after the leases of its running jobs and a lease "
    "(6 min) costs 8000 KRW",
    "blocked (budget): needs 1 x h100; grant g1 has 500 KRW left and a lease (60 min) costs 1000 KRW",
    "blocked (budget): needs 1 x h100; grant g1 has 500 KRW left and its max_run_time (60 min) costs at least 1000 KRW, set aside when it starts (it is not preemptible)",
    "blocked (rule): needs 2 x rngd; its constraints or its program's rules allow none of the types it runs on",
    "blocked (not-runnable): needs 2 x warboy; no warboy node is in service (2 down)",
    "blocked (not-runnable): needs 2 x warboy; no warboy node is in service (the pool has none)",
    "blocked (not-runnable): needs 2 x warboy; every warboy node is down (2 drained, 2 lost)",
    "blocked (not-runnable): needs 2 x warboy; every warboy node is down (1 lost, 3 at a site that is down)",
    "blocked (not-runnable): needs 2 x warboy; the pool has no warboy node",
    "budget: needs 1 x h100; grant g has 999 KRW left after what its running jobs set aside, and its "
    "max_run_time (60 min) costs 1000 KRW, set aside when it starts (it is not preemptible)",
    "blocked (not-runnable): needs 16 x h100; no node in service can take 16 devices of a type it runs on",
    "blocked (not-runnable): needs 2 x a type it runs on; no node in service can take 2 devices of a type it runs on",
    "capacity: needs 2 x h100; 3 free; position 2 of 5 in your tenant, 7 of 20 in the pool",
    "blocked: needs 2 x h100; grant g1 has 5000 KRW left and a lease (1.0 h) costs 18000 KRW",
    # grant and program periods (core.periods)
    "budget: needs 1 x h100; grant g1 ended at 2026-12-03 15:00 UTC: it pays for no run now",
    "blocked (budget): needs 1 x h100; program p1 starts at 2026-12-05 09:00 UTC: it pays for no run now",
    "blocked (budget): needs 1 x h100; grant g1 ends at 2026-12-10 00:00 UTC, before its max_run_time (2.0 h) "
    "would end if it started now (a job that may not be stopped starts only when its whole run fits in its "
    "grant's period)",
    *WaitReason,
)
# what the lifecycle and the executors write as an event's reason
EVENT_REASONS = (
    "submitted",
    "placed on 2 x h100",
    "requeued after preemption (grant period over: grant g1 ended at 2026-12-03 15:00 UTC)",
    "stopped: grant period over: program p1 ended at 2026-12-03 15:00 UTC",
    "exited 0",
    "exit code 3",
    "exit code 1 (Slurm FAILED)",
    "killed by signal 9",
    "cancelled by alice",
    "cancelled by user",
    "requeued",
    "requeued after preemption (lease)",
    "requeued after preemption (moved)",
    "requeued after preemption (budget)",
    "requeued after preemption (grant exhausted)",
    "requeued after preemption (its devices are no longer in service (node drained or down))",
    "lease",
    "moved",
    "its devices are no longer in service (node drained or down)",
    "lost",
    "lost: not running after restart",
    "lost: process vanished without exit code",
    "lost: start failed (FileNotFoundError)",
    "lost: Slurm no longer knows job 1234",
    "lost: an earlier run of job j-1 is still alive (wrapper pid 4242); the executor's trouble, not the job's: "
    "tried again in 30 s",
    "its executor's report could not be recorded (ValueError)",
    "node-lost: h-1 (down, and the job ended badly; Slurm has purged it)",
    "lost: pending in Slurm for more than 600 s (Resources)",
    "node-lost: h-0 is down",
    "node-lost: h-0 drained",
    "node-lost: h-0, h-1 (Slurm ended it NODE_FAIL)",
    "node h-0 lost",
    "site-lost: busan not answering for 45 s",
    "stopped: cancelled (exit code -15)",
    "stopped: lease (Slurm CANCELLED, exit code 0)",
    "stopped: unknown to the store",
    "failed",
)
# words that are data or names on a page, not messages: ids and names from the fixture, types and vendors,
# units and brands
# data, not words: names in the world fixture, type and site names ("default": the implicit site, 7f6d536)
DATA = re.compile(
    r"(?<![A-Za-z0-9_])(?:(?:alice|bob)(?:-\w+)*|admin-token|accelpool|API|HttpOnly|GPU|NPU|KRW|Slurm|ID|FAILED|CANCELLED|NODE_FAIL|Resources|FileNotFoundError|ValueError|"
    r"NVIDIA|AMD|FuriosaAI|Rebellions|Furiosa|Intel|Gaudi|RNGD|ATOM|Atom|Warboy|warboy|busan|python|train|"
    r"py|step|loss|root|pm2|Program|Asia|Seoul|UTC|Tokyo|America|Los_Angeles|New_York|Europe|London|"
    r"English|h100|a100|rngd|atom|H100|A100|SXM|PCIe|NVLink|[a-z]-\d|[a-z]\d+|j-[0-9a-f]+|xss|"
    r"lost|node|running|queued|cancelled|finished|script|alert|default)(?![A-Za-z0-9_])"
)
ENGLISH = re.compile(r"[A-Za-z]{3,}")


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<pre\b.*?</pre>", " ", html, flags=re.S)  # logs are the job's own output
    html = re.sub(r"<code>.*?</code>", " ", html, flags=re.S)  # its command
    text = re.sub(r"<[^>]+>", "\n", html)
    for a, b in (
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
        ("&#39;", "'"),
        ("&#34;", '"'),
        ("&quot;", '"'),
        ("&middot;", " "),
    ):
        text = text.replace(a, b)
    return text


def english_left(html: str) -> set[str]:
    out = set()
    for line in visible_text(html).splitlines():
        rest = DATA.sub(" ", line)
        if ENGLISH.search(rest):
            out.add(line.strip())
    return out


@pytest.mark.parametrize("text", [*WAIT_SENTENCES, *EVENT_REASONS])
def test_every_reason_the_code_writes_has_a_korean_rendering(text):
    assert reasons.untranslated(text) == [], text
    ko = i18n.Locale("ko", i18n.zone(None)).reason(text)
    assert not ENGLISH.search(DATA.sub(" ", ko)), (text, ko)
    assert "KRW" not in i18n.Locale("en", i18n.zone(None)).reason(text)  # won in English too


def test_every_wait_code_has_a_label_and_a_sentence_in_both_languages():
    for code in WaitReason:
        assert code in reasons.KIND_KO and code in reasons.KIND_EN
        assert code in reasons.WORDS_KO and code in reasons.WORDS_EN


def test_positions_in_words():
    ko, en = i18n.Locale("ko", i18n.zone(None)), i18n.Locale("en", i18n.zone(None))
    assert ko.position(3) == "풀 대기열 3번째" and en.position(3) == "3rd in the pool's queue"
    assert [en.position(n).split(" ")[0] for n in (1, 2, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st",
        "2nd",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
        "111th",
    ]


@pytest.mark.parametrize("who", ["admin", "m1", "pm2"])
def test_every_page_in_korean_has_no_english_left(world, who):
    queued = world.jobs["queued"]
    with world.store.write() as c:
        c.execute(update(T.jobs).where(T.jobs.c.id == queued).values(reason=WAIT_SENTENCES[0]))
        rows = [*WAIT_SENTENCES, *EVENT_REASONS]
        c.execute(
            insert(T.job_events),
            [
                {"job": queued, "time": NOW - 600 + i, "state": "queued", "reason": str(r)}
                for i, r in enumerate(rows)
            ],
        )
    world.store.invalidate()
    pages = ["/ui", "/ui/jobs", "/ui/programs", "/ui/pool", "/ui/no/such/page", "/ui/jobs/j-nope"]
    pages += [f"/ui/jobs/{j}" for j in world.jobs.values()]
    pages += ["/ui/jobs?state=queued&sort=name", "/ui/jobs?log=0"]
    for path in pages:
        r = world.get(path, who, lang="ko")
        assert r.status_code in (200, 404), (path, r.status_code)
        assert english_left(r.text) == set(), (who, path)
    login = world.client.get("/ui/login", headers={"Accept-Language": "ko"}).text
    assert english_left(login) == set()
    # the check sees English where there is some: the same pages in English
    assert len(english_left(world.get(f"/ui/jobs/{queued}", "admin", lang="en").text)) > 20
