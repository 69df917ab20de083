"""nin_course/runs/catalogue.py: every reference run is described, each Table 5 head and seed
its own run, and the GPU runs keep the paper's lr drops at the same fractions."""
from nin_course.runs import catalogue
from nin_course.runs.store import reference_spec


def test_every_reference_run_is_described(one_thread):
    for name in catalogue.REFERENCE_RUNS:
        spec = reference_spec(name)
        assert spec.model is not None and len(spec.key()) == 12, name
        if name.startswith("table5-"):  # the paper's Table 5 on 2,500 images (250 per class)
            assert spec.train_size == catalogue.TABLE5_TRAIN_SIZE and spec.augment is False, name
        else:
            assert spec.train_size is None, name  # all the data
    keys = {reference_spec(f"table5-{head}-seed{seed}").key()
            for head in ("gap", "fc", "fc+dropout") for seed in catalogue.TABLE5_SEEDS}
    assert len(keys) == 3 * len(catalogue.TABLE5_SEEDS)  # each head and seed its own run


def test_gpu_cifar_keeps_the_drops_at_the_same_fractions():
    spec = catalogue.gpu_cifar(10, False, num_epochs=30)
    assert spec.config.lr_schedule == ((21, 0.1), (27, 0.1))
    assert catalogue.gpu_cifar(10, False, num_epochs=150).config.lr_schedule == (
        (101, 0.1), (131, 0.1))
