"""The dashboard's two languages (English, Korean), money in won and times in the user's zone.

Messages are looked up by their English text: templates call ``_("Jobs")``; a Korean page shows
``KO["Jobs"]``. Every message a template or handler uses must be in ``KO`` (tests/web check it: a missing
one would show English on a Korean page). Parameters are filled after translation: ``_("{n} jobs", n=3)``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from accelpool.web import reasons

LANGS = ("en", "ko")
DEFAULT_ZONE = "Asia/Seoul"
LATE_SECONDS = 30.0  # a round this much past due is called late (a busy or stopped scheduler)
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
    "operator": "운영자",
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
    "{n} more characters in this line (GET /api/v1/jobs/{id}/logs)": "이 줄에 {n}자 더 있음 (GET /api/v1/jobs/{id}/logs)",
    "No such job, or you may not see it.": "해당 작업이 없거나 볼 권한이 없습니다.",
    "Back to the overview": "개요로 돌아가기",
    "The form expired; please try again.": "양식이 만료되었습니다. 다시 시도하세요.",
    "Done.": "완료되었습니다.",
    "Refused: {reason}": "거부됨: {reason}",
    "Something went wrong on the server.": "서버에서 오류가 발생했습니다.",
    # overview / pool
    "Type": "유형",
    "Site": "사이트",
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
    "default zone": "기본 영역",
    "State": "상태",
    "up": "정상",
    "down": "중단",
    "Drain": "배수",
    "Undrain": "배수 해제",
    "Sites": "사이트",
    "Operator": "운영사",
    "Region": "지역",
    "Data classes": "데이터 등급",
    "Executor": "실행기",
    "data class public": "공개",
    "data class personal": "개인정보",
    "data class financial": "금융",
    "data class public-sector": "공공기관",
    "taken out": "운영자가 제외함",
    "not answering": "응답 없음",
    "Bring back": "복귀",
    "Take out": "제외",
    "A site taken out stays out until an operator brings it back; its jobs are requeued elsewhere.": (
        "제외된 사이트는 운영자가 복귀시킬 때까지 제외된 상태로 남고, 그 작업은 다른 곳의 대기열로 돌아갑니다."
    ),
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
    "estimating: at the scheduler's next round": "추정 중: 스케줄러의 다음 라운드에서 계산됩니다",
    "estimating: the scheduler's next round is due now": "추정 중: 스케줄러의 다음 라운드가 곧 실행됩니다",
    "estimating: the scheduler's next round is due in {t}": "추정 중: 스케줄러의 다음 라운드까지 {t}",
    "estimating: the scheduler's next round is {t} late": "추정 중: 스케줄러의 다음 라운드가 {t} 늦어지고 있습니다",
    "between {a} and {b}": "{a}에서 {b} 사이",
    "by {t}": "늦어도 {t}",
    "from {t} at the earliest": "빨라도 {t} 이후",
    "Estimated start: if every job ahead runs to its time limit (latest) or preemptible ones yield at their next lease boundary (earliest); it may start sooner.": "예상 시작: 앞선 작업이 모두 제한 시간까지 실행될 때(늦은 쪽) 또는 선점 가능한 작업이 다음 임대 경계에서 양보할 때(이른 쪽)의 시각이며, 더 일찍 시작될 수도 있습니다.",
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
    "A program manager sees a job's use and cost, not its command or output.": "사업 관리자는 작업의 사용량과 비용만 볼 수 있으며, 명령과 출력은 볼 수 없습니다.",
    "Cancel this job": "이 작업 취소",
    "Really cancel this job?": "이 작업을 정말 취소하시겠습니까?",
    "Command": "명령",
    "Kind": "종류",
    "Grant": "지원금",
    "On a faster type": "더 빠른 유형",
    "only where it costs no more per step": "단계당 비용이 늘지 않을 때만",
    "whatever it costs": "비용과 무관하게 허용",
    "not allowed": "허용 안 함",
    "preemption": "선점",
    "node lost": "노드 손실",
    "site lost": "사이트 손실",
    "run lost": "실행 끊김",
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


ZONE_CHARS = 64
"""The longest time-zone name taken (the IANA names are at most ~30 characters)."""


def zone(name: str | None, default: str = DEFAULT_ZONE) -> ZoneInfo:
    """The zone ``name`` (a user's setting or cookie: anything), else ``default``, else UTC."""
    for n in (name, default, "UTC"):
        if n and len(n) <= ZONE_CHARS:
            try:
                return ZoneInfo(n)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory ("Asia"), a bad name
                continue
    return ZoneInfo("UTC")  # pragma: no cover


def unranked(v: Any) -> bool:
    """A queued job (a ``JobView``) the latest round has not ranked: submitted or requeued after it; its
    estimate comes with the next round. A blocked job has none (its reason says why)."""
    reason = v.reason or ""
    return v.state.value == "queued" and v.queue is None and not reason.startswith("blocked")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


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
        """A reason the store keeps (a wait sentence, an event's reason) in this language
        (``web.reasons``)."""
        if not text:
            return ""
        return reasons.to_korean(text) if self.lang == "ko" else reasons.to_english(text)

    def position(self, n: int | None, of: int | None = None) -> str:
        """A queue position in words: "3rd of 20 in the pool's queue" / "풀 대기열 20개 중 3번째"."""
        if not n:
            return ""
        if self.lang == "ko":
            return f"풀 대기열 {of:,}개 중 {n:,}번째" if of else f"풀 대기열 {n:,}번째"
        return f"{_ordinal(n)} of {of:,} in the pool's queue" if of else f"{_ordinal(n)} in the pool's queue"

    def spot(self, q: Any) -> str:
        """A queued job's place in the pool and in its tenant (a ``QueueSpot``), in words."""
        if q is None:
            return ""
        pool = self.position(q.position, q.of)
        if self.lang == "ko":
            return f"{pool}, 테넌트 내 {q.tenant_of:,}개 중 {q.tenant_position:,}번째"
        return f"{pool}, {_ordinal(q.tenant_position)} of {q.tenant_of:,} in its tenant"

    def start_range(self, q: Any) -> str:
        """A queued job's estimated start (a ``QueueSpot``'s range) in words, in the user's zone."""
        lo = None if q is None else q.earliest
        hi = None if q is None else q.latest
        if lo is None and hi is None:
            return self("not estimated")
        if lo is not None and hi is not None and abs(hi - lo) >= 60:
            return self("between {a} and {b}", a=self.when(lo), b=self.when(hi))
        if hi is not None:
            return self("by {t}", t=self.when(hi))
        return self("from {t} at the earliest", t=self.when(lo))

    def start_estimate(self, v: Any, next_in: float | None) -> str:
        """A waiting job's estimated start in words: the latest round's range, or, for a job that round
        has not ranked yet (submitted or requeued since), when the round that will is due (``next_in``
        seconds from now: the service's ``Hooks.next_round``; None: not known here)."""
        if not unranked(v):
            return self.start_range(v.queue)
        if next_in is None:
            return self("estimating: at the scheduler's next round")
        if next_in < -LATE_SECONDS:
            return self("estimating: the scheduler's next round is {t} late", t=self.duration(-next_in))
        if next_in < 1:
            return self("estimating: the scheduler's next round is due now")
        return self("estimating: the scheduler's next round is due in {t}", t=self.duration(next_in))

    def state(self, s: str) -> str:
        return self(s) if s in STATE_WORDS else s
