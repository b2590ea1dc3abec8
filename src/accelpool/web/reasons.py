"""The scheduler's and executors' reasons in words, in English and Korean.

What the store keeps as a job's reason or an event's reason is English text written by the core and the
executors; the dashboard shows it in the reader's language:

* one-word codes (``capacity``, ``lease``, ``exited 0``): a sentence each;
* the scheduler's wait sentences (``core.reasons.explain``): ``"<code>: <clause>; <clause>"`` or
  ``"blocked (<code>): ..."``: the code becomes a label in words, each clause is put into Korean on its own
  (amounts as won, durations in Korean units);
* the lifecycle's and executors' event reasons (``placed on 2 x h100``, ``lost: ...``, ``stopped: ...``,
  ``requeued after preemption (lease)``): a prefix in words, the inner reason translated again.

Names and figures inside (job, node, site, type names, exception names, Slurm states) are data and are
kept. A clause no pattern knows is kept as written (``untranslated`` lists them; the dashboard's tests
render every reason kind in Korean and fail on any).
"""

from __future__ import annotations

import re
from collections.abc import Callable

CODES = ("capacity", "quota", "budget", "rule", "gang", "priority", "not-runnable", "fair-share")

# one-word reasons (old stores wrote bare codes as the wait reason) and fixed event reasons
WORDS_EN: dict[str, str] = {
    "capacity": "waiting for free devices of a type it accepts",
    "quota": "its tenant is at its quota for the types it accepts",
    "budget": "its grant has too little money left for it",
    "rule": "a program rule keeps it from the free devices",
    "gang": "waiting until all its devices are free at once",
    "priority": "jobs ahead of it in the queue come first",
    "not-runnable": "no type in the pool can run it",
    "fair-share": "waiting for its fair share: jobs that have run less go first",
    "lease": "its lease ended and others' turn came",
    "moved": "moved to other devices",
    "grant exhausted": "its grant could not pay for the next lease",
}
WORDS_KO: dict[str, str] = {
    "capacity": "허용하는 유형의 빈 장치를 기다리는 중",
    "quota": "테넌트가 허용 유형의 할당량을 모두 쓰는 중",
    "budget": "지원금 잔액이 부족함",
    "rule": "사업 규칙 때문에 빈 장치를 쓸 수 없음",
    "gang": "필요한 장치가 한꺼번에 비기를 기다리는 중",
    "priority": "대기열에서 앞선 작업이 먼저 실행됨",
    "not-runnable": "이 작업을 실행할 수 있는 유형이 풀에 없음",
    "fair-share": "공정 몫을 기다리는 중: 덜 실행된 작업이 먼저 실행됨",
    "lease": "임대가 끝나 다른 작업의 차례가 됨",
    "moved": "다른 장치로 옮김",
    "grant exhausted": "지원금으로 다음 임대 비용을 낼 수 없음",
    "submitted": "제출됨",
    "requeued": "다시 대기열에 들어감",
    "exited 0": "정상 종료 (코드 0)",
    "failed": "실패",
    "lost": "실행 중 연결이 끊김",
    "cancelled by user": "사용자가 취소함",
    "its devices are no longer in service (node drained or down)": "장치가 더 이상 서비스 중이 아님 (노드 배수 또는 중단)",
    "not running after restart": "재시작 후 실행 중이 아님",
    "process vanished without exit code": "종료 코드 없이 프로세스가 사라짐",
    "stopped before restart": "재시작 전에 중지됨",
    "cancelled": "취소됨",
    "unknown to the store": "저장소에 없는 작업",
}
# node states Slurm reports for a lost node
_NODE_STATES_KO = {"down": "중단", "drained": "배수됨", "drain": "배수", "gone": "사라짐", "fail": "장애"}
# the label a wait sentence's code becomes
KIND_EN: dict[str, str] = {
    "capacity": "no free devices",
    "quota": "quota",
    "budget": "budget",
    "rule": "rules",
    "gang": "all at once",
    "priority": "priority",
    "not-runnable": "no usable node",
    "fair-share": "fair share",
}
KIND_KO: dict[str, str] = {
    "capacity": "빈 장치 없음",
    "quota": "할당량",
    "budget": "예산",
    "rule": "규칙",
    "gang": "동시 배치",
    "priority": "우선순위",
    "not-runnable": "실행 가능한 노드 없음",
    "fair-share": "공정 몫",
}

_DOWN_KO = {"drained": "운영자 중단", "lost": "유실", "down": "중단", "at a site that is down": "사이트 중단"}


def _down_counts(text: str) -> str:
    """``2 drained, 2 lost`` -> ``2대 운영자 중단, 2대 유실`` (the node counts of core.reasons)."""
    parts = []
    for part in text.split(", "):
        n, _, cause = part.partition(" ")
        parts.append(f"{n}대 {_DOWN_KO.get(cause, cause)}")
    return ", ".join(parts)


_D = r"(\d+(?:\.\d+)? (?:s|min|h))"
_WHO_KO = {"grant": "지원금", "program": "사업"}
_CLAUSES_KO: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile("^" + pat + "$"), repl)
    for pat, repl in (
        (r"needs (\d+) x a type it runs on at once", r"실행 가능한 유형의 장치 \1개를 한꺼번에 필요"),
        (r"needs (\d+) x a type it runs on", r"실행 가능한 유형의 장치 \1개 필요"),
        (r"needs (\d+) x (\S+) (?:together|at once)", r"\2 장치 \1개를 한꺼번에 필요"),
        (r"needs (\d+) x (.+)", r"\2 장치 \1개 필요"),
        (r"every one is in use", "모두 사용 중"),
        (r"free devices are spread over too many nodes", "빈 장치가 너무 많은 노드에 흩어져 있음"),
        (r"(\d+) free", r"여유 \1개"),
        (r"(\d+) free, but not on few enough nodes", r"여유 \1개지만 충분히 적은 수의 노드에 모여 있지 않음"),
        (
            r"(\d+) free, but grant (\S+) has (\d+) KRW left after the leases of its running jobs and a lease "
            r"costs (\d+) KRW",
            r"여유 \1개지만 지원금 \2의 잔액이 실행 중인 작업의 임대 후 \3원이고 임대 한 번에 \4원이 듦",
        ),
        (
            r"grant (\S+) has (\d+) KRW left after the leases of its running jobs and a lease \("
            + _D
            + r"\) costs (\d+) KRW",
            r"지원금 \1의 잔액은 실행 중인 작업의 임대 후 \2원, 임대(\3) 한 번에 \4원",
        ),
        (
            r"grant (\S+) has (\d+) KRW left and a lease \(" + _D + r"\) costs (\d+) KRW",
            r"지원금 \1의 잔액은 \2원, 임대(\3) 한 번에 \4원",
        ),
        (r"its tenant's quota or cap on (.+) is in use", r"테넌트의 \1 할당량 또는 상한을 모두 사용 중"),
        (
            r"(\S+) has free devices but costs more per step than its faster_type \((\S+)\) allows",
            r"\1에 빈 장치가 있지만 단계당 비용이 faster_type(\2)이 허용하는 것보다 높음",
        ),
        (
            r"(\S+) has free devices, faster than the type chosen for it, but its faster_type is never",
            r"\1에 더 빠른 빈 장치가 있지만 faster_type이 never임",
        ),
        (
            r"the free (\S+) devices are guaranteed to other tenants \(their quota\)",
            r"빈 \1 장치는 다른 테넌트에 보장된 할당량임",
        ),
        (
            r"the free (\S+) devices are kept for public-program jobs \(public reserve\)",
            r"빈 \1 장치는 공공 사업 작업용으로 남겨 둠 (공공 예약분)",
        ),
        (
            r"the (\S+) devices it could use are guaranteed to other tenants \(their quota\)",
            r"쓸 수 있는 \1 장치는 다른 테넌트에 보장된 할당량임",
        ),
        (
            r"the (\S+) devices it could use are kept for public-program jobs \(public reserve\)",
            r"쓸 수 있는 \1 장치는 공공 사업 작업용으로 남겨 둠 (공공 예약분)",
        ),
        (
            r"its tenant's cap on (\S+) under its program is in use",
            r"사업이 정한 테넌트의 \1 상한을 모두 사용 중",
        ),
        (
            r"its tenant's quota on (\S+) is in use and too few unreserved (\S+) devices are left to lend",
            r"테넌트의 \1 할당량을 모두 사용 중이고 빌려 쓸 수 있는 예약되지 않은 \2 장치가 부족함",
        ),
        (
            r"waits for its fair share: jobs that have run less go first, at a lease boundary",
            "공정 몫을 기다림: 덜 실행된 작업이 임대 경계에서 먼저 실행됨",
        ),
        (
            r"waits for its fair share: jobs that have run less go first",
            "공정 몫을 기다림: 덜 실행된 작업이 먼저",
        ),
        (r"jobs with a higher priority hold the devices", "우선순위가 더 높은 작업이 장치를 쓰는 중"),
        (r"the next lease starts in " + _D, r"다음 임대는 \1 후 시작"),
        (
            r"preemptible jobs on (\S+) may yield at the lease boundary at (\d\d:\d\d) UTC",
            r"\1의 선점 가능 작업이 \2 UTC 임대 경계에서 양보할 수 있음",
        ),
        (
            r"position (\d+) of (\d+) in your tenant, (\d+) of (\d+) in the pool",
            r"테넌트 내 \2개 중 \1번째, 풀 전체 \4개 중 \3번째",
        ),
        (
            r"its constraints or its program's rules allow none of the types it runs on",
            "제약 조건이나 사업 규칙이 실행 가능한 유형을 하나도 허용하지 않음",
        ),
        (
            r"its constraints or its program's rules allow none of its types",
            "제약 조건이나 사업 규칙이 허용하는 유형이 없음",
        ),
        (r"no (\S+) node is in service \((\d+) down\)", r"서비스 중인 \1 노드가 없음 (\2대 중단)"),
        (r"every (\S+) node is down \((.+)\)", lambda m: f"모든 {m[1]} 노드가 중단됨 ({_down_counts(m[2])})"),
        (r"the pool has no (\S+) node", r"풀에 \1 노드가 없음"),
        (
            r"grant (\S+) has (\d+) KRW left after what its running jobs set aside, and its max_run_time \("
            + _D
            + r"\) costs (\d+) KRW, set aside when it starts \(it is not preemptible\)",
            r"지원금 \1의 잔액은 실행 중인 작업의 예약 후 \2원, 최대 실행 시간(\3) 비용 \4원은 시작할 때 "
            r"예약됨 (선점 불가 작업)",
        ),
        (
            r"grant (\S+) has (\d+) KRW left and its max_run_time \("
            + _D
            + r"\) costs at least (\d+) KRW, set aside when it starts \(it is not preemptible\)",
            r"지원금 \1의 잔액은 \2원, 최대 실행 시간(\3) 비용은 최소 \4원이며 시작할 때 예약됨 (선점 불가 작업)",
        ),
        (
            r"(grant|program) (\S+) ends at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC, before its max_run_time \("
            + _D
            + r"\) would end if it started now \(a job that may not be stopped starts only when its whole run "
            r"fits in its grant's period\)",
            lambda m: (
                f"{_WHO_KO[m[1]]} {m[2]}이(가) {m[3]} UTC에 끝나 지금 시작해도 최대 실행 시간({m[4]})을 "
                "채우지 못함 (중지할 수 없는 작업은 전체 실행이 지원 기간 안에 들어갈 때만 시작함)"
            ),
        ),
        (
            r"(grant|program) (\S+) (ended|starts) at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC: it pays for no run now",
            lambda m: (
                f"{_WHO_KO[m[1]]} {m[2]}이(가) {m[4]} UTC에 {'끝나' if m[3] == 'ended' else '시작 전이라'} "
                "지금은 어떤 실행도 지원하지 않음"
            ),
        ),
        (r"no (\S+) node is in service \(the pool has none\)", r"서비스 중인 \1 노드가 없음 (풀에 없음)"),
        (
            r"no node in service can take (\d+) devices of a type it runs on",
            r"실행 가능한 유형 중 장치 \1개를 받을 수 있는 서비스 중인 노드가 없음",
        ),
        (
            r"no healthy node of (.+) can take (\d+) devices",
            r"\1 중 장치 \2개를 받을 수 있는 정상 노드가 없음",
        ),
        (
            r"no healthy node can take (\d+) devices of a type it runs on",
            r"실행 가능한 유형 중 장치 \1개를 받을 수 있는 정상 노드가 없음",
        ),
    )
)
# event reasons: (pattern, Korean from the match ``m`` and ``t``, which translates an inner reason again)
_Fn = Callable[[re.Match[str], Callable[[str], str]], str]
_EVENTS_KO: tuple[tuple[re.Pattern[str], _Fn], ...] = tuple(
    (re.compile("^" + pat + "$"), fn)
    for pat, fn in (
        (r"placed on (\d+) x (\S+)", lambda m, t: f"{m[2]} 장치 {m[1]}개에 배치됨"),
        (
            r"grant period over: (grant|program) (\S+) ended at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC",
            lambda m, t: f"지원 기간 종료: {_WHO_KO[m[1]]} {m[2]}이(가) {m[3]} UTC에 끝남",
        ),
        (r"exit code (-?\d+)", lambda m, t: f"오류로 종료 (코드 {m[1]})"),
        (r"exit code (-?\d+) \(Slurm (\S+)\)", lambda m, t: f"오류로 종료 (코드 {m[1]}, Slurm {m[2]})"),
        (r"Slurm (\S+), exit code (-?\d+)", lambda m, t: f"Slurm {m[1]}, 종료 코드 {m[2]}"),
        (r"killed by signal (\d+)", lambda m, t: f"신호 {m[1]}로 강제 종료"),
        (r"killed by signal (\d+) \(Slurm (\S+)\)", lambda m, t: f"신호 {m[1]}로 강제 종료 (Slurm {m[2]})"),
        (r"cancelled by (.+)", lambda m, t: f"{m[1]}이(가) 취소함"),
        (r"node (\S+) (?:lost|down)", lambda m, t: f"노드 {m[1]} 손실"),
        (r"requeued after preemption \((.+)\)", lambda m, t: f"선점 후 다시 대기열에 들어감 ({t(m[1])})"),
        (r"lost: start failed \((.+)\)", lambda m, t: f"연결 끊김: 시작 실패 ({m[1]})"),
        (
            r"lost: (.+); the executor's trouble, not the job's: tried again in (\d+) s",
            lambda m, t: f"연결 끊김: {t(m[1])}; 작업이 아닌 실행기의 문제: {m[2]}초 뒤 다시 시도",
        ),
        (
            r"an earlier run of job (\S+) is still alive \(wrapper pid (\d+)\)",
            lambda m, t: f"작업 {m[1]}의 이전 실행이 아직 살아 있음 (래퍼 프로세스 {m[2]})",
        ),
        (
            r"the executor could not (.+) \(([^()]+)\)",
            lambda m, t: f"실행기가 작업 파일을 다루지 못함: {m[1]} ({m[2]})",
        ),
        (
            r"its executor's report could not be recorded \((\w+)\)",
            lambda m, t: f"실행기의 보고를 기록하지 못함 ({m[1]})",
        ),
        (
            r"node-lost: (.+) \(down, and the job ended badly; Slurm has purged it\)",
            lambda m, t: f"노드 손실: {m[1]} (노드 중단 중 작업이 비정상 종료됨, Slurm이 작업 기록을 지움)",
        ),
        (
            r"lost: Slurm no longer knows job (\S+)",
            lambda m, t: f"연결 끊김: Slurm이 작업 {m[1]}을(를) 더 이상 알지 못함",
        ),
        (
            r"lost: pending in Slurm for more than (\d+(?:\.\d+)?) s \((.+)\)",
            lambda m, t: f"연결 끊김: Slurm에서 {m[1]}초 넘게 대기 ({m[2]})",
        ),
        (r"lost: (.+)", lambda m, t: f"연결 끊김: {t(m[1])}"),
        (
            r"node-lost: (\S+) is (\S+)",
            lambda m, t: f"노드 손실: {m[1]} ({_NODE_STATES_KO.get(m[2].lower(), m[2])})",
        ),
        (r"node-lost: (\S+) drained", lambda m, t: f"노드 손실: {m[1]} 배수됨"),
        (
            r"node-lost: (.+) \(Slurm ended it (\S+)\)",
            lambda m, t: f"노드 손실: {m[1]} (Slurm이 {m[2]} 상태로 끝냄)",
        ),
        (r"node-lost: (.+)", lambda m, t: f"노드 손실: {m[1]}"),
        (
            r"site-lost: (\S+) not answering for (\d+) s",
            lambda m, t: f"사이트 손실: {m[1]}이(가) {m[2]}초 동안 응답 없음",
        ),
        (r"stopped: (.+) \((.+)\)", lambda m, t: f"중지됨: {t(m[1])} ({t(m[2])})"),
        (r"stopped: (.+)", lambda m, t: f"중지됨: {t(m[1])}"),
    )
)
_UNITS_KO = (
    (re.compile(r"(\d+(?:\.\d+)?) min\b"), r"\1분"),
    (re.compile(r"(\d+(?:\.\d+)?) h\b"), r"\1시간"),
    (re.compile(r"(\d+(?:\.\d+)?) s\b"), r"\1초"),
)
_KRW = re.compile(r"(\d+) KRW")
_WON = re.compile(r"(\d+)원")
_HEAD = re.compile(r"^(?:blocked \((?P<blocked>[a-z-]+)\)|(?P<code>[a-z-]+)): (?P<rest>.+)$", re.S)


def _won(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: f"₩{int(m.group(1)):,}", text)


def _clause_ko(text: str, miss: Callable[[str], None]) -> str:
    for pat, repl in _CLAUSES_KO:
        if pat.match(text):
            out = pat.sub(repl, text)
            for u, r in _UNITS_KO:
                out = u.sub(r, out)
            return _won(out, _WON)
    miss(text)
    return text


def _event_ko(text: str, miss: Callable[[str], None]) -> str | None:
    for pat, fn in _EVENTS_KO:
        m = pat.match(text)
        if m is not None:
            return fn(m, lambda inner: to_korean(inner, miss))
    return None


def to_korean(text: str, miss: Callable[[str], None] = lambda _t: None) -> str:
    """``text`` (a reason the store keeps) in Korean; ``miss`` is called with each part no rule knows."""
    if text in WORDS_KO:
        return WORDS_KO[text]
    m = _HEAD.match(text)
    if m is not None and (m.group("blocked") or m.group("code")) in CODES:
        code = m.group("blocked") or m.group("code")
        label = ("실행 불가 (" + KIND_KO[code] + ")") if m.group("blocked") else KIND_KO[code]
        return label + ": " + "; ".join(_clause_ko(c, miss) for c in m.group("rest").split("; "))
    event = _event_ko(text, miss)
    if event is not None:
        return event
    prefix = ""
    if text.startswith("blocked: "):  # the older form of a blocked job's sentence
        prefix, text = "실행 불가: ", text[len("blocked: ") :]
    return prefix + "; ".join(_clause_ko(c, miss) for c in text.split("; "))


def to_english(text: str) -> str:
    """``text`` for an English page: one-word codes as sentences, a wait sentence's code as a label,
    amounts as won."""
    if text in WORDS_EN:
        return WORDS_EN[text]
    m = _HEAD.match(text)
    if m is not None and (m.group("blocked") or m.group("code")) in CODES:
        code = m.group("blocked") or m.group("code")
        label = (
            ("cannot run as things stand (" + KIND_EN[code] + ")") if m.group("blocked") else KIND_EN[code]
        )
        text = label + ": " + m.group("rest")
    return _won(text, _KRW)


def untranslated(text: str) -> list[str]:
    """The parts of ``text`` that stay English on a Korean page (none for every reason the code writes)."""
    out: list[str] = []
    to_korean(text, out.append)
    return out
