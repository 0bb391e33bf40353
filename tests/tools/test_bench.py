"""Benchmark bookkeeping: the FLOP counts behind the GFLOP/s figures the README reports."""
import jax

from jaxstyle.tools import bench_nst


def test_nst_analytic_flops_match_xla_cost_analysis(monkeypatch):
  """The hand count (forward + input gradient, no weight gradients) is what XLA counts for direct convs.

  A first version counted the backward pass twice and overstated NST GFLOP/s by 1.5x. Winograd is off
  here (conv_impl='cpu_fast'): the count is of direct convs by definition (with it on, XLA counts the smaller GEMMs).
  """
  monkeypatch.delenv('JAXSTYLE_CONV_IMPL', raising=False)
  size = 128  # large enough that the SAME padding taps XLA does not count are < 1 %
  targets, loss_fn, params, x = bench_nst._objective(size, conv_impl='cpu_fast')
  value_and_grad = jax.jit(jax.value_and_grad(lambda x, t, p: loss_fn(x, t, p)[0]))
  cost = value_and_grad.lower(x, targets, params).cost_analysis()
  xla_flops = float(cost['flops'])
  assert abs(bench_nst.analytic_flops(size) - xla_flops) < 0.03 * xla_flops
