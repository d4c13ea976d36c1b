"""The memory planner: no two live values overlap, dead values' bytes are reused."""


from hypothesis import given, settings
from hypothesis import strategies as st

from opencann.engine.memory import ALIGN, PlanCache, lifetimes, plan_memory


def test_chain_reuses_memory():
    # a -> b -> c -> d: each value dies when the next one is made, so two slots suffice
    plan = plan_memory([("a", 1000, 0, 1), ("b", 1000, 1, 2), ("c", 1000, 2, 3), ("d", 1000, 3, 4)])
    plan.check()
    assert plan.arena_bytes == 2 * 1024
    assert plan.total_bytes == 4 * 1024
    assert "50% saved" in plan.summary()


def test_values_alive_together_do_not_overlap():
    plan = plan_memory([("x", 100, 0, 5), ("y", 300, 1, 2), ("z", 200, 2, 6)])
    plan.check()
    assert plan.arena_bytes == sum(-(-n // ALIGN) * ALIGN for n in (100, 300, 200))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 20), st.integers(0, 6)), min_size=1, max_size=40))
def test_random_plans_are_sound(items):
    vals = [(i, n, s, s + d) for i, (n, s, d) in enumerate(items)]
    plan = plan_memory(vals)
    plan.check()
    # never worse than no reuse, never better than the peak of simultaneously live bytes
    peak = max(sum(-(-n // ALIGN) * ALIGN for _, n, s, e in vals if s <= t <= e) for t in range(30))
    assert peak <= plan.arena_bytes <= plan.total_bytes


def test_lifetimes_from_steps():
    steps = [([], ["x"]), (["x"], ["a"]), (["a", "x"], ["b"]), (["b"], ["y"])]
    assert lifetimes(steps, keep={"x", "y"}) == {"a": (1, 2), "b": (2, 3)}


def test_plan_cache_plans_once_per_binding():
    made = []

    def make(b):
        made.append(b)
        return plan_memory([("v", b["seq"] * 4, 0, 1)])

    cache = PlanCache(make)
    assert cache.get({"seq": 8}) is cache.get({"seq": 8})
    assert cache.get({"seq": 16}).arena_bytes == 64
    assert len(made) == 2
