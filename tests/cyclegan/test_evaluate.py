"""`evaluate` metrics (oracle, identity, random generators) and `translate` (any size, CLI)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxstyle import checkpoint, cli, models
from jaxstyle.cyclegan import data, evaluate, synthetic, translate


def _as_uint8(x):
  return np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8)


def _oracle(x):
  """Swaps red and blue inside the estimated object mask: turns A objects blue, B objects orange."""
  img = _as_uint8(x)
  m = synthetic.estimate_mask(img)[..., None]
  return data.to_float(np.where(m, img[..., ::-1], img))


@pytest.fixture(scope="module")
def synth():
  cfg = data.default_data_config(image_size=32, synthetic_size=48, seed=4)
  return cfg, data.make_sources(cfg, "test")


@pytest.fixture(scope="module")
def small_run():
  """A tiny ResNet generator pair at random init, plus its run config as config.json holds it."""
  model_cfg = models.default_model_config(gen_filters=4, n_blocks=1)
  g = models.make_generator(model_cfg)
  # Shapes from tracing only, values from NumPy: compiling the random init costs ~20 s on CPU.
  shapes = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3))))["params"]
  rng = np.random.default_rng(0)
  params = {name: jax.tree.map(lambda s: rng.normal(0, 0.1, s.shape).astype(np.float32), shapes)
            for name in ("G_A", "G_B")}
  config = {"model": model_cfg.to_dict(),
            "data": data.default_data_config(image_size=16, synthetic_size=24, seed=4).to_dict()}
  return config, g, params


def test_oracle_and_identity(synth):
  cfg, src = synth
  oracle = evaluate.evaluate_fns({"A2B": _oracle, "B2A": _oracle}, src, cfg,
                                 synthetic.domain_probability, batch_size=20)
  assert oracle["eval/transfer_A2B"] == 1.0 and oracle["eval/transfer_B2A"] == 1.0
  assert oracle["eval/iou_A2B"] >= 0.95 and oracle["eval/iou_B2A"] >= 0.95
  assert oracle["eval/cycle_l1_A"] < 1e-6 and oracle["eval/n_images_B"] == 48
  ident = evaluate.evaluate_fns({"A2B": lambda x: x, "B2A": lambda x: x}, src, cfg,
                                synthetic.domain_probability, max_images=10)
  assert ident["eval/transfer_A2B"] == 0.0 and ident["eval/transfer_B2A"] == 0.0
  assert ident["eval/iou_B2A"] >= 0.95 and ident["eval/n_images_A"] == 10
  # A translation that destroys content keeps no IoU, whatever its colour.
  blank = evaluate.evaluate_fns({"A2B": np.zeros_like, "B2A": np.zeros_like}, src, cfg,
                                synthetic.domain_probability, max_images=8)
  assert blank["eval/iou_A2B"] == 0.0 and blank["eval/transfer_A2B"] == 0.0


def test_evaluate_random_generators_matches_manual(small_run):
  config, g, params = small_run
  m = evaluate.evaluate(config, params, max_images=4, batch_size=4)
  for key in ("transfer_A2B", "transfer_B2A", "iou_A2B", "iou_B2A", "cycle_l1_A", "cycle_l1_B"):
    assert 0.0 <= m[f"eval/{key}"] <= 2.0, key
  # Recompute two metrics directly from the networks (same batch shape: no new compile).
  src = synthetic.SyntheticDomain("A", "test", 4, 16, seed=4)
  x = data.to_float(src.images)
  fake = np.asarray(translate._apply_jit(g, params["G_A"], x))
  rec = np.asarray(translate._apply_jit(g, params["G_B"], fake))
  assert m["eval/cycle_l1_A"] == pytest.approx(np.abs(rec - x).mean(), abs=1e-5)
  p_b = synthetic.domain_probability(_as_uint8(fake))
  assert m["eval/transfer_A2B"] == pytest.approx((p_b > 0.5).mean())


def test_colour_criterion_on_folder_data(tmp_path):
  for split, n in (("train", 30), ("test", 6)):
    for d in "AB":
      (tmp_path / f"{split}{d}").mkdir()
      for i, img in enumerate(synthetic.generate(d, split, n, 16, seed=1)[0]):
        Image.fromarray(img).save(tmp_path / f"{split}{d}" / f"{i:03d}.png")
  cfg = data.default_data_config(source="folder", root=str(tmp_path), image_size=16)
  crit = evaluate.fit_colour_criterion(cfg)
  test_a, test_b = (synthetic.generate(d, "test", 40, 16, seed=1)[0] for d in "AB")
  assert (crit(test_a) < 0.5).mean() > 0.9 and (crit(test_b) > 0.5).mean() > 0.9
  sources = data.make_sources(cfg, "test")
  m = evaluate.evaluate_fns({"A2B": _oracle, "B2A": lambda x: x}, sources, cfg, crit)
  assert "eval/iou_A2B" not in m  # folders have no ground-truth masks
  assert m["eval/transfer_A2B"] > 0.8 and m["eval/transfer_B2A"] == 0.0


def _noise(shape, seed):
  # Random content: a constant image makes instance norm amplify rounding noise.
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_translate_images_any_size(small_run):
  _, g, params = small_run
  imgs = [_noise(s, i) for i, s in enumerate([(13, 14, 3), (16, 16, 3), (15, 16, 3)])]
  outs = translate.translate_images(g, params["G_A"], imgs, batch_size=2, multiple=4)
  assert [o.shape for o in outs] == [i.shape for i in imgs]
  for img, out in zip(imgs, outs):  # equals reflect-pad -> G -> crop, image by image
    h, w = img.shape[:2]
    x = np.pad(data.to_float(img), ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")
    y = np.asarray(translate._apply_jit(g, params["G_A"], np.stack([x, x])))
    assert np.abs(out.astype(int) - _as_uint8(y[0, :h, :w])).max() <= 1


def test_translate_and_evaluate_cli(small_run, tmp_path, capsys):
  config, g, params = small_run
  # A run directory as the trainer leaves it: config.json + an Orbax checkpoint of the state.
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text(json.dumps(config))
  mngr = checkpoint.make_manager(str(run))
  checkpoint.save(mngr, 3, {"step": np.int32(3), "params": params}, force=True)
  checkpoint.close(mngr)
  inputs = tmp_path / "in"
  (inputs / "sub").mkdir(parents=True)
  Image.fromarray(_noise((13, 14, 3), 1)).save(inputs / "a.jpg")
  Image.fromarray(_noise((15, 16), 2), "L").save(inputs / "sub" / "b.png")
  single = tmp_path / "c.png"
  c = _noise((16, 15, 3), 3)
  Image.fromarray(c).save(single)

  out = tmp_path / "out"
  assert cli.main(["translate", "--workdir", str(run), "--direction", "BtoA", "--out", str(out),
                   "--batch-size", "2", str(inputs), str(single)]) == 0
  assert Image.open(out / "in" / "a.png").size == (14, 13)
  assert Image.open(out / "in" / "sub" / "b.png").size == (16, 15)
  want = translate.translate_images(g, params["G_B"], [c], 2, 4)[0]
  np.testing.assert_array_equal(np.asarray(Image.open(out / "c.png")), want)

  weights = tmp_path / "weights"
  checkpoint.save_params(str(weights), params["G_A"],
                         {"kind": "junyanz-G", "model_cfg": config["model"]})
  assert cli.main(["translate", "--weights", str(weights), "--out", str(tmp_path / "o2"),
                   "--batch-size", "2", str(single)]) == 0
  want = translate.translate_images(g, params["G_A"], [c], 2, 4)[0]
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o2" / "c.png")), want)
  assert cli.main(["translate", "--weights", str(weights), "--out", str(tmp_path / "o3"),
                   str(tmp_path / "missing.png")]) == 1

  capsys.readouterr()
  assert cli.main(["evaluate", "--workdir", str(run), "--max-images", "4", "--batch-size", "4"]) == 0
  table = capsys.readouterr().out
  assert "eval/transfer_A2B" in table and "eval/iou_B2A" in table
  record = json.loads((run / "eval.json").read_text())
  assert record["split"] == "test" and record["eval/n_images_A"] == 4.0
  assert set(record) >= {f"eval/{k}" for k in ("transfer_A2B", "transfer_B2A", "iou_A2B",
                                               "iou_B2A", "cycle_l1_A", "cycle_l1_B")}
