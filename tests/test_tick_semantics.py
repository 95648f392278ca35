"""One test per clause of the tick semantics (the docstring of ``neurosim.engine.semantics``)."""

import copy

import numpy as np
import pytest

from neurosim import activations
from neurosim.engine import Simulator
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference import backprop
from neurosim.reference.rules import run_rule
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC


def _problem(sizes=(3, 5, 4, 2), act="tanh", convention="post", batch=2, seed=0):
    rng = np.random.default_rng(seed)
    g = mlp(list(sizes), activation=act, convention=convention)
    return g, init_params(g, seed=seed + 1), rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))


def _flat(updates):
    return np.concatenate([u.ravel() for _, u in sorted(updates.items())])


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_S1_one_tick_is_one_inference_step(convention):
    """With unit delays the energy after tick t equals the reference's energy of state t."""
    g, p, x, y = _problem(convention=convention)
    rule = StrictPC(alpha=0.1, eta=0.2, n=12)
    ours = Simulator(g, p).learn(x, y, rule)
    ref = run_rule(g, p, x, y, rule)
    computed = ours.energy[~np.isnan(ours.energy)]
    assert len(computed) == len(ref.energy) == 12
    np.testing.assert_allclose(computed, ref.energy, rtol=1e-12, atol=0)


def _brute_force(sim, pres, n_ticks):
    """Every neuron computed every tick from explicit per-tick histories (clauses S1, S2).

    A direct transcription of the delay rule: error neurons read ``x`` emitted at
    ``T - d`` and their belief at ``T - d_own``; value neurons read ``eps`` and ``g``
    emitted at ``T - d + 1``. Learning mode, no plasticity (Strict PC before its update).
    """
    net, st = sim.netlist, sim.state
    D = st.v_line.shape[0]
    T0 = sim.tick
    hx, hv, he, hg = {}, {}, {}, {}
    for tau in range(T0 - D + 1, T0):
        hx[tau], hv[tau] = st.x_line[tau % D].copy(), st.v_line[tau % D].copy()
        he[tau], hg[tau] = st.e_line[tau % D].copy(), st.g_line[tau % D].copy()
    theta = sim.theta.copy()
    v = st.v.copy()
    gamma = pres.rule.eta
    trace = []
    assert net.n_compartments == net.n_error  # an MLP: compartment i is error neuron i
    for T in range(T0, T0 + n_ticks):
        a = np.zeros_like(st.a)
        for i in range(net.n_error):
            a[i] += theta[net.c_bias[net.c_bias_ptr[i] : net.c_bias_ptr[i + 1]]].sum(axis=0)
            for s in np.flatnonzero(net.s_post == i):
                a[i] += theta[net.synapse_params[s]] * hx[T - net.s_delay[s]][net.s_pre[s]]
        eps = np.zeros_like(a)
        g = np.zeros_like(a)
        for i in range(net.n_error):
            code = int(net.c_act[i])
            name = [k for k, c in activations.ACTIVATIONS.items() if c == code][0]
            mu = activations.apply(name, a[i])
            eps[i] = hv[T - net.own_delay[i]][net.e_value[i]] - mu
            g[i] = activations.derivative(name, a[i]) * eps[i]
        he[T], hg[T] = eps, g
        new_v = v.copy()
        for j in range(net.n_value):
            if net.v_role[j] != 0:
                continue
            k = net.v_err[j]
            fb = np.zeros(v.shape[1])
            for s in np.flatnonzero(net.s_pre == j):
                fb += theta[net.synapse_params[s]] * hg[T - net.s_delay[s] + 1][net.s_post[s]]
            code = int(net.v_out_act[j])
            name = [n for n, c in activations.ACTIVATIONS.items() if c == code][0]
            fb = activations.derivative(name, v[j]) * fb
            new_v[j] = v[j] + gamma * (-he[T - net.own_delay[k] + 1][k] + fb)
        v = new_v
        hv[T] = v.copy()
        hx[T] = np.stack([activations.apply([n for n, c in activations.ACTIVATIONS.items()
                                             if c == int(net.v_out_act[j])][0], v[j]) for j in range(net.n_value)])
        trace.append((v.copy(), eps.copy()))
    return trace


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_S2_heterogeneous_delays_follow_the_delay_rule(convention):
    g, p, x, y = _problem(convention=convention)
    delays = {"layer1": 2, "layer2": 3, "layer3": 1}
    sim = Simulator(g, p, delays=delays, own_delay=2)
    pres = sim.present(x, y, StrictPC(alpha=0.1, eta=0.3, n=40))
    expected = _brute_force(copy.deepcopy(sim), pres, 15)
    for v_exp, eps_exp in expected:
        pres.advance(1)
        np.testing.assert_allclose(sim.state.v, v_exp, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(sim.state.eps, eps_exp, rtol=1e-12, atol=1e-15)
    # the delays matter: the same run with unit delays is different
    plain = Simulator(g, p).present(x, y, StrictPC(alpha=0.1, eta=0.3, n=40))
    plain.advance(15)
    assert not np.allclose(plain.engine.state.v, sim.state.v)


@pytest.mark.parametrize("rule", [StrictPC(alpha=0.1, eta=0.3, n=9), FaZIL(alpha=0.1, t_d=2, ticks=9),
                                  IL(alpha=0.1, gamma=0.2, t_c=7), FixedPred(alpha=0.1),
                                  IPC(alpha=0.1, gamma=0.2, ticks=7)])
def test_S3_visiting_order_does_not_matter(rule):
    g, p, x, y = _problem()
    a = Simulator(g, p).learn(x, y, rule)
    b = Simulator(g, p).learn(x, y, rule, reverse=True)
    assert np.array_equal(_flat(a.updates), _flat(b.updates))


@pytest.mark.parametrize("rule", [StrictPC(alpha=0.1, eta=0.3, n=9), FaZIL(alpha=0.1, t_d=2, ticks=9),
                                  ZIL(alpha=0.1), FixedPred(alpha=0.1), IPC(alpha=0.1, gamma=0.2, ticks=7)])
@pytest.mark.parametrize("convention", ["post", "pre"])
def test_S4_skipping_silent_neurons_changes_nothing(rule, convention):
    g, p, x, y = _problem(act="relu", convention=convention)
    a = Simulator(g, p).learn(x, y, rule)
    b = Simulator(g, p).learn(x, y, rule, all_active=True)
    assert np.array_equal(_flat(a.updates), _flat(b.updates))
    assert np.array_equal(a.energy, b.energy, equal_nan=True)


def test_S5_silent_neurons_send_nothing():
    """Z-IL's first tick moves only the last hidden layer: nothing else is woken."""
    g, p, x, y = _problem(sizes=(3, 4, 4, 4, 2))
    sim = Simulator(g, p)
    pres = sim.present(x, y, ZIL(alpha=0.1))
    pres.advance(1)
    slot = sim.tick % sim.state.err_wake_in.shape[0]
    flags = sim.state.err_wake_in[slot] | sim.state.err_wake_own[slot]
    woken = {sim.netlist.where("error", int(i))[0] for i in np.flatnonzero(flags)}
    assert woken == {"layer3", "layer4"}  # own links of layer3, its children, layer4's changed weights
    # a second prediction of the same input after no learning: one onset tick, then silence
    sim2 = Simulator(g, p)
    sim2.predict(x)
    t = sim2.tick
    sim2.predict(x)
    assert sim2.tick - t == 1


def test_S6_weights_change_at_the_end_of_the_tick():
    """At Z-IL's step 0 the output weights change, but the feedback of that same step
    uses the old weights: layer L-1 moves by exactly W_L(old)^T (act'(a_L) * eps_L)."""
    g, p, x, y = _problem(convention="post", act="sigmoid")
    states = backprop.forward(g, p, x)
    sim = Simulator(g, p)
    pres = sim.present(x, y, ZIL(alpha=0.5))
    before = sim.state.v.copy()
    pres.advance(1)
    a_out = states["layer3"]["a"]
    eps_out = y - states["layer3"]["mu"]
    moved = (activations.derivative("sigmoid", a_out) * eps_out) @ p["layer3.weight"]
    lo = sim.netlist.value_neuron("layer2", 0)
    np.testing.assert_allclose((sim.state.v - before)[lo : lo + 4].T, moved, rtol=1e-12)
    assert not np.array_equal(sim.params["layer3.weight"], p["layer3.weight"])  # applied after the tick


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_S7_prediction_phase_is_the_forward_pass(convention):
    g, p, x, y = _problem(convention=convention, act="sigmoid")
    sim = Simulator(g, p)
    sim.learn(x, y, StrictPC(alpha=0.1, eta=0.3, n=5))  # leave the beliefs displaced
    sim.set_params(p)
    before = sim.tick
    out = sim.predict(x)
    np.testing.assert_allclose(out, backprop.predict(g, p, x), rtol=1e-14)
    assert sim.tick - before == 4  # depth 3 + 1: the wave reaches the output, which confirms
    hidden = sim.netlist.e_loss == 0
    assert np.all(sim.state.eps[hidden] == 0.0)  # exactly zero: beliefs adopt predictions


def test_S8_divergence_is_detected_and_nothing_is_applied():
    g, p, x, y = _problem(sizes=(3, 6, 6, 2), act="linear")
    p = {k: 3.0 * v for k, v in p.items()}
    sim = Simulator(g, p)
    res = sim.learn(x, y, StrictPC(alpha=0.1, eta=1.5, n=60))
    assert res.diverged and res.diverged_at is not None and res.diverged_at < 60
    assert all(np.array_equal(sim.params[k], p[k]) for k in p)
    assert all(not np.any(u) for u in res.updates.values())
    ref = run_rule(g, p, x, y, StrictPC(alpha=0.1, eta=1.5, n=60))
    assert ref.diverged and ref.diverged_at == res.diverged_at
