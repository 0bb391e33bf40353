"""`translate`: generators on images of any size (pad / crop), and the `jaxstyle translate` CLI."""
import numpy as np
import pytest
import tiny_run
from PIL import Image
from tiny_run import as_uint8, noise

from jaxstyle import checkpoint, cli, image_io
from jaxstyle.cyclegan import translate


@pytest.fixture(scope="module")
def small_run():
  return tiny_run.small_run()


def test_pad_to_multiple_reflects_bottom_right():
  x = np.arange(3 * 5, dtype=np.float32).reshape(1, 3, 5, 1)
  padded, (h, w) = translate.pad_to_multiple(x, 4)
  assert (h, w) == (3, 5) and padded.shape == (1, 4, 8, 1)
  np.testing.assert_array_equal(padded[:, :3, :5], x)  # pixel (0, 0) stays put
  np.testing.assert_array_equal(padded[0, 3, :5, 0], x[0, 1, :, 0])  # reflect: row 3 mirrors row 1
  np.testing.assert_array_equal(padded[0, :3, 5, 0], x[0, :, 3, 0])


def test_translate_images_any_size(small_run):
  _, g, params = small_run
  imgs = [noise(s, i) for i, s in enumerate([(13, 14, 3), (16, 16, 3), (15, 16, 3)])]
  outs = translate.translate_images(g, params["G_A"], imgs, batch_size=2, multiple=4)
  assert [o.shape for o in outs] == [i.shape for i in imgs]
  for img, out in zip(imgs, outs):  # equals reflect-pad -> G -> crop, image by image
    h, w = img.shape[:2]
    x = np.pad(image_io.to_float(img), ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")
    y = np.asarray(translate._apply_jit(g, params["G_A"], np.stack([x, x])))
    assert np.abs(out.astype(int) - as_uint8(y[0, :h, :w])).max() <= 1


def test_translate_cli(small_run, tmp_path):
  config, g, params = small_run
  run = tiny_run.write_run(tmp_path / "run", config, params)
  inputs = tmp_path / "in"
  (inputs / "sub").mkdir(parents=True)
  Image.fromarray(noise((13, 14, 3), 1)).save(inputs / "a.jpg")
  Image.fromarray(noise((15, 16), 2), "L").save(inputs / "sub" / "b.png")
  exif = Image.Exif()
  exif[0x0112] = 6  # stored 14x13 (HxW), shown rotated 90 degrees clockwise: 13x14
  Image.fromarray(noise((14, 13, 3), 4)).save(inputs / "rot.jpg", exif=exif)
  single = tmp_path / "c.png"
  c = noise((16, 15, 3), 3)
  Image.fromarray(c).save(single)

  out = tmp_path / "out"
  assert cli.main(["translate", "--workdir", str(run), "--direction", "BtoA", "--out", str(out),
                   "--batch-size", "2", str(inputs), str(single)]) == 0
  assert Image.open(out / "in" / "a.png").size == (14, 13)
  assert Image.open(out / "in" / "sub" / "b.png").size == (16, 15)
  assert Image.open(out / "in" / "rot.png").size == (14, 13)  # translated upright
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

