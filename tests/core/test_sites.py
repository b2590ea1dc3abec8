"""Sites in placement: data classes, named sites and regions, one site per gang, each site's prices."""

from __future__ import annotations

import random

from tests.helpers import greedy_fastest

from accelpool.core.policies import POLICIES
from accelpool.core.rounds import DecideCache, JobStatus, Placement, Snapshot, decide
from accelpool.core.sites import allowed_sites, nowhere_reason, price_for, site_table
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Grant, Job, JobState, Node, Site, WaitReason

PUBLIC = Site(
    "pub", operator="cloud-a", region="seoul", data_classes=frozenset({"public"}), prices={"h100": 4000}
)
BANK = Site(
    "bank",
    operator="cloud-b",
    region="busan",
    data_classes=frozenset({"public", "personal", "financial"}),
    prices={"h100": 5000},
)
GOV = Site("gov", operator="kisti", region="daejeon", data_classes=frozenset({"public", "public-sector"}))
SITES = (PUBLIC, BANK, GOV)
NODES = (
    Node("p0", "h100", 4, site="pub"),
    Node("p1", "h100", 4, site="pub"),
    Node("b0", "h100", 4, site="bank"),
    Node("g0", "h100", 4, site="gov"),
)


def snap(jobs, nodes=NODES, sites=SITES, grants=(), prices=None) -> Snapshot:
    tput = ThroughputMatrix.from_rows({s.job.id: {"h100": 1.0} for s in jobs}, ("h100",))
    return Snapshot(
        100.0,
        tuple(nodes),
        tuple(jobs),
        tput,
        sites=tuple(sites),
        grants=tuple(grants),
        prices_krw_per_hour=prices or {"h100": 3000},
        round_seconds=60.0,
    )


def q(job: Job) -> JobStatus:
    return JobStatus(job, JobState.QUEUED)


def test_allowed_sites_follow_data_class_names_regions_and_health() -> None:
    t = site_table(SITES)
    assert allowed_sites(Job("a"), t) == {"pub", "bank", "gov", "default"}
    assert allowed_sites(Job("a", data_class="financial"), t) == {"bank"}
    assert allowed_sites(Job("a", data_class="public-sector"), t) == {"gov"}
    assert allowed_sites(Job("a", sites=frozenset({"pub", "gov"})), t) == {"pub", "gov"}
    assert allowed_sites(Job("a", regions=frozenset({"busan"})), t) == {"bank"}
    down = site_table((PUBLIC, Site("bank", data_classes=BANK.data_classes, down=True), GOV))
    assert allowed_sites(Job("a", data_class="financial"), down) == frozenset()
    assert "down: bank" in nowhere_reason(Job("a", data_class="financial"), down)


def test_reasons_in_words_when_no_site_is_allowed() -> None:
    t = site_table(SITES)
    assert nowhere_reason(Job("a", data_class="medical"), t).startswith("unknown data class 'medical'")
    assert nowhere_reason(Job("a", data_class="personal", sites=frozenset({"pub"})), t) == (
        "none of the sites it names (pub) is certified for personal data (certified: bank)"
    )
    assert "region seoul" in nowhere_reason(Job("a", data_class="financial", regions=frozenset({"seoul"})), t)
    # A pool without sites has one implicit public-only site.
    assert nowhere_reason(Job("a", data_class="financial"), site_table(())) == (
        "no site is certified for financial data"
    )


def test_a_pool_without_sites_runs_public_jobs_as_before_and_nothing_else() -> None:
    nodes = (Node("n0", "h100", 4),)
    d = decide(
        snap([q(Job("pub", scale=2)), q(Job("fin", scale=2, data_class="financial"))], nodes, ()),
        greedy_fastest,
    )
    assert [p.job for p in d.start] == ["pub"] and d.start[0].site == "default"
    assert d.waiting == {"fin": WaitReason.RULE}
    assert d.details == {"fin": "no site is certified for financial data"}


def test_a_financial_job_goes_to_the_certified_site_and_waits_in_words_when_it_is_full() -> None:
    jobs = [
        q(Job("f1", scale=4, data_class="financial")),
        q(Job("f2", scale=4, data_class="financial", submit_time=1)),
    ]
    d = decide(snap(jobs), greedy_fastest)
    placed = {p.job: p for p in d.start}
    assert set(placed) == {"f1"} and placed["f1"].site == "bank" and placed["f1"].nodes == ("b0",)
    assert d.waiting["f2"] in (WaitReason.CAPACITY, WaitReason.GANG)


def test_the_cheapest_allowed_site_is_chosen_and_a_gang_never_spans_sites() -> None:
    # pub costs 4000, bank 5000, gov the pool's 3000: a public job goes to gov first.
    d = decide(snap([q(Job("a", scale=4))]), greedy_fastest)
    assert d.start[0].site == "gov"
    # 8 devices fit only at pub (two nodes of 4): never 4 at gov + 4 at bank.
    d = decide(snap([q(Job("big", scale=8))]), greedy_fastest)
    assert d.start[0].site == "pub" and set(d.start[0].nodes) == {"p0", "p1"}
    # 12 devices: no single site has them.
    d = decide(snap([q(Job("huge", scale=12))]), greedy_fastest)
    assert d.start == () and "huge" in d.waiting


def test_a_running_job_stays_at_its_site() -> None:
    run = Placement("r", "h100", (("b0", (0, 1, 2, 3)),), "bank")
    d = decide(snap([JobStatus(Job("r", scale=4), JobState.RUNNING, placement=run)]), greedy_fastest)
    assert d.keep == (run,) and d.preempt == ()


def test_each_sites_price_applies_to_the_budget_check() -> None:
    assert price_for({"h100": 3000}, BANK, "h100") == 5000
    assert price_for({"h100": 3000}, GOV, "h100") == 3000
    # A lease of 4 devices x 360 s: 1200 KRW at the pool's 3000/h, but a financial job runs at bank: 2000 KRW.
    g = Grant("g", "p", "t", amount_krw=1500)
    d = decide(
        snap([q(Job("f", scale=4, data_class="financial", grant="g", tenant="t"))], grants=[g]),
        greedy_fastest,
    )
    assert d.start == () and d.waiting["f"] == WaitReason.BUDGET
    g = Grant("g", "p", "t", amount_krw=2000)
    d = decide(
        snap([q(Job("f", scale=4, data_class="financial", grant="g", tenant="t"))], grants=[g]),
        greedy_fastest,
    )
    assert d.start[0].site == "bank"


def test_property_a_job_never_starts_or_stays_at_a_site_not_allowed_for_it() -> None:
    """1,000 random submissions over many rounds with random site failures and returns: every placement
    (started or kept) is at one site only, and that site is up and allowed for the job's data class, named
    sites and regions. Checked for several policies."""
    classes = ["public", "personal", "financial", "public-sector"]
    for policy_name in ("fifo", "max-min-fairness"):
        rng = random.Random(f"sites-{policy_name}")
        base = [
            Site("s0", region="seoul", data_classes=frozenset({"public"}), prices={"h100": 2000}),
            Site("s1", region="seoul", data_classes=frozenset({"public", "personal"}), prices={"h100": 3000}),
            Site(
                "s2", region="busan", data_classes=frozenset({"public", "financial"}), prices={"h100": 4000}
            ),
            Site("s3", region="busan", data_classes=frozenset({"financial", "personal"})),
            Site("s4", region="daejeon", data_classes=frozenset({"public", "public-sector", "financial"})),
        ]
        nodes = [
            Node(f"{s.id}-n{i}", "h100", rng.choice([2, 4, 8]), site=s.id) for s in base for i in range(3)
        ]
        nodes += [Node(f"{s.id}-a{i}", "a100", 4, site=s.id) for s in base[::2] for i in range(2)]
        down: set[str] = set()
        jobs: dict[str, JobStatus] = {}
        cache = DecideCache()
        submitted = 0
        starts_checked = 0
        financial_started: set[str] = set()
        now = 0.0
        policy = POLICIES[policy_name]
        while submitted < 1000:
            now += 60.0
            for _ in range(rng.randint(0, 12)):
                if submitted >= 1000:
                    break
                dc = rng.choice(classes)
                named = (
                    frozenset(rng.sample([s.id for s in base], rng.randint(1, 3)))
                    if rng.random() < 0.3
                    else frozenset()
                )
                regions = (
                    frozenset({rng.choice(["seoul", "busan", "daejeon"])})
                    if rng.random() < 0.2
                    else frozenset()
                )
                j = Job(
                    f"j{submitted}",
                    scale=rng.choice([1, 2, 4, 8]),
                    data_class=dc,
                    sites=named,
                    regions=regions,
                    submit_time=now,
                )
                jobs[j.id] = JobStatus(j, JobState.QUEUED)
                submitted += 1
            if rng.random() < 0.25:  # a site fails or comes back
                s = rng.choice(base).id
                down ^= {s}
            sites = tuple(
                Site(s.id, s.operator, s.region, s.data_classes, prices=s.prices, down=s.id in down)
                for s in base
            )
            live = tuple(n for n in nodes if n.site not in down)
            # jobs on a failed site are lost and requeued (what the store does on node-lost)
            for jid, st in list(jobs.items()):
                if st.state is JobState.RUNNING and st.placement is not None and st.placement.site in down:
                    jobs[jid] = JobStatus(st.job, JobState.QUEUED, seconds_on=st.seconds_on)
            tput = ThroughputMatrix.from_rows({j: {"h100": 1.0, "a100": 0.5} for j in jobs}, ("a100", "h100"))
            snapshot = Snapshot(
                now,
                live,
                tuple(jobs.values()),
                tput,
                sites=sites,
                prices_krw_per_hour={"h100": 1000, "a100": 500},
                round_seconds=60.0,
            )
            d = decide(snapshot, policy, cache)
            table = site_table(sites)
            node_site = {n.name: n.site for n in live}
            for p in d.placements():
                j = jobs[p.job].job
                assert p.site in allowed_sites(j, table), (j, p)
                assert table[p.site].down is False and j.data_class in table[p.site].data_classes
                assert {node_site[n] for n in p.nodes} == {p.site}, p
                starts_checked += 1
                if j.data_class == "financial":
                    financial_started.add(j.id)
            for jid, why in d.waiting.items():
                if not allowed_sites(jobs[jid].job, table):
                    assert why == WaitReason.RULE and d.details[jid]
            placed = {p.job: p for p in d.placements()}
            for jid, st in list(jobs.items()):
                if jid in placed:
                    on = dict(st.seconds_on)
                    on[placed[jid].accelerator] = on.get(placed[jid].accelerator, 0.0) + 60.0
                    jobs[jid] = JobStatus(st.job, JobState.RUNNING, placement=placed[jid], seconds_on=on)
                elif st.state is JobState.RUNNING:
                    jobs[jid] = JobStatus(st.job, JobState.QUEUED, seconds_on=st.seconds_on)
                if jid in jobs and jobs[jid].state is JobState.RUNNING and rng.random() < 0.4:
                    del jobs[jid]  # finished
        assert starts_checked > 300 and len(financial_started) > 30


def test_the_policy_sees_only_types_a_job_can_use_at_one_allowed_site() -> None:
    nodes = (
        Node("p0", "a100", 8, site="pub"),
        Node("b0", "h100", 4, site="bank"),
        Node("b1", "h100", 2, site="bank"),
    )
    tput = ThroughputMatrix.from_rows(
        {j: {"a100": 1.0, "h100": 2.0} for j in ("fin", "big", "pub")}, ("a100", "h100")
    )
    jobs = (
        q(Job("fin", scale=4, data_class="financial")),  # only bank: h100 only
        q(Job("big", scale=8, data_class="financial")),  # bank has 6 h100 on two nodes: fits nowhere
        q(Job("pub", scale=8)),  # a100 at pub; h100 only 6 at bank
    )
    s = Snapshot(100.0, nodes, jobs, tput, sites=SITES, prices_krw_per_hour={"a100": 1000, "h100": 3000})
    from accelpool.core.problem import build_problem
    from accelpool.core.sites import site_view, sites_allowing

    problem = build_problem(
        [j.job for j in jobs], {"a100": 8, "h100": 6}, tput, prices_krw_per_hour=s.prices_krw_per_hour
    )
    allowed, _ = sites_allowing([j.job for j in jobs], site_table(SITES))
    view = site_view(problem, allowed, nodes, site_table(SITES), s.prices_krw_per_hour)
    assert view.allowed.tolist() == [[False, True], [False, False], [True, False]]
    # each type at its cheapest up site: a100 only at pub (its own price list has none: the pool's),
    # h100 only at bank (5000)
    assert view.price_krw_per_hour.tolist() == [1000, 5000]
    d = decide(s, POLICIES["max-min-fairness"])
    placed = {p.job: (p.accelerator, p.site) for p in d.start}
    assert placed == {"fin": ("h100", "bank"), "pub": ("a100", "pub")}
    assert "big" in d.waiting


def test_a_cost_aware_policy_sees_each_sites_prices() -> None:
    # The pool's prices say a100 is cheap; the only site holding a100 sells it dear, the h100 site cheap.
    dear = Site("dear", data_classes=frozenset({"public"}), prices={"a100": 9000})
    cheap = Site("cheap", data_classes=frozenset({"public"}), prices={"h100": 1000})
    nodes = (Node("d0", "a100", 4, site="dear"), Node("c0", "h100", 4, site="cheap"))
    tput = ThroughputMatrix.from_rows({"j": {"a100": 1.0, "h100": 1.0}}, ("a100", "h100"))
    job = Job("j", scale=4, total_steps=1000, deadline=100.0 + 5000.0)  # min-cost minimizes its cost
    s = Snapshot(
        100.0,
        nodes,
        (q(job),),
        tput,
        sites=(dear, cheap),
        prices_krw_per_hour={"a100": 1000, "h100": 9000},
    )
    d = decide(s, POLICIES["min-cost"])
    assert [(p.accelerator, p.site) for p in d.start] == [("h100", "cheap")]


def test_a_job_with_an_image_is_allowed_only_where_images_run() -> None:
    hpc = Site("hpc", data_classes=frozenset({"public", "financial"}), executor="slurm")
    t = site_table((hpc, BANK))
    assert allowed_sites(Job("a", with_image=True), t) == {"bank", "default"}
    assert allowed_sites(Job("a"), t) == {"hpc", "bank", "default"}
    only = site_table((hpc,))
    why = nowhere_reason(Job("f", data_class="financial", with_image=True), only)
    assert why == "it runs in an image, and no site it may use runs images (Slurm sites do not): hpc (slurm)"
    nodes = (Node("s0", "h100", 4, site="hpc"), Node("b0", "h100", 4, site="bank"))
    d = decide(snap([q(Job("i", scale=4, with_image=True))], nodes, (hpc, BANK)), greedy_fastest)
    assert [p.site for p in d.start] == ["bank"]
