"""The dashboard's two languages (English, Korean), money in won and times in the user's zone.

Messages are looked up by their English text: templates call ``_("Jobs")``; a Korean page shows
``KO["Jobs"]``. Every message a template or handler uses must be in ``KO`` (tests/web check it: a missing
one would show English on a Korean page). Parameters are filled after translation: ``_("{n} jobs", n=3)``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGS = ("en", "ko")
DEFAULT_ZONE = "Asia/Seoul"
ZONES = ("Asia/Seoul", "UTC", "Asia/Tokyo", "America/Los_Angeles", "America/New_York", "Europe/London")

KO: dict[str, str] = {
    # navigation and frame
    "Overview": "개요",
    "Jobs": "작업",
    "Programs and grants": "사업과 지원금",
    "Pool": "자원 풀",
    "Sign in": "로그인",
    "Waiting for": "대기 시간",
    "Sign out": "로그아웃",
    "Language": "언어",
    "Time zone": "시간대",
    "Save": "저장",
    "Settings": "설정",
    "Skip to content": "본문으로 건너뛰기",
    "Main navigation": "주 메뉴",
    "Updated {time}": "{time} 갱신",
    "Updates itself every {n} seconds.": "{n}초마다 자동으로 갱신됩니다.",
    "The API": "API 문서",
    "admin": "관리자",
    "program-manager": "사업 관리자",
    "member": "구성원",
    # login
    "Sign in with an API token": "API 토큰으로 로그인",
    "Token (for example the contents of ~/.accelpool/admin-token)": "토큰 (예: ~/.accelpool/admin-token 파일의 내용)",
    "Enter a token to sign in.": "로그인하려면 토큰을 입력하세요.",
    "This token is unknown or has been revoked.": "알 수 없거나 폐기된 토큰입니다.",
    "The token is kept in an HttpOnly cookie for this site only.": "토큰은 이 사이트 전용 HttpOnly 쿠키에만 보관됩니다.",
    # errors
    "Page not found": "페이지를 찾을 수 없습니다",
    "There is no page at this address.": "이 주소에는 페이지가 없습니다.",
    "Not found": "찾을 수 없음",
    "No such job, or you may not see it.": "해당 작업이 없거나 볼 권한이 없습니다.",
    "Back to the overview": "개요로 돌아가기",
    "The form expired; please try again.": "양식이 만료되었습니다. 다시 시도하세요.",
    "Done.": "완료되었습니다.",
    "Refused: {reason}": "거부됨: {reason}",
    "Something went wrong on the server.": "서버에서 오류가 발생했습니다.",
    # overview / pool
    "Type": "유형",
    "Vendor": "제조사",
    "Devices": "장치",
    "Busy": "사용 중",
    "Free": "여유",
    "Down or drained": "중단/배수",
    "Use": "사용률",
    "Waiting demand": "대기 수요",
    "GPUs": "GPU",
    "NPUs": "NPU",
    "Running": "실행 중",
    "Queue": "대기열",
    "Nodes": "노드",
    "Node": "노드",
    "Zone": "영역",
    "State": "상태",
    "up": "정상",
    "down": "중단",
    "Drain": "배수",
    "Undrain": "배수 해제",
    "no nodes": "노드가 없습니다",
    "Utilization per type, last 24 hours": "유형별 사용률 (최근 24시간)",
    "Utilization from metered device-seconds, per hour, over the devices each type has now.": "시간별로 과금된 장치-초를 현재 장치 수로 나눈 사용률입니다.",
    "devices wanted by waiting jobs": "대기 중인 작업이 요청한 장치 수",
    "A job that accepts several types counts under each.": "여러 유형을 허용하는 작업은 각 유형에 모두 집계됩니다.",
    "nothing running": "실행 중인 작업이 없습니다",
    "All running jobs": "실행 중인 작업 전체",
    "All waiting jobs": "대기 중인 작업 전체",
    "the queue is empty": "대기열이 비어 있습니다",
    "Grants": "지원금",
    "no grants": "지원금이 없습니다",
    # jobs list
    "Job": "작업",
    "Name": "이름",
    "Tenant": "테넌트",
    "Program": "사업",
    "Submitted": "제출",
    "Started": "시작",
    "Ended": "종료",
    "Wants": "요청",
    "Where": "위치",
    "Why": "사유",
    "Cost": "비용",
    "Search": "검색",
    "name or id": "이름 또는 ID",
    "all": "전체",
    "Submitted from": "제출 시작일",
    "Submitted until": "제출 종료일",
    "Filter": "필터",
    "Clear": "초기화",
    "Sort": "정렬",
    "newest first": "최신순",
    "oldest first": "오래된순",
    "by name": "이름순",
    "by tenant": "테넌트순",
    "by state": "상태순",
    "{n} jobs": "작업 {n}개",
    "page {page} of {pages}": "{pages}쪽 중 {page}쪽",
    "Previous": "이전",
    "Next": "다음",
    "no jobs match": "조건에 맞는 작업이 없습니다",
    "queued": "대기",
    "running": "실행 중",
    "preempted": "선점됨",
    "succeeded": "성공",
    "failed": "실패",
    "cancelled": "취소됨",
    "waiting for the next round": "다음 스케줄링 라운드를 기다리는 중",
    "any": "아무 유형",
    # job page
    "Summary": "요약",
    "Position in queue": "대기 순번",
    "Estimated start": "예상 시작",
    "not estimated": "추정 불가",
    "Reason": "사유",
    "Steps": "스텝",
    "Preemptions": "선점 횟수",
    "Attempts": "시도",
    "Attempt": "시도",
    "Total cost": "총 비용",
    "Held for this job": "이 작업에 예약된 금액",
    "Events": "이벤트",
    "Time": "시각",
    "no events": "이벤트가 없습니다",
    "Device-hours": "장치-시간",
    "no attempts yet": "아직 시도가 없습니다",
    "Logs": "로그",
    "Following: new lines appear while the job runs.": "작업이 실행되는 동안 새 줄이 계속 표시됩니다.",
    "lines {a}-{b} of {n}": "{n}줄 중 {a}-{b}줄",
    "Earlier": "이전 줄",
    "Later": "다음 줄",
    "Newest": "최신",
    "no output": "출력이 없습니다",
    "Cancel this job": "이 작업 취소",
    "Really cancel this job?": "이 작업을 정말 취소하시겠습니까?",
    "Command": "명령",
    "Kind": "종류",
    "Grant": "지원금",
    "preemption": "선점",
    "node lost": "노드 손실",
    "requeued": "재대기",
    # programs
    "Budget": "예산",
    "Granted": "지급",
    "Spent": "사용",
    "Remaining on grants": "지원금 잔액",
    "Not yet granted": "미지급 예산",
    "Burn rate (last 7 days)": "소진 속도 (최근 7일)",
    "{amount} per day": "하루 {amount}",
    "training": "학습",
    "finetuning": "미세조정",
    "inference": "추론",
    "batch": "일괄 작업",
    "Projected run-out": "예상 소진일",
    "not at this rate": "현재 속도로는 소진되지 않음",
    "not within 100 years at this rate": "현재 속도로는 100년 안에 소진되지 않음",
    "Spend by tenant, last 14 days": "테넌트별 지출 (최근 14일)",
    "Spend by type, last 14 days": "유형별 지출 (최근 14일)",
    "no spending yet": "아직 지출이 없습니다",
    "Amount": "금액",
    "Used": "사용률",
    "Ends": "종료",
    "never": "없음",
    "New grant": "새 지원금",
    "Amount (KRW)": "금액 (원)",
    "End date (optional)": "종료일 (선택)",
    "Create grant": "지원금 생성",
    "Change amount": "금액 변경",
    "Change": "변경",
    "no programs": "사업이 없습니다",
}

# Reasons the store writes (job events, wait reasons), in words for both languages. Reasons not listed
# (new ones from the scheduler, an executor's message) are shown as they were written.
REASONS_EN: dict[str, str] = {
    "capacity": "waiting for free devices of a type it accepts",
    "quota": "its tenant is at its quota for the types it accepts",
    "budget": "its grant has too little money left for it",
    "rule": "a program rule keeps it from the free devices",
    "gang": "waiting until all its devices are free at once",
    "priority": "jobs ahead of it in the queue come first",
    "not-runnable": "no type in the pool can run it",
    "fair-share": "waiting for its fair share: jobs that have run less go first",
}
REASONS_KO: dict[str, str] = {
    "capacity": "허용하는 유형의 빈 장치를 기다리는 중",
    "quota": "테넌트가 허용 유형의 할당량을 모두 쓰는 중",
    "budget": "지원금 잔액이 부족함",
    "rule": "사업 규칙 때문에 빈 장치를 쓸 수 없음",
    "gang": "필요한 장치가 한꺼번에 비기를 기다리는 중",
    "priority": "대기열에서 앞선 작업이 먼저 실행됨",
    "not-runnable": "이 작업을 실행할 수 있는 유형이 풀에 없음",
    "fair-share": "공정 몫을 기다리는 중: 덜 실행된 작업이 먼저 실행됨",
    "submitted": "제출됨",
    "requeued": "다시 대기열에 들어감",
    "exited 0": "정상 종료 (코드 0)",
    "lost": "실행 중 연결이 끊김",
    "cancelled by user": "사용자가 취소함",
}
_KO_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^placed on (\d+) x (\S+)$"), r"\2 장치 \1개에 배치됨"),
    (re.compile(r"^exit code (-?\d+)$"), r"오류로 종료 (코드 \1)"),
    (re.compile(r"^cancelled by (.+)$"), r"\1이(가) 취소함"),
    (re.compile(r"^node (\S+) (?:lost|down)$"), r"노드 \1 손실"),
)

# The scheduler's wait sentences (core.reasons.explain) are clauses joined by "; ": each clause is put
# into Korean on its own; a clause not listed stays as written.
_D = r"(\d+(?:\.\d+)? (?:s|min|h))"
_CLAUSES_KO: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile("^" + pat + "$"), repl)
    for pat, repl in (
        (r"needs (\d+) x (\S+) together", r"\2 장치 \1개를 한꺼번에 필요"),
        (r"needs (\d+) x (.+)", r"\2 장치 \1개 필요"),
        (r"(\d+) free", r"여유 \1개"),
        (r"(\d+) free, but not on few enough nodes", r"여유 \1개지만 충분히 적은 수의 노드에 모여 있지 않음"),
        (
            r"(\d+) free, but grant (\S+) has (\d+) KRW left after the leases of its running jobs and a lease "
            r"costs (\d+) KRW",
            r"여유 \1개지만 지원금 \2의 잔액이 실행 중인 작업의 임대 후 \3원이고 임대 한 번에 \4원이 듦",
        ),
        (r"its tenant's quota or cap on (\S+) is in use", r"테넌트의 \1 할당량 또는 상한을 모두 사용 중"),
        (
            r"waits for its fair share: jobs that have run less go first",
            "공정 몫을 기다림: 덜 실행된 작업이 먼저",
        ),
        (r"jobs with a higher priority hold the devices", "우선순위가 더 높은 작업이 장치를 쓰는 중"),
        (r"the next lease starts in " + _D, r"다음 임대는 \1 후 시작"),
        (
            r"position (\d+) of (\d+) in your tenant, (\d+) of (\d+) in the pool",
            r"테넌트 내 \2개 중 \1번째, 풀 전체 \4개 중 \3번째",
        ),
        (
            r"grant (\S+) has (\d+) KRW left and a lease \(" + _D + r"\) costs (\d+) KRW",
            r"지원금 \1의 잔액은 \2원, 임대(\3) 한 번에 \4원",
        ),
        (
            r"its constraints or its program's rules allow none of its types",
            "제약 조건이나 사업 규칙이 허용하는 유형이 없음",
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
_UNITS_KO = (
    (re.compile(r"(\d+(?:\.\d+)?) min\b"), r"\1분"),
    (re.compile(r"(\d+(?:\.\d+)?) h\b"), r"\1시간"),
    (re.compile(r"(\d+(?:\.\d+)?) s\b"), r"\1초"),
)
_KRW = re.compile(r"(\d+) KRW")
_WON = re.compile(r"(\d+)원")


def _clause_ko(text: str) -> str:
    for pat, repl in _CLAUSES_KO:
        if pat.match(text):
            out = pat.sub(repl, text)
            for u, r in _UNITS_KO:
                out = u.sub(r, out)
            return _WON.sub(lambda m: f"₩{int(m.group(1)):,}", out)
    return text


STATE_WORDS = ("queued", "running", "preempted", "succeeded", "failed", "cancelled")


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """``chosen`` (the user's switch) wins; else the first of en/ko in Accept-Language by quality."""
    if chosen is not None and chosen in LANGS:
        return chosen
    best, best_q = "en", -1.0
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        q -= i * 1e-6  # earlier wins on a tie
        if lang in LANGS and q > best_q:
            best, best_q = lang, q
    return best


def zone(name: str | None, default: str = DEFAULT_ZONE) -> ZoneInfo:
    for n in (name, default, "UTC"):
        if n:
            try:
                return ZoneInfo(n)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")  # pragma: no cover


class Locale:
    """What a page needs to speak the user's language: messages, won, dates, durations."""

    def __init__(self, lang: str, tz: ZoneInfo) -> None:
        self.lang = lang if lang in LANGS else "en"
        self.tz = tz

    def __call__(self, msg: str, **kw: object) -> str:
        text = KO.get(msg, msg) if self.lang == "ko" else msg
        return text.format(**kw) if kw else text

    def krw(self, amount: int | None) -> str:
        if amount is None:
            return "-"
        sign = "-" if amount < 0 else ""
        return f"{sign}₩{abs(int(amount)):,}"

    def krw_short(self, v: float) -> str:
        """Won for chart axes: 만/억 in Korean, K/M/B in English."""
        if self.lang == "ko":
            if abs(v) >= 1e8:
                return f"₩{v / 1e8:,.4g}억"
            if abs(v) >= 1e4:
                return f"₩{v / 1e4:,.4g}만"
            return f"₩{v:,.0f}"
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(v) >= scale:
                return f"₩{v / scale:,.4g}{suffix}"
        return f"₩{v:,.0f}"

    def when(self, t: float | None, seconds: bool = False) -> str:
        if t is None:
            return "-"
        d = datetime.fromtimestamp(t, UTC).astimezone(self.tz)
        return d.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def day(self, t: float | None) -> str:
        if t is None:
            return "-"
        return datetime.fromtimestamp(t, UTC).astimezone(self.tz).strftime("%Y-%m-%d")

    def zone_label(self) -> str:
        return str(self.tz.key)

    def duration(self, seconds: float | None) -> str:
        if seconds is None or seconds < 0:
            return "-"
        s = int(seconds)
        d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
        if self.lang == "ko":
            if d:
                return f"{d}일 {h}시간"
            if h:
                return f"{h}시간 {m}분"
            return f"{m}분 {s % 60}초" if m else f"{s}초"
        if d:
            return f"{d}d {h}h"
        if h:
            return f"{h}h {m:02d}m"
        return f"{m}m {s % 60:02d}s" if m else f"{s}s"

    def reason(self, text: str | None) -> str:
        if not text:
            return ""
        if self.lang != "ko":
            return _KRW.sub(lambda m: f"₩{int(m.group(1)):,}", REASONS_EN.get(text, text))
        if text in REASONS_KO:
            return REASONS_KO[text]
        for pat, repl in _KO_PATTERNS:
            if pat.match(text):
                return pat.sub(repl, text)
        prefix = ""
        if text.startswith("blocked: "):
            prefix, text = "실행 불가: ", text[len("blocked: ") :]
        return prefix + "; ".join(_clause_ko(c) for c in text.split("; "))

    def state(self, s: str) -> str:
        return self(s) if s in STATE_WORDS else s
