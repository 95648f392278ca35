"""An independent, brute-force simulator of the asynchronous mode, for tests.

Plain Python, one event at a time from a ``heapq``, one dict per neuron: clauses A1..A9
of ``docs/async.md`` written out literally for small multilayer perceptrons built by
:func:`neurosim.graph.mlp` (``post`` or ``pre`` convention, ``mse`` or ``ce`` output),
with no code shared with the engine (no netlist, no kernel): what a neuron computes is
written below from ``../shared/design/equations.md``. It is slow on purpose and meant
for networks of a few dozen neurons.

Neurons and links
-----------------
Value neuron ``(k, j)`` (layer ``k``, position ``j``) and error neuron ``(k, i)``
(``k >= 1``). Synapse ``s`` joins value neuron ``(k-1, j)`` to error neuron ``(k, i)``;
synapses are numbered layer by layer, row by row (``s = offset_k + i n_{k-1} + j``), the
order of the weights in ``theta`` and of a per-synapse delay array. Link numbers (the
jitter's counter key, A2): ``2 s`` carries ``x`` forward over synapse ``s``, ``2 s + 1``
carries ``g`` back over it; with ``S`` synapses, ``2 S + 2 e`` carries ``v`` from value
neuron to its error neuron ``e`` (error neurons numbered layer by layer) and
``2 S + 2 e + 1`` carries ``(eps, mu)`` back.

What a neuron computes (lanes ``b`` of a mini-batch elementwise)
-----------------------------------------------------------------
- error neuron, from its inbox (``x_s`` per synapse, its value neuron's ``v``):
  ``a = b_i + sum_s w_s x_s``, ``mu = f(a)`` (post) or ``a`` (pre); ``eps = v - mu``,
  or, learning with a ``ce`` output, ``y - softmax(mu)`` over the output group (one
  computation of the group); ``g = f'(a) eps`` (post) or ``eps`` (pre). It emits
  ``(eps, mu)`` to its value neuron when either changed, ``g`` back over every synapse
  when it changed (A6).
- value neuron, from its inbox (``g_s`` per outgoing synapse, its error neuron's
  ``(eps, mu)``): predicting, ``v = mu``; learning,
  ``v += gamma (-eps + f'(v) sum_s w_s g_s)`` (``f'`` the child's input activation in
  the pre convention, 1 in post; at ``vhat`` for FixedPred). It emits ``v`` to its error
  neuron and ``x`` (``v``, or ``f(v)`` in pre) over its synapses when ``v`` changed
  (FixedPred's children do not listen while learning).
- a synapse reads its weight ``w_s`` at both ends (the synapse is shared by them).

The schedule
------------
Every computation and emission is recorded (:attr:`BruteForce.schedule`), so that a
clause test can compare an engine's schedule with this one.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from neurosim.engine.transport.jitter import transit
from neurosim.rules import IL, ZIL, FaZIL, FixedPred, Rule, StrictPC

DELIVERY, COMPUTE, COMMIT = 0, 1, 2  # A5: at equal times deliveries, computations, commits


def _f(name: str, a: np.ndarray) -> np.ndarray:
    if name == "linear":
        return a.copy()
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.where(a > 0, a, 0.0 * a)
    raise ValueError(name)


def _df(name: str, a: np.ndarray) -> np.ndarray:
    if name == "linear":
        return np.ones_like(a)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a))
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(a) ** 2
    if name == "relu":
        return (a > 0).astype(float)
    raise ValueError(name)


@dataclass
class Timing:
    """The asynchronous timing: synaptic delays (one per synapse, hops), own-link delays
    (one per error neuron), jitter (A2), latency (A4), the commit delay (A7), the
    integration period of a value neuron that moved (A4) and the hops after a commit at
    which a changed synapse wakes its error end and its value end (A7)."""

    delays: np.ndarray
    own: np.ndarray
    sigma: float = 0.0
    jitter_seed: int = 0
    floor: float = 0.05
    latency: float = 0.0
    commit_delay: float = 1.0
    integration: float = 2.0
    wake_error: float = 1.0
    wake_value: float = 2.0


@dataclass
class Presentation:
    """What one presentation did: the change of every parameter, each error neuron's
    trigger time (scheduled or front) and phi's firings ``(time, (k, i), lane)``."""

    updates: dict[str, np.ndarray]
    learn0: float
    t_end: float
    triggers: dict[tuple[int, int], float] = field(default_factory=dict)
    firings: list[tuple[float, tuple[int, int], int]] = field(default_factory=list)


class BruteForce:
    """The asynchronous mode of an MLP, event by event (see the module's docstring).

    ``delays``: one float per synapse, or a number; ``own_delay``: one per error neuron,
    or a number. ``zil_trigger``: ``"clock"`` (Z-IL's update of vertex ``j`` at
    ``learn0 + 2 l_j``) or ``"front"`` (A8: at the first computation that read a
    front-tagged message); with the front trigger a presentation ends once every error
    neuron has triggered and its change has committed (the events still in flight are
    dropped: use it for single presentations).
    """

    def __init__(self, graph: nx.DiGraph, params: dict[str, np.ndarray], delays: object = 1.0,
                 own_delay: object = 1.0, sigma: float = 0.0, jitter_seed: int = 0, latency: float = 0.0) -> None:
        names = list(nx.topological_sort(graph))
        self.layers = names  # input, layer1, ..., layerL
        self.L = len(names) - 1
        self.sizes = [graph.nodes[v]["size"] for v in names]
        self.conv = graph.nodes[names[1]]["convention"]
        self.acts = [None] + [graph.nodes[v]["activation"] for v in names[1:]]
        self.loss = graph.nodes[names[-1]]["loss"]
        self.W = [None] + [np.array(params[f"{v}.weight"], np.float64) for v in names[1:]]
        self.b = [None] + [np.array(params[f"{v}.bias"], np.float64) if f"{v}.bias" in params
                           else np.zeros(graph.nodes[v]["size"]) for v in names[1:]]
        self.has_bias = [False] + [f"{v}.bias" in params for v in names[1:]]
        # synapses, layer by layer, row by row
        self.syn: list[tuple[int, int, int]] = []  # (k, i, j)
        for k in range(1, self.L + 1):
            for i in range(self.sizes[k]):
                for j in range(self.sizes[k - 1]):
                    self.syn.append((k, i, j))
        S = len(self.syn)
        self.e_index = {}  # (k, i) -> error neuron number
        for k in range(1, self.L + 1):
            for i in range(self.sizes[k]):
                self.e_index[(k, i)] = len(self.e_index)
        d = np.full(S, float(delays)) if np.ndim(delays) == 0 else np.asarray(delays, np.float64)
        own = np.full(len(self.e_index), float(own_delay)) if np.ndim(own_delay) == 0 else np.asarray(own_delay, float)
        self.timing = Timing(delays=d, own=own, sigma=float(sigma), jitter_seed=int(jitter_seed), latency=latency)
        # neurons: one dict each
        self.value: dict[tuple[int, int], dict] = {}
        self.error: dict[tuple[int, int], dict] = {}
        self.t = 0.0  # the time of the next presentation's onset
        self.events: list = []
        self.payload: dict[int, object] = {}
        self.uid = 0
        self.link_count: dict[int, int] = {}
        self.schedule: list[tuple] = []
        self.B = None

    # ---- helpers -----------------------------------------------------------------------
    def _allocate(self, B: int) -> None:
        self.B = B
        z = lambda: np.zeros(B)  # noqa: E731
        for k in range(self.L + 1):
            for j in range(self.sizes[k]):
                role = "input" if k == 0 else ("output" if k == self.L else "free")
                out = [s for s, (kk, i, jj) in enumerate(self.syn) if kk == k + 1 and jj == j]
                self.value[(k, j)] = dict(key=(k, j), role=role, v=z(), vhat=z(), out=out,
                                          g_in={s: [-1, z(), False] for s in out}, e_in=[-1, z(), z(), False])
        for (k, i), e in self.e_index.items():
            ins = [s for s, (kk, ii, _) in enumerate(self.syn) if kk == k and ii == i]
            self.error[(k, i)] = dict(key=(k, i), n=e, ins=ins, x_in={s: [-1, z(), False] for s in ins},
                                      v_in=[-1, z(), False], a=z(), mu=z(), eps=z(), g=z(), mu_sent=z(),
                                      last_change=np.full(B, -np.inf), spent=np.zeros(B, bool), mu0=z(),
                                      triggered=False)

    def _gid(self, kind: str, key: tuple[int, int]) -> int:
        """A global neuron id for the order of A5 (value neurons first)."""
        k, p = key
        base = sum(self.sizes[:k]) if kind == "v" else sum(self.sizes) + self.e_index[key]
        return base + (p if kind == "v" else 0)

    def _push(self, t: float, kind: int, target: int, source: int, seq: int, data: object) -> None:
        self.uid += 1
        self.payload[self.uid] = data
        heapq.heappush(self.events, (t, kind, target, source, seq, self.uid))

    def _emit(self, t: float, link: int, delay: float, receiver: tuple[str, tuple[int, int]], what: tuple) -> None:
        """A message on ``link`` emitted at ``t``: arrives after its transit (A1, A2)."""
        index = self.link_count.get(link, 0)
        self.link_count[link] = index + 1
        tm = self.timing
        arrival = t + transit(delay, tm.sigma, tm.floor, tm.jitter_seed, link, index)
        assert arrival > t
        self.schedule.append((t, "emit", link, index, arrival))
        self._push(arrival, DELIVERY, self._gid(*receiver), link, index, (receiver, link, index, what))

    def _wake(self, kind: str, key: tuple[int, int], t: float) -> None:
        """Neuron ``key`` computes at ``t`` (several wakes at one time: one computation)."""
        gid = self._gid(kind, key)
        if (gid, t) in self.pending:
            return
        self.pending.add((gid, t))
        self._push(t, COMPUTE, gid, 0, 0, (kind, key))

    def _weight(self, s: int) -> float:
        k, i, j = self.syn[s]
        return self.W[k][i, j]

    def _xsig(self, k: int, v: np.ndarray) -> np.ndarray:
        """What value neuron of layer ``k`` sends its children: ``v`` (post), ``f_{k+1}(v)`` (pre)."""
        return _f(self.acts[k + 1], v) if self.conv == "pre" else v.copy()

    def _dxsig(self, k: int, v: np.ndarray) -> np.ndarray:
        return _df(self.acts[k + 1], v) if self.conv == "pre" else np.ones_like(v)

    # ---- clamps (the environment's messages, delivered at once) -------------------------
    def _clamp(self, k: int, values: np.ndarray, t: float, tag: bool) -> None:
        for j in range(self.sizes[k]):
            n = self.value[(k, j)]
            n["v"] = values[:, j].astype(np.float64).copy()
            x = self._xsig(k, n["v"]) if k < self.L else None
            for s in n["out"]:
                _, i, _ = self.syn[s]
                box = self.error[(k + 1, i)]["x_in"][s]
                box[0] = self.link_count.get(2 * s, 0)
                self.link_count[2 * s] = box[0] + 1
                box[1], box[2] = x.copy(), tag
                self._wake("e", (k + 1, i), t)
            if k > 0:
                e = self.error[(k, j)]
                link = 2 * len(self.syn) + 2 * e["n"]
                e["v_in"][0] = self.link_count.get(link, 0)
                self.link_count[link] = e["v_in"][0] + 1
                e["v_in"][1], e["v_in"][2] = n["v"].copy(), tag
                self._wake("e", (k, j), t)

    # ---- the run ---------------------------------------------------------------------
    def learn(self, x: np.ndarray, y: np.ndarray, rule: Rule, zil_trigger: str = "clock",
              max_hops: float = 1e4) -> Presentation:
        """Present one mini-batch: the prediction phase to quiescence, then ``rule``."""
        x, y = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
        fresh = self.B is None
        if fresh:
            self._allocate(x.shape[0])
            self.pending: set = set()
            self.commits_in_flight = 0
        # --- prediction phase (A9): clamp, onset, relax until no message is in flight
        self.mode, self.rule, self.held_at, self.front, self.fixed = "predict", None, np.inf, False, False
        self.trigger_at = {}
        t0 = self.t
        self.onset = t0
        self._clamp(0, x, t0, False)
        for key in self.error:  # the stimulus onset: every error neuron computes and emits once
            self._wake("e", key, t0)
        t_last = self._run(lambda t: False)
        learn0 = 2.0 * np.floor(t_last / 2.0) + 2.0  # the first even hop after the last event
        # --- learning phase
        for n in self.value.values():
            n["vhat"] = n["v"].copy()
            n["e_in"][3] = False
            for box in n["g_in"].values():
                box[2] = False
        for e in self.error.values():
            e["mu0"] = e["mu"].copy()
            e["last_change"][:] = -np.inf
            e["spent"][:] = False
            e["triggered"] = False
            e["v_in"][2] = False
            for box in e["x_in"].values():
                box[2] = False
        self.mode, self.rule, self.learn0 = "learn", rule, learn0
        self.gamma, self.fixed = 1.0, False
        self.result = Presentation(updates={}, learn0=learn0, t_end=np.inf)
        for k in range(1, self.L + 1):
            self.result.updates[f"{self.layers[k]}.weight"] = np.zeros_like(self.W[k])
            if self.has_bias[k]:
                self.result.updates[f"{self.layers[k]}.bias"] = np.zeros_like(self.b[k])
        self.trigger_at: dict[tuple[int, int], float] = {}
        self.held_at = np.inf
        self.front = False
        if isinstance(rule, IL):
            self.gamma, n_ticks = rule.gamma, rule.t_c + 1
            self.trigger_at = {key: learn0 + 2.0 * rule.t_c for key in self.error}
        elif isinstance(rule, ZIL):
            if rule.update_step is not None or rule.init_noise:
                raise NotImplementedError("the brute force runs Z-IL with C2 and C1 only")
            self.gamma, n_ticks = rule.gamma, self.L
            if zil_trigger == "front":
                self.front = True
            else:
                self.trigger_at = {(k, i): learn0 + 2.0 * (self.L - k) for (k, i) in self.error}
        elif isinstance(rule, FaZIL):
            self.gamma, n_ticks = rule.gamma, rule.ticks if rule.ticks is not None else self.L
        elif isinstance(rule, StrictPC):
            self.gamma, n_ticks, self.held_at = rule.eta, rule.n + 1, learn0 + 2.0 * rule.n
        elif isinstance(rule, FixedPred):
            n = rule.n if rule.n is not None else self.L
            self.gamma, n_ticks, self.held_at, self.fixed = rule.eta, n + 1, learn0 + 2.0 * n, True
        else:
            raise NotImplementedError(type(rule).__name__)
        for key, t in self.trigger_at.items():
            self._wake("e", key, t)
        if self.held_at < np.inf:
            self._push(self.held_at, COMPUTE, 0, 0, 0, ("held", None))
        t_end = learn0 + 2.0 * (n_ticks - 1) + 1.0  # after the last error computations' commits
        if self.front:
            t_end = learn0 + max_hops
        self.t_end = t_end
        self._clamp(self.L, y, learn0, True)  # the teacher: a tagged message at learn0 (A8)
        for i in range(self.sizes[self.L]):  # its arrival is an event even where y == v
            self._wake("e", (self.L, i), learn0)
        self._run(self._learning_over)
        self.result.t_end = self.t_end
        self.t = self.t_end + 1.0
        return self.result

    def _learning_over(self, t: float) -> bool:
        if t > self.t_end:
            return True
        if self.front and all(e["triggered"] for e in self.error.values()):
            # Z-IL at the front: every neuron has decided its one change; the changes in
            # flight commit (nothing else can alter them) and the presentation ends there
            while self.events:
                tc, kind, _, _, _, uid = heapq.heappop(self.events)
                data = self.payload.pop(uid)
                if kind == COMMIT:
                    self._commit(tc, data)
                    self.t_end = tc
            self.pending.clear()
            return True
        return False

    def _run(self, stop) -> float:
        """Process events in the order of A5 until ``stop(t)`` or no event is left;
        returns the time of the last event processed."""
        t_last = self.t
        while self.events:
            t, kind, target, source, seq, uid = self.events[0]
            if stop(t):
                break
            heapq.heappop(self.events)
            data = self.payload.pop(uid)
            if kind == DELIVERY:
                self._deliver(t, data)
            elif kind == COMPUTE:
                if data[0] == "held":
                    self._held(t)
                else:
                    self.pending.discard((target, t))
                    if self.mode == "learn" and t >= self.t_end:
                        continue  # the learning phase ends after its last error computations (A9)
                    if t == self.held_at and data[0] == "e":
                        continue  # the held update replaces the error computations then
                    if data[0] == "e":
                        self._compute_error(t, data[1])
                    else:
                        self._compute_value(t, data[1])
            else:
                self._commit(t, data)
            t_last = t
        return t_last

    def _deliver(self, t: float, data: tuple) -> None:
        """A3: keep the message unless a later emission on its link already arrived."""
        (kind, key), link, index, what = data
        S = len(self.syn)
        n = self.error[key] if kind == "e" else self.value[key]
        if kind == "e":
            box = n["x_in"][link // 2] if link < 2 * S else n["v_in"]
        else:
            box = n["g_in"][link // 2] if link < 2 * S else n["e_in"]
        if index <= box[0]:
            return  # overtaken
        box[0] = index
        box[1:] = [a.copy() if isinstance(a, np.ndarray) else a for a in what]
        self._wake(kind, key, t + self.timing.latency)

    # ---- the neurons -----------------------------------------------------------------
    def _tagged(self, n: dict, kind: str) -> bool:
        if kind == "e":
            return n["v_in"][2] or any(box[2] for box in n["x_in"].values())
        return n["e_in"][3] or any(box[2] for box in n["g_in"].values())

    def _predict(self, k: int, e: dict) -> None:
        a = self.b[k][e["key"][1]] + sum(self._weight(s) * e["x_in"][s][1] for s in e["ins"])
        e["a"] = np.asarray(a, float) * np.ones(self.B)
        e["mu"] = _f(self.acts[k], e["a"]) if self.conv == "post" else e["a"].copy()

    def _dmu(self, k: int, e: dict) -> np.ndarray:
        return _df(self.acts[k], e["a"]) if self.conv == "post" else np.ones(self.B)

    def _compute_error(self, t: float, key: tuple[int, int]) -> None:
        k, i = key
        learning = self.mode == "learn"
        group = [key]
        if learning and k == self.L and self.loss == "ce":  # the softmax group computes together
            group = [(k, q) for q in range(self.sizes[k])]
            gid = self._gid("e", group[0])
            if getattr(self, "_group_done", None) == (gid, t):
                return
            self._group_done = (gid, t)
        for key in group:
            e = self.error[key]
            self.schedule.append((t, "compute", "e", key))
            if not (learning and self.fixed):
                self._predict(k, e)
        if learning and k == self.L and self.loss == "ce":
            mus = np.array([self.error[key]["mu"] for key in group])
            p = np.exp(mus - mus.max(axis=0))
            p /= p.sum(axis=0)
        for q, key in enumerate(group):
            e = self.error[key]
            tagged = learning and self._tagged(e, "e")
            if learning and k == self.L and self.loss == "ce":
                new_eps = e["v_in"][1] - p[q]
            else:
                new_eps = e["v_in"][1] - e["mu"]
            scheduled = learning and self.trigger_at.get(key) == t
            if self.front and tagged and not e["triggered"]:
                scheduled = True
            fires = np.zeros(self.B, bool)
            changed = new_eps != e["eps"]
            if learning and isinstance(self.rule, FaZIL):
                for b in np.flatnonzero(changed):
                    if self.rule.detector == "feedback":
                        phi = (not e["spent"][b]) and e["mu"][b] == e["mu0"][b]
                    else:
                        phi = e["last_change"][b] <= t - 2.0 * self.rule.t_d
                    e["last_change"][b] = t
                    if phi:
                        fires[b] = True
                        e["spent"][b] = True
                        self.result.firings.append((t, key, int(b)))
            elif learning:
                e["last_change"][changed] = t
            e["eps"] = new_eps
            new_g = self._dmu(k, e) * new_eps
            g_changed = bool(np.any(new_g != e["g"]))
            e["g"] = new_g
            forced = t == self.onset and not learning
            link_down = 2 * len(self.syn) + 2 * e["n"] + 1
            if bool(np.any(changed)) or bool(np.any(e["mu"] != e["mu_sent"])) or forced:
                e["mu_sent"] = e["mu"].copy()
                self._emit(t, link_down, self.timing.own[e["n"]], ("v", key), (e["eps"].copy(), e["mu"].copy(), tagged))
            if g_changed or forced:
                for s in e["ins"]:
                    _, _, j = self.syn[s]
                    self._emit(t, 2 * s + 1, self.timing.delays[s], ("v", (k - 1, j)), (e["g"].copy(), tagged))
            if scheduled:
                e["triggered"] = True
                self.result.triggers[key] = t
            if scheduled or fires.any():
                pending = np.where(scheduled | fires, new_g, 0.0)
                self._decide(t, k, e, pending)

    def _decide(self, t: float, k: int, e: dict, pending: np.ndarray) -> None:
        """A7: the change decided now, from what the synapses received, commits later."""
        alpha = self.rule.alpha
        dw = [(s, alpha * float(np.sum(pending * e["x_in"][s][1]))) for s in e["ins"]]
        db = alpha * float(np.sum(pending)) if self.has_bias[k] else 0.0
        self.commits_in_flight += 1
        self._push(t + self.timing.commit_delay, COMMIT, self._gid("e", e["key"]), 0, 0, (e["key"], dw, db))

    def _held(self, t: float) -> None:
        """Strict PC's and FixedPred's update at ``learn0 + 2 n``: the held errors of the
        last computation, pulled back through ``dmu/da`` at the inputs received now
        (Strict PC) or at the forward pass (FixedPred)."""
        for key, e in self.error.items():
            self.schedule.append((t, "held", "e", key))
            k = key[0]
            if not self.fixed:
                self._predict(k, e)
            self._decide(t, k, e, self._dmu(k, e) * e["eps"])

    def _commit(self, t: float, data: tuple) -> None:
        key, dw, db = data
        k, i = key
        self.commits_in_flight -= 1
        up = self.result.updates
        for s, d in dw:
            _, _, j = self.syn[s]
            self.W[k][i, j] += d
            up[f"{self.layers[k]}.weight"][i, j] += d
        if self.has_bias[k]:
            self.b[k][i] += db
            up[f"{self.layers[k]}.bias"][i] += db
        self.schedule.append((t, "commit", "e", key))
        self._wake("e", key, t + self.timing.wake_error)  # a changed synapse wakes both its ends
        for s in self.error[key]["ins"]:
            _, _, j = self.syn[s]
            self._wake("v", (k - 1, j), t + self.timing.wake_value)

    def _compute_value(self, t: float, key: tuple[int, int]) -> None:
        k, j = key
        n = self.value[key]
        learning = self.mode == "learn"
        if n["role"] == "input" or (n["role"] == "output" and learning):
            return  # clamped
        self.schedule.append((t, "compute", "v", key))
        tagged = learning and self._tagged(n, "v")
        if not learning:
            new_v = n["e_in"][2].copy()
        else:
            fb = np.zeros(self.B)
            for s in n["out"]:
                fb = fb + self._weight(s) * n["g_in"][s][1]
            at = n["vhat"] if self.fixed else n["v"]
            new_v = n["v"] + self.gamma * (-n["e_in"][1] + self._dxsig(k, at) * fb)
        if not np.any(new_v != n["v"]):
            return  # A6: silence
        n["v"] = new_v
        e = self.error[key]
        self._emit(t, 2 * len(self.syn) + 2 * e["n"], self.timing.own[e["n"]], ("e", key), (new_v.copy(), tagged))
        if not (learning and self.fixed) and n["out"]:
            x = self._xsig(k, new_v)
            for s in n["out"]:
                _, i, _ = self.syn[s]
                self._emit(t, 2 * s, self.timing.delays[s], ("e", (k + 1, i)), (x.copy(), tagged))
        if learning:
            self._wake("v", key, t + self.timing.integration)  # not at rest (A4)

    def params(self) -> dict[str, np.ndarray]:
        """The current parameters, PyTorch layout."""
        out = {}
        for k in range(1, self.L + 1):
            out[f"{self.layers[k]}.weight"] = self.W[k].copy()
            if self.has_bias[k]:
                out[f"{self.layers[k]}.bias"] = self.b[k].copy()
        return out
